"""Columns for the browser: the block encoder decides and writes every column as the one-column encoder does."""

import base64

import numpy as np

from gpviz.html.encode import encode_column, encode_columns


def test_encode_columns_equals_one_column_at_a_time():
    rng = np.random.default_rng(1)
    # magnitudes from 1e-40 to 1e40: some columns need float64's range, most fit float32
    cols = {f"c{i}": rng.standard_normal(7) * 10.0 ** rng.integers(-40, 40) for i in range(200)}
    cols.update({
        "flags": np.array([np.nan, np.inf, 0.0, 1e-36, 2.0, 3.0, 4.0]),  # a tiny value: float64
        "zeros": np.zeros(7), "one_row": np.array([1.5]), "empty": np.zeros(0),
        "int": np.arange(3, dtype=np.int32), "float32": np.arange(7, dtype=np.float32),
    })
    block = encode_columns(cols)
    assert list(block) == list(cols)
    assert block == {k: encode_column(v) for k, v in cols.items()}
    assert block["flags"]["type"] == "float64" and block["zeros"]["type"] == "float32"
    assert 0 < sum(c["type"] == "float64" for c in block.values()) < 200
    decoded = np.frombuffer(base64.b64decode(block["flags"]["data"]), "<f8")
    np.testing.assert_array_equal(decoded, cols["flags"])
