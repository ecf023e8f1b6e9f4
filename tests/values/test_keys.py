"""Keys and batch members: the grammar, and the one rule that says which member a value belongs to."""

from __future__ import annotations

import pytest
import torch

from gpviz.errors import InputError, UnsupportedError
from gpviz.values.keys import align_leading, expand_members, join_path, make_key, parse_key


def test_keys_round_trip():
    key = make_key("covar_module.base_kernel", "lengthscale", (3,))
    assert key == "covar_module.base_kernel.lengthscale[3]"
    assert parse_key(key) == ("covar_module.base_kernel", "lengthscale", (3,))
    assert parse_key("noise") == ("", "noise", ())
    with pytest.raises(InputError, match="malformed parameter key 'a b'"):
        parse_key("a b")


@pytest.mark.parametrize("path, name, index", [
    ("emb_weight_matrix_list", "0", (2,)),          # a ParameterList's parameters are named 0, 1, ...
    ("covar_module.plist", "12", ()),
    ("models.0.covar_module", "lengthscale", (0, 1)),
])
def test_parameter_list_names_round_trip(path, name, index):
    key = make_key(path, name, index)
    assert parse_key(key) == (path, name, index)


@pytest.mark.parametrize("key", ["a b", "x.", "x.[0]", "x.1a", "x[0", "x[-1]"])
def test_malformed_keys_are_refused(key):
    with pytest.raises(InputError, match="malformed parameter key"):
        parse_key(key)


def test_join_path_leaves_empty_parts_out():
    assert join_path("models.0", "") == "models.0"
    assert join_path("", "covar_module") == "covar_module"
    assert join_path("models.0", "covar_module") == "models.0.covar_module"


def test_member_dims_align_with_the_trailing_batch_dims_like_torch_broadcasting():
    t = torch.tensor([1.0, 2.0, 3.0])  # one value per output of a 2 x 3 batch
    out = expand_members(t, 1, torch.Size([2, 3]))
    assert out.tolist() == [[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]]
    with pytest.raises(InputError, match="larger than the model's"):
        expand_members(torch.zeros(2, 3), 2, torch.Size([3]))
    with pytest.raises(UnsupportedError, match="does not broadcast"):
        expand_members(torch.zeros(4), 1, torch.Size([3]))


def test_transform_tensors_align_with_the_leading_batch_dims():
    coef = torch.tensor([10.0, 20.0])  # one Normalize coefficient per fold of a 2-fold, 3-output batch
    assert align_leading(coef, torch.Size([2, 3])).tolist() == [10.0] * 3 + [20.0] * 3


def test_align_leading_refuses_what_it_cannot_match_instead_of_using_member_0():
    # one value per member in any layout, and one value for all, are matched
    assert align_leading(torch.tensor([[[1.0]], [[2.0]], [[3.0]], [[4.0]]]), torch.Size([2, 2])).tolist() == [1, 2, 3, 4]
    assert align_leading(torch.tensor([[5.0]]), torch.Size([3])).tolist() == [5.0, 5.0, 5.0]
    # 6 values for 4 members: no member's value may stand in for another's (it gave 1.0 for every member)
    with pytest.raises(InputError, match=r"shape \[3, 2\] cannot be matched to the model's 4 batch member"):
        align_leading(torch.arange(1.0, 7.0).reshape(3, 2), torch.Size([4]))
    with pytest.raises(InputError, match=r"shape \[3\] cannot be matched to the model's 4 batch member"):
        align_leading(torch.tensor([1.0, 2.0, 3.0]), torch.Size([4]))
