"""Compact frame data: round trips, precision, flags, size (the browser's decoder is tested in tests/trace/test_every_step_browser.py)."""

from __future__ import annotations

import numpy as np
import pytest

from gpviz.errors import InputError
from gpviz.html.compact import (DIGITS, decode_compact, encode_compact, round_sig, sig_codes, sig_values,
                                survives)

LOG_AXIS = {"kind": "log", "lo": 1e-4, "hi": 1e3}
LIN_AXIS = {"kind": "linear", "lo": -3.0, "hi": 3.0}


def within_4_digits(shown: np.ndarray, exact: np.ndarray) -> np.ndarray:
    """Half a unit in the 4th significant digit of the exact value (or both equal: 0, NaN, +-inf)."""
    same = (shown == exact) | (np.isnan(shown) & np.isnan(exact))
    with np.errstate(divide="ignore", invalid="ignore"):
        unit = 10.0 ** (np.floor(np.log10(np.abs(exact))) - 3)
        return same | (np.abs(shown - exact) <= 0.5 * unit * (1 + 1e-12))


def test_values_round_to_four_significant_digits_and_keep_specials():
    v = np.array([1.23456, -1.23456, 9.99951, 0.000123449, 1e-12, 123456789.0, 0.0, np.nan, np.inf, -np.inf, 1000.0])
    shown = round_sig(v)
    np.testing.assert_array_equal(shown[:7], [1.235, -1.235, 10.0, 0.0001234, 1e-12, 123500000.0, 0.0])
    assert np.isnan(shown[7]) and shown[8] == np.inf and shown[9] == -np.inf and shown[10] == 1000.0
    assert within_4_digits(shown, v).all()


def test_codes_grow_with_the_value():
    v = np.sort(np.concatenate([-np.logspace(-5, 5, 500), [0.0], np.logspace(-5, 5, 500)]))
    codes, meta = sig_codes(v)
    assert (np.diff(codes) >= 0).all() and codes[500] == 0
    assert meta["digits"] == DIGITS


@pytest.mark.parametrize("seed", range(3))
def test_round_trip_of_a_timeline_grid_agrees_to_4_digits(seed):
    rng = np.random.default_rng(seed)
    steps, members = 200, 7
    walk = np.exp(np.cumsum(rng.normal(0, 0.05, (steps, members)), axis=0))
    walk[120:, 2] = walk[119, 2]  # a member that converged: a run of zero deltas
    cols = {"ls": walk.reshape(-1), "mean": rng.normal(0, 1, steps * members),
            "i_config": np.repeat(np.arange(steps) % 3, members).astype(np.int32)}
    packed = encode_compact(cols, grid=(steps, members), axes={"ls": LOG_AXIS, "mean": LIN_AXIS})
    back = decode_compact(packed.text, packed.layout)
    assert within_4_digits(back["ls"], cols["ls"]).all()
    assert within_4_digits(back["mean"], cols["mean"]).all()
    np.testing.assert_array_equal(back["i_config"], cols["i_config"])
    assert packed.layout["columns"]["i_config"]["codec"] == "int"
    np.testing.assert_array_equal(back["ls"], round_sig(cols["ls"], packed.layout["columns"]["ls"]["digits"]))


def test_converged_members_cost_almost_nothing():
    rng = np.random.default_rng(0)
    steps, members = 1000, 60
    moving = np.exp(np.cumsum(rng.normal(0, 0.005, (steps, members)), axis=0))  # 0.5% moves per step
    still = moving.copy()
    still[50:] = still[49]  # every member converged at step 50
    a = encode_compact({"k": moving.reshape(-1)}, grid=(steps, members), axes={"k": LOG_AXIS})
    b = encode_compact({"k": still.reshape(-1)}, grid=(steps, members), axes={"k": LOG_AXIS})
    assert b.bytes_per_value < 0.2 * a.bytes_per_value
    assert a.bytes_per_value < 1.5  # page characters per value, base64 included


def test_flags_survive_nan_inf_nonpositive_and_off_axis():
    v = np.array([1.0, np.nan, np.inf, -np.inf, 0.0, -2.0, 5e-5, 2e3, 0.5])  # 5e-5, 2e3: off LOG_AXIS
    packed = encode_compact({"k": v}, axes={"k": LOG_AXIS})
    back = decode_compact(packed.text, packed.layout)["k"]
    assert np.isnan(back[1]) and back[2] == np.inf and back[3] == -np.inf and back[4] == 0.0 and back[5] == -2.0
    assert survives(v, back, LOG_AXIS)
    np.testing.assert_array_equal(back[[0, 6, 7, 8]], [1.0, 5e-5, 2e3, 0.5])


def test_a_narrow_axis_gets_more_digits_and_a_value_at_a_bound_stays_at_it():
    # a bounded linear axis 10% of its values wide: 4 digits would move dots by a pixel
    axis = {"kind": "linear", "lo": 100.0, "hi": 110.0}
    v = np.linspace(100.0, 110.0, 77)
    packed = encode_compact({"k": v}, axes={"k": axis})
    assert packed.layout["columns"]["k"]["digits"] > DIGITS
    assert survives(v, decode_compact(packed.text, packed.layout)["k"], axis)
    assert not survives(v, round_sig(v), axis)
    # 1.00015e-4 is not at the bound 1e-4 (gpviz.js: within 1e-4 of its scale), 1.000004e-4 is
    w = np.array([1.00015e-4, 1.000004e-4, 0.3])
    packed = encode_compact({"k": w}, axes={"k": LOG_AXIS}, bounds={"k": (1e-4, None)})
    back = decode_compact(packed.text, packed.layout)["k"]
    assert abs(back[0] - 1e-4) > 1e-8 and abs(back[1] - 1e-4) <= 1e-8


def test_magnitudes_near_the_float64_limits_travel_exactly():
    v = np.array([1e-300, 2.5e-310, 1.0, 1e300])
    packed = encode_compact({"k": v})
    assert packed.layout["columns"]["k"]["codec"] == "f64"
    np.testing.assert_array_equal(decode_compact(packed.text, packed.layout)["k"], v)
    assert sig_codes(v) is None


def test_bad_inputs_name_what_was_expected():
    with pytest.raises(InputError, match="share one length"):
        encode_compact({"a": np.zeros(3), "b": np.zeros(4)})
    with pytest.raises(InputError, match="steps x members"):
        encode_compact({"a": np.zeros(6)}, grid=(4, 2))
    with pytest.raises(InputError, match="dtype"):
        encode_compact({"a": np.array(["x", "y"])})
    packed = encode_compact({"a": np.ones(3)})
    with pytest.raises(InputError, match="compact codec"):
        decode_compact(packed.text, {**packed.layout, "codec": "other"})


def test_sig_values_invert_sig_codes_for_more_digits():
    v = np.random.default_rng(1).lognormal(0, 3, 1000) * np.sign(np.random.default_rng(2).normal(size=1000))
    for digits in (4, 5, 7):
        codes, meta = sig_codes(v, digits)
        shown = sig_values(codes, meta)
        assert np.all(np.abs(shown - v) <= 0.5 * 10.0 ** (np.floor(np.log10(np.abs(v))) - digits + 1) * (1 + 1e-12))
