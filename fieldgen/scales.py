"""Kernels at extreme overall scales: exact where the theory is scale-free, an error otherwise.

The generated two-input code forms K11 K22 (for the correlation K12/sqrt(K11 K22)): below about
1e-154 that product underflows and the inputs look decorrelated, above about 1e154 it overflows.
Variances inside SAFE never get there. Outside it:

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


def rescaling(activation: str, k0: np.ndarray, sigma_b2: np.ndarray, identity: bool = False) -> float:
    """The factor s by which to divide the two-input K^0 (pair entries (n, 3)) before evaluating:
    1.0 when its variances are inside SAFE; raises when the network is not scale-free.
    identity=True: every layer is the identity (r = 0), scale-free for any activation."""
    v = variances(k0)
    v = v[v > 0]
    if v.size == 0:
        return 1.0
    lo, hi = float(v.min()), float(v.max())
    if SAFE[0] <= lo and hi <= SAFE[1]:
        return 1.0
    if (identity or activation in HOMOGENEOUS and not np.any(sigma_b2)) and lo / hi >= SAFE[0] / SAFE[1]:
        return hi
    if hi > SAFE[1]:
        raise OverflowError(f"the kernel leaves the range this code resolves at layer 0: K^0 has a "
                            f"variance of {hi:.3g} > {SAFE[1]:g} (K11 K22 overflows; {activation}"
                            f"{' with bias' if activation in HOMOGENEOUS else ''} is not "
                            "scale-free): reduce K0, sigma_w2 or sigma_b2")
    raise ValueError(f"K0: variances below {SAFE[0]:g} are not resolved for two inputs (K11 K22 "
                     f"underflows and the inputs would look decorrelated); got {lo:.3g}. Only "
                     f"{' and '.join(HOMOGENEOUS)} without bias are scale-free: rescale K0")


def first_unresolved_layer(path: np.ndarray) -> int | None:
    """The first layer of two-input kernel paths (n, depth+1, 2, 2) with a variance beyond SAFE."""
    diag = np.stack([path[..., 0, 0], path[..., 1, 1]], axis=-1)
    bad = (diag > SAFE[1]).any(axis=(0, 2))
    return int(np.argmax(bad)) if bad.any() else None
