"""Scale-aware comparison of a candidate's arrays with the baseline's.

Never a bare absolute tolerance: each element's error is measured relative to its own size, with
a floor of 1% of its column's scale (for values near zero), so the same check holds whether a
feature lives near 1e-3 or 1e3. NaN or Inf where the baseline is finite always fails.
"""

from __future__ import annotations

import numpy as np


def compare_arrays(actual: np.ndarray, expected: np.ndarray, rtol: float) -> tuple[bool, str]:
    """Whether `actual` matches `expected` within `rtol`, and a one-line explanation."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    if actual.shape != expected.shape:
        return False, f"shape {actual.shape} where the baseline gives {expected.shape}"
    if actual.dtype.kind not in "fiub":
        return False, f"dtype {actual.dtype} is not numeric"
    if actual.size == 0:
        return True, "empty, as the baseline"
    a, e = actual.astype(np.float64), expected.astype(np.float64)
    bad = ~np.isfinite(a) & np.isfinite(e)
    if bad.any():
        return False, f"{int(bad.sum())} NaN/Inf values where the baseline is finite"
    e2 = e.reshape(e.shape[0], -1) if e.ndim >= 2 else e.reshape(-1, 1)
    a2 = a.reshape(e2.shape)
    col_scale = np.max(np.abs(e2), axis=0, keepdims=True)
    denom = np.maximum(np.maximum(np.abs(e2), 0.01 * col_scale), np.finfo(np.float64).tiny)
    err = np.where(np.isfinite(e2), np.abs(a2 - e2) / denom, 0.0)
    worst = float(err.max())
    if worst <= rtol:
        return True, f"max scaled error {worst:.2e} <= {rtol:.0e}"
    i, j = np.unravel_index(int(err.argmax()), err.shape)
    return False, (
        f"max scaled error {worst:.2e} > {rtol:.0e} (row {i}, column {j}: "
        f"{a2[i, j]!r} vs baseline {e2[i, j]!r}); {int((err > rtol).sum())} of {err.size} differ"
    )
