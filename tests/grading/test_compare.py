"""Scale-aware comparison: relative per element, floored by the column's scale; NaN fails."""

from __future__ import annotations

import numpy as np

from perfgym.grading.compare import compare_arrays


def test_equal_arrays_pass():
    x = np.random.default_rng(0).normal(size=(50, 8))
    assert compare_arrays(x.copy(), x, 1e-7)[0]


def test_scale_awareness_per_column():
    x = np.random.default_rng(0).normal(size=(50, 2)) * [1e-3, 1e3]
    y = x.copy()
    y[:, 0] += 1e-6  # tiny in absolute terms, but 0.1% of the small column
    ok, detail = compare_arrays(y, x, 1e-7)
    assert not ok and "column 0" in detail
    z = x * (1 + 1e-12)
    assert compare_arrays(z, x, 1e-7)[0]


def test_nan_and_shape_fail():
    x = np.ones((4, 3))
    y = x.copy()
    y[1, 1] = np.nan
    assert not compare_arrays(y, x, 1e-3)[0]
    assert "shape" in compare_arrays(x[:, :2], x, 1e-3)[1]


def test_rounding_noise_near_zero_passes():
    x = np.array([[1.0, 0.0], [2.0, 5.0]])
    y = x + np.array([[0.0, 1e-13], [0.0, 0.0]])
    assert compare_arrays(y, x, 1e-7)[0]
