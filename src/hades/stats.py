"""Interval estimates for reports, tables and figures (no JAX: ``report``, ``plots`` and the CLI
import it without the environment stack).

``ci95`` is the half-width of the 95% confidence interval of a mean, from Student's t with n - 1
degrees of freedom (``scipy.stats.t``) at every n: the normal 1.96 is never substituted, which
made intervals over 32-128 values 1-2% too narrow before hades 0.4.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats as _scipy_stats


def half_width(sd: float, n: int) -> float:
    """Half-width of the 95% confidence interval of a mean of ``n`` values with sample standard
    deviation ``sd`` (Student t, n - 1 degrees of freedom)."""
    return float(_scipy_stats.t.ppf(0.975, n - 1)) * sd / math.sqrt(n)


def ci95(values) -> float:
    """Half-width of the 95% confidence interval of the mean of ``values`` (Student t); nan for one value."""
    v = np.asarray(values, np.float64).ravel()
    if v.size < 2:
        return float("nan")
    return half_width(float(v.std(ddof=1)), v.size)


def mean_ci(values) -> tuple[float, float]:
    """(mean, 95% CI half-width) of the values that are not None; (nan, nan) if none is."""
    v = [x for x in values if x is not None]
    return (float(np.mean(v)), ci95(v)) if v else (float("nan"), float("nan"))
