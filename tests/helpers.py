"""Statistics helpers shared by the statistical tests."""
import zlib

import numpy as np


def mean_and_se(samples: np.ndarray, axis: int = 0):
    """Sample mean and its standard error along `axis`."""
    n = samples.shape[axis]
    return samples.mean(axis), samples.std(axis, ddof=1) / np.sqrt(n)


def max_abs_z(samples: np.ndarray, expected: np.ndarray) -> float:
    """Largest |mean - expected| / standard error over all entries."""
    mean, se = mean_and_se(samples)
    return float(np.max(np.abs(mean - expected) / se))


def seed_of(*parts) -> int:
    """A fixed seed derived from a test's parameters (stable across processes)."""
    return zlib.crc32(repr(parts).encode())
