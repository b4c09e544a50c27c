"""Sample statistics with their standard errors (the error bars of the report and the tolerances
of the statistical tests). Samples run along axis 0."""

from __future__ import annotations

import numpy as np


def mean_and_se(samples: np.ndarray, axis: int = 0):
    """Sample mean and its standard error along `axis`."""
    n = samples.shape[axis]
    return samples.mean(axis), samples.std(axis, ddof=1) / np.sqrt(n)


def variance_and_se(x: np.ndarray):
    """Sample variance along axis 0 and its standard error (from the fourth central moment)."""
    n = x.shape[0]
    centred = x - x.mean(0)
    var = (centred**2).sum(0) / (n - 1)
    fourth = (centred**4).mean(0)
    return var, np.sqrt(np.maximum(fourth - var**2, 0) / n)


def covariance_and_se(x: np.ndarray, y: np.ndarray):
    """Sample covariance along axis 0 and its standard error (the spread of the products)."""
    n = x.shape[0]
    prod = (x - x.mean(0)) * (y - y.mean(0))
    return prod.sum(0) / (n - 1), prod.std(0, ddof=1) / np.sqrt(n)
