"""The break-free story: where each parameter leaves its prior's mode, said in one sentence per group."""

from __future__ import annotations

import torch
from botorch.models import SingleTaskGP
from gpytorch.kernels import RBFKernel, ScaleKernel
from gpytorch.priors import GammaPrior

import gpviz
from gpviz.priors.stories import break_free_sentences, key_features, key_stories
from gpviz.priors.verdicts import verdict_table
from tests.priors.test_verdicts import constructed_pull


def scale_rbf(train_X, train_Y):
    batch = train_X.shape[:-2]
    return SingleTaskGP(train_X, train_Y, covar_module=ScaleKernel(
        RBFKernel(ard_num_dims=train_X.shape[-1], batch_shape=batch, lengthscale_prior=GammaPrior(3.0, 6.0)),
        batch_shape=batch, outputscale_prior=GammaPrior(2.0, 0.15)))


def test_break_free_sentence_names_sizes_repeats_and_features():
    features = {f"covar_module.lengthscale[{j}]": f"f{j}" for j in range(24)}
    stories = key_stories(verdict_table(constructed_pull()), features)
    (sentence,) = break_free_sentences(stories).values()
    late = ", ".join(f"f{j}" for j in range(4, 24))
    assert sentence == (f"covar_module.lengthscale: 4 lengthscales leave the prior's mode at n = 40 in 4 of 4 "
                        f"repeats (f0, f1, f2, f3); 20 leave the prior's mode at n = 80 in 2 of 4 repeats ({late}).")


def test_key_features_reads_feature_names_from_the_expression():
    model = scale_rbf(torch.rand(5, 2), torch.rand(5, 1))
    feats = key_features(gpviz.model_expr(model, feature_names=["lr", "depth"]))
    assert feats == {"covar_module.base_kernel.lengthscale[0]": "lr", "covar_module.base_kernel.lengthscale[1]": "depth"}
