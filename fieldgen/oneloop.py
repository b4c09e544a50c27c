"""One-loop (order 1/N) corrections: kernel covariance across layers and the mean-kernel shift."""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import domain, scales
from . import validation as check
from .activations import ActivationLike
from .generated import module
from .meanfield import kernel
from .pairs import to_matrix

_REDUCED = (
    "one-loop corrections are derived for the full block only; the reduced block's "
    "increments r phi(W h + b) are non-Gaussian given the layer below and its "
    "pre-activations carry a mean, whose fluctuations are not in the theory yet"
)


class MeanShiftTerms(NamedTuple):
    """N (E Khat^l - K^l) split into its three parts, each of the shape of the total.

    ``propagated`` is ``J^m N Delta^m``, earlier shifts carried through the layer map;
    ``tadpole`` is ``(1/2) H^m : N Cov(K_C^m)``, the curvature of the layer map times the noise of
    the conditional kernel (docs/theory, "The tadpole correction"); ``self_feedback`` is a
    neuron's own past ``phi phi`` in its later step variance. Returned by
    :func:`fieldgen.mean_shift_terms`.
    """

    propagated: np.ndarray
    tadpole: np.ndarray
    self_feedback: np.ndarray

    @property
    def total(self) -> np.ndarray:
        """The whole shift: ``propagated + tadpole + self_feedback``."""
        return self.propagated + self.tadpole + self.self_feedback


# (p, q) pair-order index of each (a, b, c, d): the 2x2x2x2 layout of fieldgen.pairs.to_matrix.
_PAIR_OF = np.array([[0, 2], [2, 1]])
_FLAT = (3 * _PAIR_OF[:, :, None, None] + _PAIR_OF[None, None]).ravel()


def _pairs_to_matrix(cov: np.ndarray, rows: int = 8192) -> np.ndarray:
    """(L+1, L+1, 3, 3) over pairs -> (L+1, L+1, 2, 2, 2, 2), as ``to_matrix(cov, 2)`` does:
    ``np.take`` of the 16 columns on blocks of `rows` layer pairs, which stay in cache (measured
    4-10x faster than 16 whole-array column copies at depth 1000, 128 MB)."""
    n = cov.shape[0]
    flat = cov.reshape(-1, 9)
    out = np.empty((flat.shape[0], 16))
    for start in range(0, flat.shape[0], rows):
        np.take(flat[start : start + rows], _FLAT, axis=1, out=out[start : start + rows])
    return out.reshape(n, n, 2, 2, 2, 2)


def _one_loop(activation, r, sigma_w2, depth, K0, sigma_b2, block, input, covariance: bool):
    activation, block, input, depth = check.network(activation, block, input, depth)
    if block != "full":
        raise NotImplementedError(_REDUCED)
    if covariance:  # (depth+1)^2 blocks of 3x3: reduce depth
        check.memory("the kernel covariance", 8.0 * 9 * (depth + 1.0) ** 2, "reduce depth")
    # Scalars only (kernel() checks the values; the one-loop evaluators take one network).
    r, sigma_w2, sigma_b2 = (
        check.nonnegative(name, value, scalar=True)
        for name, value in (("r", r), ("sigma_w2", sigma_w2), ("sigma_b2", sigma_b2))
    )
    check.kernel_matrix("K0", K0)  # one or two inputs (kernel() also takes data sets)
    K = kernel(
        activation,
        r=r,
        sigma_w2=sigma_w2,
        sigma_b2=sigma_b2,
        depth=depth,
        K0=K0,
        block=block,
        input=input,
    )
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
    # The covariance alone skips the mean shift (half the O(depth^2) work): shape (1, 3, D).
    shift = np.empty((1 if covariance else depth + 1, 3, D))
    module("oneloop", activation).one_loop(r, sigma_w2, path, cov, shift)
    if s != 1.0 and np.all(np.isfinite(shift)) and np.all(np.isfinite(cov)):
        with np.errstate(over="ignore"):
            cov, shift = cov * s * s, shift * s
        if not (np.all(np.isfinite(shift)) and np.all(np.isfinite(cov))):
            raise OverflowError(
                "the one-loop corrections leave the float64 range (N Cov grows "
                "like K0^2): reduce K0"
            )
    stalled = D == 3 and depth > 0 and bool(np.any(np.all(path[1:] == path[:-1], axis=1)))
    if stalled and np.isnan(shift).any() and not np.isnan(cov).any():
        # Steps below the kernel's float64 resolution: K^l == K^(l-1) bitwise. The pair
        # self-feedback there is its derived limit where one exists (relu, abs, leaky_relu,
        # abrelu); sign's diverges (like the step^(-1/2)): no finite value to return.
        raise ValueError(
            f"r = {r:g}, sigma_w2 = {sigma_w2:g}: the layer steps r^2 (sigma_w2 P + sigma_b2) fall "
            "below the float64 resolution of the kernel (K^l equals K^(l-1) exactly), where the "
            f"two-input self-feedback of {getattr(activation, 'name', activation)!r} is not finite "
            "(sign's diverges as the step goes to 0); use r^2 sigma_w2 >= ~1e-14 (or one input)"
        )
    if not (np.all(np.isfinite(shift)) and np.all(np.isfinite(cov))):
        # The kernel path is finite (kernel() raised otherwise): a singular input or overflow.
        domain.raise_not_finite(
            "the one-loop corrections",
            activation,
            path[:1],
            "the one-loop corrections leave the float64 range (reduce depth or r)",
        )
    if D == 1:
        return cov[:, :, 0, 0], shift[:, :, 0]
    return cov, shift


