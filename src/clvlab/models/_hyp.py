"""Gauss hypergeometric function for predictions, with a fallback where scipy's fails.

scipy.special.hyp2f1 returns NaN or inf for some arguments (e.g. large parameters with z near 1;
see field-notes.md). Those entries are recomputed with mpmath at high precision: slower, but only
for the entries that need it.
"""

from __future__ import annotations

import numpy as np
from scipy import special

__all__ = ["hyp2f1"]


def hyp2f1(a, b, c, z):
    a, b, c, z = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (a, b, c, z)))
    values = np.array(special.hyp2f1(a, b, c, z), dtype=np.float64)
    bad = ~np.isfinite(values)
    if np.any(bad):
        import mpmath

        with mpmath.workdps(30):
            values[bad] = [float(mpmath.hyp2f1(ai, bi, ci, zi))
                           for ai, bi, ci, zi in zip(a[bad], b[bad], c[bad], z[bad])]
    return values if values.ndim else float(values)
