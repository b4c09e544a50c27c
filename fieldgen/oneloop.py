"""One-loop (order 1/N) corrections: kernel covariance across layers and the mean-kernel shift."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import domain, scales
from . import validation as check
from .generated import module
from .meanfield import kernel

_REDUCED = ("one-loop corrections are derived for the full block only; the reduced block's "
            "increments r phi(W h + b) are non-Gaussian given the layer below and its "
            "pre-activations carry a mean, whose fluctuations are not in the theory yet")


class MeanShiftTerms(NamedTuple):
    """N (E Khat^l - K^l) split into its three parts (each of the shape of the total)."""
    propagated: np.ndarray      # J^m N Delta^m: earlier shifts carried through the layer map
    tadpole: np.ndarray         # (1/2) H^m : N Cov(K_C^m): curvature of P times kernel noise
    self_feedback: np.ndarray   # a neuron's own past phi phi in its later step variance

    @property
    def total(self) -> np.ndarray:
        return self.propagated + self.tadpole + self.self_feedback


def _one_loop(activation, r, sigma_w2, depth, K0, sigma_b2, block, input, covariance: bool):
    activation, block, input, depth = check.network(activation, block, input, depth)
    if block != "full":
        raise NotImplementedError(_REDUCED)
    if covariance:   # (depth+1)^2 blocks of 3x3: reduce depth
        check.memory("the kernel covariance", 8.0 * 9 * (depth + 1.0) ** 2, "reduce depth")
    # Scalars only (kernel() checks the values; the one-loop evaluators take one network).
    r, sigma_w2, sigma_b2 = (check.nonnegative(name, value, scalar=True) for name, value in
                             (("r", r), ("sigma_w2", sigma_w2), ("sigma_b2", sigma_b2)))
    K = kernel(activation, r=r, sigma_w2=sigma_w2, sigma_b2=sigma_b2, depth=depth, K0=K0,
               block=block, input=input)
    if K.ndim == 1:
        path, D = np.ascontiguousarray(K[:, None]), 1
    else:
        path = np.ascontiguousarray(np.stack([K[:, 0, 0], K[:, 1, 1], K[:, 0, 1]], axis=-1))
        D = 3
    # Extreme scales: N Cov is homogeneous of degree 2 and the shift of degree 1 in K^0 where K
    # is of degree 1 (scales.HOMOGENEOUS without bias): evaluate at unit scale, scale back.
    homogeneous = activation in scales.HOMOGENEOUS and sigma_b2 == 0
    s = scales.rescaling(activation, path[:1], sigma_b2) if D == 3 or homogeneous else 1.0
    if s != 1.0:
        path = np.ascontiguousarray(path / s)
    cov = np.zeros((depth + 1, depth + 1, D, D) if covariance else (1, 1, D, D))
    shift = np.empty((depth + 1, 3, D))
    module("oneloop", activation).one_loop(r, sigma_w2, path, cov, shift)
    if s != 1.0 and np.all(np.isfinite(shift)) and np.all(np.isfinite(cov)):
        with np.errstate(over="ignore"):
            cov, shift = cov * s * s, shift * s
        if not (np.all(np.isfinite(shift)) and np.all(np.isfinite(cov))):
            raise OverflowError("the one-loop corrections leave the float64 range (N Cov grows "
                                "like K0^2): reduce K0")
    if not (np.all(np.isfinite(shift)) and np.all(np.isfinite(cov))):
        # The kernel path is finite (kernel() raised otherwise): a singular input or overflow.
        domain.raise_not_finite("the one-loop corrections", activation, path[:1],
                                "the one-loop corrections leave the float64 range (reduce depth or r)")
    if D == 1:
        return cov[:, :, 0, 0], shift[:, :, 0]
    return cov, shift


def kernel_covariance(activation, *, r, sigma_w2, depth, K0, sigma_b2=0.0, block="full",
                      input="kernel"):
    """N Cov(Khat^l, Khat^l') to leading order in 1/N, for l, l' = 0..depth.

    Shape (depth+1, depth+1) for one input (K0 a number) and (depth+1, depth+1, 3, 3) for two
    (K0 a 2x2 matrix; pair order 11, 22, 12). Arguments as for `fieldgen.kernel` (scalars).
    """
    cov, _ = _one_loop(activation, r, sigma_w2, depth, K0, sigma_b2, block, input, True)
    return cov


def kernel_mean_shift(activation, *, r, sigma_w2, depth, K0, sigma_b2=0.0, block="full",
                      input="kernel", terms=False):
    """N (E[Khat^l] - K^l) to leading order in 1/N, for l = 0..depth.

    Shape (depth+1,) for one input, (depth+1, 3) for two (pair order 11, 22, 12). With
    terms=True a `MeanShiftTerms` (propagated, tadpole, self_feedback; `.total` is their sum).
    """
    _, shift = _one_loop(activation, r, sigma_w2, depth, K0, sigma_b2, block, input, False)
    parts = MeanShiftTerms(shift[:, 0], shift[:, 1], shift[:, 2])
    return parts if terms else parts.total