def kernel_covariance(
    activation: ActivationLike,
    *,
    r: float | None = None,
    sigma_w2: float,
    depth: int,
    K0: ArrayLike,
    sigma_b2: float = 0.0,
    block: str = "full",
    input: str = "kernel",
    tau: float | None = None,
) -> NDArray[np.float64]:
    """Covariance of the empirical kernel across layers, N Cov(Khat^l, Khat^m), at one loop.

    The leading order in 1/N of the covariance of the width-N network's empirical kernel
    ``Khat^l = (1/N) sum_i h_i^l h_i^l`` between layers l and m, multiplied by N (so the result
    does not depend on N). See docs/theory, section "The kernel covariance".

    Parameters
    ----------
    activation : str or fieldgen.Activation
        A built-in name (:data:`fieldgen.ACTIVATIONS`, :data:`fieldgen.PRESETS`) or an
        activation made by :func:`fieldgen.activation`.
    r : float
        Residual scale, >= 0 (a scalar: one network per call).
    tau : float, optional
        Instead of r, a depth-scaled network's tau = r^2 sigma_w^2 L >= 0 (then r =
        sqrt(tau / (sigma_w2 depth)), with sigma_w2 > 0 and depth >= 1). Give r or tau, not both.
    sigma_w2 : float
        Weight variance sigma_w^2 >= 0 (weights are N(0, sigma_w2/N)).
    depth : int
        Number of residual blocks L >= 0.
    K0 : float or array_like, shape (2, 2)
        Input kernel (or the input Gram matrix with ``input="layer"``): a number for one input, a
        symmetric positive semi-definite 2x2 matrix for two.
    sigma_b2 : float, default 0.0
        Bias variance sigma_b^2 >= 0.
    block : {"full"}
        Only the full block ``h + r (W phi(h) + b)`` has a one-loop theory.
    input : {"kernel", "layer"}
        Whether K0 is the kernel K^0 or the Gram matrix of an input layer.

    Returns
    -------
    numpy.ndarray
        One input: shape ``(depth+1, depth+1)``, ``C[l, m] = N Cov(Khat^l, Khat^m)``.
        Two inputs: shape ``(depth+1, depth+1, 2, 2, 2, 2)``,
        ``C[l, m, a, b, c, d] = N Cov(Khat^l_ab, Khat^m_cd)`` (units of K0 squared).
        :func:`fieldgen.pairs.to_pairs` with ``groups=2`` gives the compact
        ``(depth+1, depth+1, 3, 3)`` layout over pairs (11, 22, 12).

    Raises
    ------
    ValueError
        A parameter outside its range (the message starts with its name); relu at ``|c0| = 1`` or
        with a zero variance among two inputs (its pair Hessian is singular there).
    NotImplementedError
        For ``block="reduced"``.
    OverflowError
        If the kernel leaves the float64 range (the message names the layer).

    Examples
    --------
    >>> import fieldgen
    >>> C = fieldgen.kernel_covariance("erf", r=0.3, sigma_w2=1.0, depth=10, K0=1.0)
    >>> C.shape, bool(C[0, 0] == 2.0)          # layer 0: Var of a Gaussian's square, 2 K0^2
    ((11, 11), True)
    >>> C2 = fieldgen.kernel_covariance("erf", r=0.3, sigma_w2=1.0, depth=10,
    ...                                 K0=[[1.0, 0.5], [0.5, 1.0]])
    >>> C2.shape
    (11, 11, 2, 2, 2, 2)
    """
    r = check.residual_scale(r, tau, sigma_w2, depth)
    cov, _ = _one_loop(activation, r, sigma_w2, depth, K0, sigma_b2, block, input, True)
    return cov if cov.ndim == 2 else _pairs_to_matrix(cov)


