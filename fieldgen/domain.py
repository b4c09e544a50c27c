"""Why a derivative-based result is not finite: the input kernel sits on a singularity of the
layer map's derivatives (a ValueError naming K0), or the path left the float64 range (an
OverflowError). Results are never returned with NaN or inf in them.

The closed forms of relu have terms in 1/sqrt(K11 K22) (its pair Jacobian: dK^L/dK^0 is infinite
at a zero variance), 1/sqrt(1 - rho^2) (its pair Hessian, used by the one-loop corrections,
infinite at full correlation |c| = 1), and the reduced block's mean sqrt(sigma_w^2 K + sigma_b^2)
has an infinite derivative at K = 0 without bias. The mean-field kernel itself is finite there.
"""

from __future__ import annotations

import numpy as np


def singular_reason(k0: np.ndarray) -> str | None:
    """What about the input kernel (pair entries (..., 1) or (..., 3)) can make derivatives
    infinite, or None if nothing does."""
    k0 = np.asarray(k0, dtype=float).reshape(-1, np.shape(k0)[-1] if np.ndim(k0) > 1 else 1)
    if k0.shape[1] == 1:
        return "a zero variance" if np.any(k0[:, 0] == 0) else None
    k11, k22, k12 = k0.T
    if np.any(k11 == 0) or np.any(k22 == 0):
        return "a zero variance"
    if np.any(k12 * k12 >= k11 * k22):
        return "fully correlated inputs (|c| = 1)"
    return None


def raise_not_finite(what: str, activation: str, k0: np.ndarray, overflow: str) -> None:
    """Raise the right error for a non-finite `what` computed from the input kernel `k0`.

    Call it only when the mean-field kernel path itself is finite (kernel() raises an
    OverflowError naming the layer otherwise).
    """
    reason = singular_reason(k0)
    if reason is not None:
        raise ValueError(
            f"K0 is outside the domain of {what} for {activation}: at {reason} a derivative of "
            f"the layer map is infinite (relu: 1/sqrt(K11 K22) and 1/sqrt(1 - c^2) terms; reduced "
            f"block: sqrt(sigma_w2 K + sigma_b2) at K = 0); use positive variances and |c0| < 1"
            f"{' (identical inputs: one input gives every pair entry)' if 'correlated' in reason else ''}"
        )
    raise OverflowError(overflow)
