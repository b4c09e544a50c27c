"""Kernels at extreme overall scales: exact where the theory is scale-free, an error otherwise.

The generated two-input code forms K11 K22 (for the correlation K12/sqrt(K11 K22)): below about
1e-308 that product underflows and the inputs look decorrelated, above about 1e308 it overflows.
Products inside SAFE^2 = (1e-300, 1e300) never get there (one input: K^2, as the one-loop
covariance forms it). Outside it:

* activations that are positively homogeneous (phi(a x) = a phi(x) for a > 0: relu, linear)
  without bias make K^l homogeneous of degree 1 in K^0 (chi and S of degree 0): the
  evaluators run on K^0/s and the results are scaled back, exactly;
* other networks depend on the scale, so there is no such shortcut: a tiny input kernel is a
  ValueError naming K0, a huge one (or a path that grows past SAFE) an OverflowError naming the
  layer, never a silently decorrelated result.
"""

from __future__ import annotations

import numpy as np

SAFE = (1e-150, 1e150)
HOMOGENEOUS = ("linear", "relu")


def variances(k0: np.ndarray) -> np.ndarray:
    """The variances of pair entries (..., 3) (entries 11 and 22) or of one-input kernels."""
    k0 = np.asarray(k0, dtype=float)
    return k0[..., :2] if k0.ndim > 1 and k0.shape[-1] == 3 else k0


def _log_products(k0: np.ndarray) -> np.ndarray:
    """log10 of K11 K22 per grid point with both variances > 0 (K^2 for one input)."""
    k0 = np.asarray(k0, dtype=float)
    v = variances(k0)
    if k0.ndim > 1 and k0.shape[-1] == 3:
        # Only correlated pairs of nonzero variances: K11 K22 is exactly 0 (and right) where an
        # input is zero, and uncorrelated inputs (K12 = 0) have no correlation to lose.
        v = v[np.all(v > 0, axis=-1) & (k0[..., 2] != 0)]
        return np.log10(v).sum(axis=-1)
    v = v.ravel()
    return 2 * np.log10(v[v > 0])


def rescaling(
    activation: object, k0: np.ndarray, sigma_b2: np.ndarray, identity: bool = False
) -> float:
    """The factor s by which to divide the two-input K^0 (pair entries (n, 3)) before evaluating:
    1.0 when K11 K22 is inside SAFE^2; raises when the network is not scale-free.
    identity=True: every layer is the identity (r = 0), scale-free for any activation."""
    logs = _log_products(k0)
    if logs.size == 0:
        return 1.0
    lo, hi = float(logs.min()), float(logs.max())
    limit = 2 * np.log10(SAFE[1])
    if -limit <= lo and hi <= limit:
        return 1.0
    v = variances(k0)
    top = float(v.max())
    scale_free = identity or activation in HOMOGENEOUS and not np.any(sigma_b2)
    if scale_free and lo - 2 * np.log10(top) >= -limit:
        return top
    if hi > limit:
        raise OverflowError(
            f"the kernel leaves the range this code resolves at layer 0: K^0 has "
            f"K11 K22 = 1e{hi:.0f} > {SAFE[1] ** 2:g} (it overflows; {activation}"
            f"{' with bias' if activation in HOMOGENEOUS else ''} is not "
            "scale-free): reduce K0, sigma_w2 or sigma_b2"
        )
    raise ValueError(
        f"K0: variances with K11 K22 below {SAFE[0] ** 2:g} are not resolved for two "
        f"inputs (the product underflows and the inputs would look decorrelated); got "
        f"K11 K22 = 1e{lo:.0f}. Only {' and '.join(HOMOGENEOUS)} without bias are "
        "scale-free: rescale K0"
    )


def first_unresolved_layer(path: np.ndarray) -> int | None:
    """The first layer of two-input kernel paths (n, depth+1, 2, 2) where K11 K22 > SAFE[1]^2."""
    with np.errstate(over="ignore"):
        product = path[..., 0, 0] * path[..., 1, 1]
    bad = (product > SAFE[1] ** 2).any(axis=0)
    return int(np.argmax(bad)) if bad.any() else None
