"""The one loop of depth-scaled networks: its depth -> infinity limit at fixed tau.

With r = sqrt(tau / (sigma_w^2 L)) (:func:`r_for_tau`) the discrete one loop of depth L is the
Euler scheme, step g = r^2 sigma_w^2 = tau/L, of ODEs in tau (``derivations/continuum_one_loop.py``;
docs/theory, "The one loop at infinite depth"). The generated ``continuum_one_loop`` solves them
with trapezoidal steps on a uniform tau grid; two grids (n and 2n intervals) are combined by
Richardson extrapolation, so the result is accurate to O(h^4) at a cost independent of L.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from . import domain
from . import validation as check
from .activations import ActivationLike
from .generated import module
from .meanfield import kernel
from .oneloop import MeanShiftTerms
from .pairs import to_matrix

SUBSTEPS = 8  # RK4 steps of the mean-field flow per grid interval


class ContinuumOneLoop(NamedTuple):
    """The one loop at infinite depth on the grid ``tau`` (returned by :func:`continuum_one_loop`).

    ``kernel`` is K(tau) (shape ``(n+1,)``, or ``(n+1, 2, 2)`` for two inputs), ``covariance``
    N Cov(Khat(tau_i), Khat(tau_j)) (``(n+1, n+1)`` or ``(n+1, n+1, 2, 2, 2, 2)``) and
    ``mean_shift`` N (E Khat - K)(tau) split into its three parts (:class:`MeanShiftTerms`;
    ``.total`` is the shift). With ``correction=True``, ``covariance_1`` and ``mean_shift_1``
    (shaped like ``covariance`` and ``kernel``) are the coefficients of the leading finite-depth
    correction: at depth L, ``kernel_covariance ~ covariance + covariance_1 / L`` (and the same
    for the mean shift), otherwise None.
    """

    tau: np.ndarray
    kernel: np.ndarray
    covariance: np.ndarray
    mean_shift: MeanShiftTerms
    covariance_1: np.ndarray | None = None
    mean_shift_1: np.ndarray | None = None


def r_for_tau(tau: float, depth: int, sigma_w2: float) -> float:
    """The residual scale r = sqrt(tau / (sigma_w2 depth)) of a depth-scaled network.

    Parameters
    ----------
    tau : float
        Depth-scaled time tau = r^2 sigma_w^2 L >= 0.
    depth : int
        Number of residual blocks L >= 1.
    sigma_w2 : float
        Weight variance sigma_w^2 > 0.

    Returns
    -------
    float
        r such that r^2 sigma_w2 depth = tau.

    Raises
    ------
    ValueError
        A parameter outside its range (the message starts with its name).

    Examples
    --------
    >>> import fieldgen
    >>> fieldgen.r_for_tau(1.0, depth=100, sigma_w2=1.0)
    0.1
    """
    tau = check.nonnegative("tau", tau, scalar=True)
    depth = check.integer("depth", depth, minimum=1)
    sigma_w2 = check.positive("sigma_w2", sigma_w2, scalar=True)
    return check.residual_scale(None, tau, sigma_w2, depth)  # the API's tau= uses it too


def _solve(activation, params, k0, tau, n):
    generated = module("oneloop", activation)
    D = k0.size
    path = np.empty((n + 1, D))
    generated.continuum_kernel(params, k0, tau, SUBSTEPS, path)
    if not np.all(np.isfinite(path)):
        raise OverflowError("the mean-field kernel leaves the float64 range: reduce tau")
    cov = np.empty((n + 1, n + 1, D, D))
    shift = np.empty((n + 1, 3, D))
    generated.continuum_one_loop(tau, path, cov, shift)
    return path, cov, shift


def continuum_one_loop(
    activation: ActivationLike,
    *,
    tau: float,
    sigma_w2: float,
    K0: ArrayLike,
    sigma_b2: float = 0.0,
    points: int = 32,
    input: str = "kernel",
    correction: bool = False,
) -> ContinuumOneLoop:
    """The one-loop theory at infinite depth with tau = r^2 sigma_w^2 L fixed (full block).

    Networks with r = sqrt(tau / (sigma_w2 L)) (:func:`r_for_tau`) have, as L -> infinity,
    ``kernel_covariance`` at layer l -> ``covariance`` at tau l / L and ``kernel_mean_shift`` ->
    ``mean_shift.total``; at finite L they differ from this limit by O(1/L) (docs/theory, "The
    one loop at infinite depth"). The cost does not depend on L.

    Parameters
    ----------
    activation : str or fieldgen.Activation
        A built-in name (:data:`fieldgen.ACTIVATIONS`, :data:`fieldgen.PRESETS`) or an
        activation made by :func:`fieldgen.activation`.
    tau : float
        Final depth-scaled time tau > 0 (the grid runs from 0 to tau).
    sigma_w2 : float
        Weight variance sigma_w^2 > 0 (tau is measured in units of it).
    K0 : float or array_like, shape (2, 2)
        Input kernel (or input Gram matrix with ``input="layer"``): a number for one input, a
        symmetric positive semi-definite 2x2 matrix for two.
    sigma_b2 : float, default 0.0
        Bias variance sigma_b^2 >= 0.
    points : int, default 32
        Grid intervals n >= 2: the result is given at tau_i = i tau / n (solved on n and 2n
        intervals and extrapolated, error O((tau/n)^4)).
    input : {"kernel", "layer"}
        Whether K0 is the kernel K^0 or the Gram matrix of an input layer.
    correction : bool, default False
        Also return the 1/L coefficients ``covariance_1`` and ``mean_shift_1``. They are
        measured, not derived in closed form: the discrete one loop at depth m is the Euler
        scheme of the continuum with step tau/m, so m (discrete - continuum) = C1 + C2/m + ...;
        it is evaluated at m = 2n and 4n and extrapolated (error O(1/n^2); cost O(n^2),
        independent of L).

    Returns
    -------
    ContinuumOneLoop
        Named tuple ``(tau, kernel, covariance, mean_shift)``: ``tau`` shape ``(n+1,)``;
        one input: ``kernel`` ``(n+1,)``, ``covariance`` ``(n+1, n+1)``; two inputs:
        ``kernel`` ``(n+1, 2, 2)``, ``covariance`` ``(n+1, n+1, 2, 2, 2, 2)`` (indexed like
        :func:`fieldgen.kernel_covariance`); ``mean_shift`` a :class:`MeanShiftTerms` of arrays
        shaped like ``kernel``.

    Raises
    ------
    ValueError
        A parameter outside its range (the message starts with its name); relu at ``|c0| = 1``.
    OverflowError
        If the kernel or the corrections leave the float64 range.

    Examples
    --------
    >>> import fieldgen
    >>> res = fieldgen.continuum_one_loop("relu", tau=1.0, sigma_w2=2.0, K0=1.0, points=8)
    >>> res.covariance.shape, res.mean_shift.total.shape
    ((9, 9), (9,))
    >>> bool(abs(res.kernel[-1] - 1.0 * 2.718281828459045 ** 0.5) < 1e-9)  # relu: K0 e^(tau/2)
    True
    >>> r = fieldgen.r_for_tau(1.0, depth=800, sigma_w2=2.0)
    >>> C = fieldgen.kernel_covariance("relu", r=r, sigma_w2=2.0, depth=800, K0=1.0)
    >>> bool(abs(C[-1, -1] / res.covariance[-1, -1] - 1) < 0.01)  # O(1/L) apart
    True
    """
    activation = check.activation(activation)
    input = check.input_mode(input)
    tau = check.positive("tau", tau, scalar=True)
    sigma_w2 = check.positive("sigma_w2", sigma_w2, scalar=True)
    sigma_b2 = check.nonnegative("sigma_b2", sigma_b2, scalar=True)
    points = check.integer("points", points, minimum=2)
    check.kernel_matrix("K0", K0)
    K = kernel(activation, r=0.0, sigma_w2=sigma_w2, sigma_b2=sigma_b2, depth=0, K0=K0, input=input)
    k0 = np.ascontiguousarray(
        [K[0]] if K.ndim == 1 else [K[0, 0, 0], K[0, 1, 1], K[0, 0, 1]], dtype=float
    )
    check.memory("the continuum covariance", 8.0 * 9 * (2 * points + 1.0) ** 2 * 2, "reduce points")
    params = np.array([sigma_w2, sigma_b2])
    _, cov_n, shift_n = _solve(activation, params, k0, tau, points)
    path, cov_2n, shift_2n = _solve(activation, params, k0, tau, 2 * points)
    # Richardson: the trapezoidal error is a series in h^2.
    cov = (4.0 * cov_2n[::2, ::2] - cov_n) / 3.0
    shift = (4.0 * shift_2n[::2] - shift_n) / 3.0
    path = path[::2]
    # (the tadpole is finite there: a NaN in it is a domain problem, reported below)
    feedback_only = np.isnan(shift[:, 2]).any() and not np.isnan(shift[:, 1]).any()
    if feedback_only and not np.isnan(cov).any():
        # The self-feedback at s = tau (the walk takes no step) is its derived limit where one
        # exists (relu, abs, leaky_relu, abrelu); sign's pairs diverge there (like the
        # step^(-1/2), integrable, but not on this grid). Say so, not "overflow".
        raise ValueError(
            f"activation {getattr(activation, 'name', activation)!r}: the continuum mean shift of "
            "two inputs needs the self-feedback where the walk takes no step, which is not finite "
            "for this activation (sign's diverges there); use one input, or the discrete "
            "kernel_mean_shift"
        )
    if not (np.all(np.isfinite(cov)) and np.all(np.isfinite(shift))):
        domain.raise_not_finite(
            "the one-loop corrections",
            str(getattr(activation, "name", activation)),
            k0.reshape(1, -1),
            "the one-loop corrections leave the float64 range (reduce tau)",
        )
    grid = tau * np.arange(points + 1) / points
    if k0.size == 1:
        parts = MeanShiftTerms(shift[:, 0, 0], shift[:, 1, 0], shift[:, 2, 0])
        result = ContinuumOneLoop(grid, path[:, 0], cov[:, :, 0, 0], parts)
    else:
        shift = to_matrix(shift, 1)
        parts = MeanShiftTerms(shift[:, 0], shift[:, 1], shift[:, 2])
        result = ContinuumOneLoop(grid, to_matrix(path, 1), to_matrix(cov, 2), parts)
    if not correction:
        return result
    args = (activation, tau, sigma_w2, sigma_b2, K0, input, points)
    (c_a, s_a), (c_b, s_b) = (_scaled_error(result, *args, m) for m in (2, 4))
    return result._replace(covariance_1=2.0 * c_b - c_a, mean_shift_1=2.0 * s_b - s_a)


def _scaled_error(result, activation, tau, sigma_w2, sigma_b2, K0, input, points, multiple):
    """depth (discrete - continuum) at depth = multiple * points, on the continuum's grid."""
    from .oneloop import kernel_covariance, kernel_mean_shift

    depth = multiple * points
    kw = dict(
        r=r_for_tau(tau, depth, sigma_w2),
        sigma_w2=sigma_w2,
        depth=depth,
        K0=K0,
        sigma_b2=sigma_b2,
        input=input,
    )
    C = kernel_covariance(activation, **kw)[::multiple, ::multiple]
    s = kernel_mean_shift(activation, **kw)[::multiple]
    return depth * (C - result.covariance), depth * (s - result.mean_shift.total)