def mean_shift_terms(
    activation: ActivationLike,
    *,
    r: float | None = None,
    sigma_w2: float,
    depth: int,
    K0: ArrayLike,
    sigma_b2: float = 0.0,
    block: str = "full",
    input: str = "kernel",
    tau: float | None = None,
) -> MeanShiftTerms:
    """The one-loop mean shift N (E[Khat^l] - K^l) split into its three parts.

    See docs/theory, section "The mean shift" for the formulas of the three parts.

    Parameters
    ----------
    activation : str or fieldgen.Activation
        A built-in name (:data:`fieldgen.ACTIVATIONS`, :data:`fieldgen.PRESETS`) or an
        activation made by :func:`fieldgen.activation`.
    r : float
        Residual scale, >= 0 (a scalar).
    tau : float, optional
        Instead of r, a depth-scaled network's tau = r^2 sigma_w^2 L >= 0 (then r =
        sqrt(tau / (sigma_w2 depth)), with sigma_w2 > 0 and depth >= 1). Give r or tau, not both.
    sigma_w2 : float
        Weight variance >= 0.
    depth : int
        Number of residual blocks L >= 0.
    K0 : float or array_like, shape (2, 2)
        Input kernel (or input Gram matrix with ``input="layer"``).
    sigma_b2 : float, default 0.0
        Bias variance >= 0.
    block : {"full"}
        Only the full block has a one-loop theory.
    input : {"kernel", "layer"}
        Meaning of K0.

    Returns
    -------
    MeanShiftTerms
        Named tuple ``(propagated, tadpole, self_feedback)``, each of the shape of
        :func:`kernel_mean_shift`'s result: ``(depth+1,)`` for one input,
        ``(depth+1, 2, 2)`` for two. ``.total`` is their sum.

    Raises
    ------
    ValueError, NotImplementedError, OverflowError
        As :func:`kernel_mean_shift`.

    Examples
    --------
    >>> import fieldgen
    >>> parts = fieldgen.mean_shift_terms("relu", r=0.3, sigma_w2=2.0, depth=50, K0=1.0)
    >>> bool(abs(parts.tadpole).max() == 0.0)    # relu: P(K) = K/2 has no curvature
    True
    >>> bool(parts.self_feedback[-1] > 0)
    True
    """
    r = check.residual_scale(r, tau, sigma_w2, depth)
    _, shift = _one_loop(activation, r, sigma_w2, depth, K0, sigma_b2, block, input, False)
    if shift.ndim == 3:
        shift = to_matrix(shift, 1)  # (depth+1, 3 parts, 3 pairs) -> (.., 3, 2, 2)
    return MeanShiftTerms(shift[:, 0], shift[:, 1], shift[:, 2])


def kernel_mean_shift(
    activation: ActivationLike,
    *,
    r: float | None = None,
    sigma_w2: float,
    depth: int,
    K0: ArrayLike,
    sigma_b2: float = 0.0,
    block: str = "full",
    input: str = "kernel",
    terms: bool | None = None,
    tau: float | None = None,
) -> NDArray[np.float64]:
    """The one-loop shift of the mean kernel, N (E[Khat^l] - K^l), for l = 0..depth.

    At finite width N the expected empirical kernel differs from the mean-field kernel K^l by
    ``shift / N + O(1/N^2)``; this returns ``shift`` (independent of N). See docs/theory, section
    "One loop: the mean shift".

    Parameters
    ----------
    activation : str or fieldgen.Activation
        A built-in name (:data:`fieldgen.ACTIVATIONS`, :data:`fieldgen.PRESETS`) or an
        activation made by :func:`fieldgen.activation`.
    r : float
        Residual scale, >= 0 (a scalar).
    tau : float, optional
        Instead of r, a depth-scaled network's tau = r^2 sigma_w^2 L >= 0 (then r =
        sqrt(tau / (sigma_w2 depth)), with sigma_w2 > 0 and depth >= 1). Give r or tau, not both.
    sigma_w2 : float
        Weight variance sigma_w^2 >= 0.
    depth : int
        Number of residual blocks L >= 0.
    K0 : float or array_like, shape (2, 2)
        Input kernel (or input Gram matrix with ``input="layer"``).
    sigma_b2 : float, default 0.0
        Bias variance >= 0.
    block : {"full"}
        Only the full block has a one-loop theory.
    input : {"kernel", "layer"}
        Meaning of K0.
    terms : bool, optional
        Deprecated since 0.2.0 (removed in 0.3.0): ``terms=True`` returned the parts; use
        :func:`mean_shift_terms`.

    Returns
    -------
    numpy.ndarray
        Shape ``(depth+1,)`` for one input and ``(depth+1, 2, 2)`` for two (units of K0);
        ``shift[0] == 0`` (the input kernel is exact).

    Raises
    ------
    ValueError
        A parameter outside its range (the message starts with its name); relu at ``|c0| = 1``.
    NotImplementedError
        For ``block="reduced"``.
    OverflowError
        If the kernel leaves the float64 range.

    Examples
    --------
    >>> import fieldgen
    >>> s = fieldgen.kernel_mean_shift("relu", r=0.3, sigma_w2=2.0, depth=100, K0=1.0)
    >>> s.shape
    (101,)
    >>> K = fieldgen.kernel("relu", r=0.3, sigma_w2=2.0, depth=100, K0=1.0)
    >>> expected_at_width_256 = K + s / 256
    """
    r = check.residual_scale(r, tau, sigma_w2, depth)
    if terms is not None:
        warnings.warn(
            "kernel_mean_shift(terms=...) is deprecated and will be removed in "
            "fieldgen 0.3; use fieldgen.mean_shift_terms(...) for the parts",
            DeprecationWarning,
            stacklevel=2,
        )
    parts = mean_shift_terms(
        activation,
        r=r,
        sigma_w2=sigma_w2,
        depth=depth,
        K0=K0,
        sigma_b2=sigma_b2,
        block=block,
        input=input,
    )
    return parts if terms else parts.total  # type: ignore[return-value]
