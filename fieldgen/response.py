"""The kernel response chi^{L,0} = dK^L/dK^0 and the sensitivity S = dc^L/dc^0 (mean field),
evaluated by the generated forward-mode recursions (``generated/response_<activation>.py``)."""

from __future__ import annotations

import warnings
from typing import cast

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import domain, scales
from . import validation as check
from .activations import ActivationLike
from .generated import module
from .meanfield import _grid, input_jacobian_grid, input_kernel_grid, kernel, run_on_grid
from .pairs import to_matrix, to_pairs


def _raise_if_not_finite(out: np.ndarray, what: str, network: dict, k0: np.ndarray) -> None:
    """An OverflowError naming the layer if the kernel overflows, a ValueError naming K0 if the
    input sits on a singularity of the layer map's derivative, never a NaN."""
    if np.all(np.isfinite(out)):
        return
    bad = ~np.all(np.isfinite(out.reshape(out.shape[0], -1)), axis=1)
    # The kernel at the failing grid points: if it overflows, say where.
    try:
        kernel(
            **{
                **network,
                **{
                    name: np.broadcast_to(network[name], bad.shape)[bad]
                    for name in ("r", "sigma_w2", "sigma_b2")
                },
            }
        )
    except OverflowError as exc:
        raise OverflowError(f"{what} is not finite: {exc}") from None
    domain.raise_not_finite(
        what,
        network["activation"],
        k0[bad],
        f"{what} leaves the float64 range within {network['depth']} layers (reduce depth or r)",
    )


def response(
    activation: ActivationLike,
    *,
    r: ArrayLike | None = None,
    sigma_w2: ArrayLike,
    depth: int,
    K0: ArrayLike,
    sigma_b2: ArrayLike = 0.0,
    block: str = "full",
    input: str = "kernel",
    width: int | None = None,
    tau: ArrayLike | None = None,
) -> float | NDArray[np.float64]:
    """The mean-field kernel response chi^{L,0} = dK^L/dK^0 = T^{L-1} ... T^0 (L = depth).

    How the output kernel of an infinitely wide network moves when its input kernel moves: the
    product of the layer Jacobians T^l = dK^{l+1}/dK^l along the mean-field path (docs/theory,
    section "Response and sensitivity").

    Parameters
    ----------
    activation : str or fieldgen.Activation
        A built-in name (:data:`fieldgen.ACTIVATIONS`, :data:`fieldgen.PRESETS`) or an
        activation made by :func:`fieldgen.activation`.
    r : float or array_like
        Residual scale, >= 0. r, sigma_w2 and sigma_b2 broadcast; their shape is prepended.
    tau : float or array_like, optional
        Instead of r, a depth-scaled network's tau = r^2 sigma_w^2 L >= 0 (then r =
        sqrt(tau / (sigma_w2 depth)), with sigma_w2 > 0 and depth >= 1; tau broadcasts like r).
        Give r or tau, not both.
    sigma_w2 : float or array_like
        Weight variance sigma_w^2 >= 0.
    depth : int
        Number of residual blocks L >= 0.
    K0 : float or array_like, shape (2, 2)
        Input kernel (``input="kernel"``) or input Gram matrix G (``input="layer"``; then the
        derivative is with respect to G and the input layer's dK^0/dG = sigma_w^2 is included).
    sigma_b2 : float or array_like, default 0.0
        Bias variance >= 0.
    block : {"full", "reduced"}
        Residual block: ``h + r (W phi(h) + b)`` or ``h + r phi(W h + b)``.
    input : {"kernel", "layer"}
        Meaning of K0.
    width : int, optional
        Deprecated since 0.2.0 (removed in 0.3.0): use :func:`response_one_loop`.

    Returns
    -------
    float or numpy.ndarray
        One input: ``dK^L/dK^0``, a float for scalar parameters, else of the broadcast shape.
        Two inputs: shape ``(..., 2, 2, 2, 2)``, ``chi[..., a, b, c, d] = dK^L_ab / dK0_cd``,
        where K0_cd and K0_dc are one variable (a symmetric input moves both): a symmetric
        perturbation dK0 moves K^L_ab by ``sum over c <= d of chi[..., a, b, c, d] dK0_cd``.
        Dimensionless.

    Raises
    ------
    ValueError
        A parameter outside its range (the message starts with its name), or K0 on a
        singularity of the layer map's derivative (relu with a zero variance among two inputs;
        reduced relu block at K0 = 0 without bias).
    OverflowError
        If the kernel leaves the float64 range (the message names the layer).

    Examples
    --------
    >>> import fieldgen
    >>> chi = fieldgen.response("erf", r=0.3, sigma_w2=1.0, depth=100,
    ...                         K0=[[1.0, 0.9], [0.9, 1.0]])
    >>> chi.shape
    (2, 2, 2, 2)
    >>> # relu, one input: chi = (1 + r^2 sigma_w^2 / 2)^L = 1.25^6 exactly
    >>> round(fieldgen.response("relu", r=0.5, sigma_w2=2.0, depth=6, K0=1.0), 9)
    3.814697266
    """
    r = check.residual_scale(r, tau, sigma_w2, depth)
    if width is not None:
        warnings.warn(
            "response(width=N) is deprecated and will be removed in fieldgen 0.3; "
            "use fieldgen.response_one_loop(..., width=N)",
            DeprecationWarning,
            stacklevel=2,
        )
        return response_one_loop(
            activation,
            r=cast(float, r),
            sigma_w2=cast(float, sigma_w2),
            depth=depth,
            K0=K0,
            width=width,
            sigma_b2=cast(float, sigma_b2),
            block=block,
            input=input,
        )
    chi = _response_pairs(
        activation,
        r=r,
        sigma_w2=sigma_w2,
        depth=depth,
        K0=K0,
        sigma_b2=sigma_b2,
        block=block,
        input=input,
    )
    return chi if np.ndim(K0) == 0 else to_matrix(chi, 2)


def _response_pairs(activation, *, r, sigma_w2, depth, K0, sigma_b2, block, input):
    """chi in the generated code's layout: a float or (...) for one input, (..., 3, 3) over pairs
    (11, 22, 12) for two (out[p, s] = dK^depth_p / dK0_s)."""
    activation, block, input, depth = check.network(activation, block, input, depth)
    K0_entries, n_inputs = check.kernel_matrix("K0", K0)
    shape, grids = _grid(r, sigma_w2, sigma_b2)
    generated = module("response", activation)
    which, p = ("single", 1) if n_inputs == 1 else ("pair", 3)
    k0 = input_kernel_grid(K0_entries, n_inputs, input, grids[1], grids[2]).reshape(-1, p)
    if n_inputs == 2:
        # chi is scale-free where K is homogeneous in K^0 (and for r = 0, the identity)
        k0 = k0 / scales.rescaling(activation, k0, grids[2], identity=not np.any(grids[0]))
    jac = input_jacobian_grid(K0_entries, n_inputs, input, grids[1], grids[2])
    seeds = getattr(generated, f"SEEDS_{which.upper()}")
    v0 = np.ascontiguousarray(np.stack([jac[:, a, b] for a, b in seeds], axis=1))
    fn = getattr(generated, f"response_{which}_{block}")
    out = run_on_grid(fn, grids, (k0, v0), np.empty((grids[0].shape[0], p * p)), depth)
    network = dict(
        activation=activation,
        r=grids[0],
        sigma_w2=grids[1],
        sigma_b2=grids[2],
        depth=depth,
        K0=K0,
        block=block,
        input=input,
    )
    _raise_if_not_finite(out, "the kernel response", network, k0)
    if n_inputs == 1:
        return float(out[0, 0]) if shape == () else out.reshape(shape)
    return out.reshape(shape + (3, 3))


def response_one_loop(
    activation: ActivationLike,
    *,
    r: float | None = None,
    sigma_w2: float,
    depth: int,
    K0: ArrayLike,
    width: int,
    sigma_b2: float = 0.0,
    block: str = "full",
    input: str = "kernel",
    tau: float | None = None,
) -> float | NDArray[np.float64]:
    """The one-loop response d E[Khat^L]/dK^0 of a network of finite width N.

    ``chi + (1/N) d[N (E Khat^L - K^L)]/dK0``: the mean-field response (:func:`response`) plus
    the derivative of the one-loop mean shift (:func:`kernel_mean_shift`) divided by the width.
    The shift's derivative is taken by central differences (relative step 1e-4, truncation error
    ~1e-8 relative, far below 1/N; one-sided where a step would leave the positive semi-definite
    cone, at ``|c0| = 1`` or K0 = 0). See docs/theory, "The one-loop response".

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
        Input kernel or input Gram matrix.
    width : int
        Network width N >= 1.
    sigma_b2 : float, default 0.0
        Bias variance >= 0.
    block : {"full"}
        The one-loop theory covers the full block only.
    input : {"kernel", "layer"}
        Meaning of K0.

    Returns
    -------
    float or numpy.ndarray
        One input: a float. Two inputs: shape ``(2, 2, 2, 2)`` in the convention of
        :func:`response`.

    Raises
    ------
    ValueError
        A parameter outside its range (``width`` not a positive integer, ...), or K0 too close to
        singular to differentiate.
    NotImplementedError
        For ``block="reduced"``.
    OverflowError
        If the kernel leaves the float64 range.

    Examples
    --------
    >>> import fieldgen
    >>> kw = dict(r=0.5, sigma_w2=2.0, depth=10, K0=1.0)
    >>> chi = fieldgen.response("relu", **kw)
    >>> chi_64 = fieldgen.response_one_loop("relu", width=64, **kw)
    >>> bool(chi_64 > chi)      # relu: the self-feedback raises the finite-width kernel
    True
    """
    r = check.residual_scale(r, tau, sigma_w2, depth)
    activation, block, input, depth = check.network(activation, block, input, depth)
    check.kernel_matrix("K0", K0)
    width = check.integer("width", width, minimum=1)
    chi = _one_loop_response(
        activation,
        r=r,
        sigma_w2=sigma_w2,
        depth=depth,
        K0=K0,
        sigma_b2=sigma_b2,
        block=block,
        input=input,
        width=width,
    )
    return chi if np.ndim(K0) == 0 else to_matrix(chi, 2)


def sensitivity_inputs(*, c0, K0, sigma_w2, sigma_b2, input):
    """Initial state (K^0, K^0_12) and seed dK^0_12/dc0 of the sensitivity recursion, per grid point.

    The two inputs have equal norm K0 and correlation c0: K0_arg = K0 [[1, c0], [c0, 1]], so
    dK0_arg/dc0 = (0, 0, K0) in pair order, pushed through the input layer's Jacobian.
    """
    entries = np.array([K0, K0, c0 * K0])
    k0 = input_kernel_grid(entries, 2, input, sigma_w2, sigma_b2)
    jac = input_jacobian_grid(entries, 2, input, sigma_w2, sigma_b2)
    seed = jac[:, 2, :] @ np.array([0.0, 0.0, K0])
    return np.ascontiguousarray(k0[:, [0, 2]]), np.ascontiguousarray(seed[:, None])


def sensitivity(
    activation: ActivationLike,
    *,
    r: ArrayLike | None = None,
    sigma_w2: ArrayLike,
    depth: int,
    c0: float,
    K0: float = 1.0,
    sigma_b2: ArrayLike = 0.0,
    block: str = "full",
    input: str = "kernel",
    width: int | None = None,
    tau: ArrayLike | None = None,
) -> float | NDArray[np.float64]:
    """The sensitivity S = dc^L/dc^0 of the output correlation to the input correlation.

    For two inputs of equal norm K0 and correlation c0, ``S = chi_{12,12} K^0/K^L`` (docs/theory,
    "Response and sensitivity"). S(0) = 1: an identity network passes correlations through.

    With ``width=N``: the one-loop sensitivity of a width-N network,
    ``S_N = d E[chat^L]/dc^0`` to O(1/N), where ``chat^L = Khat_12/sqrt(Khat_11 Khat_22)`` is
    the empirical output correlation of one network (the quantity a simulation averages).
    ``E[chat^L] = c^L + G/N + O(1/N^2)`` with
    ``G = grad g . shift^L + (1/2) Hess g : NCov^{LL}`` (g(K) = K_12/sqrt(K_11 K_22); the mean
    shift :func:`fieldgen.kernel_mean_shift` and the delta-method term of the covariance
    :func:`fieldgen.kernel_covariance` at the last layer), and ``S_N = S + (dG/dc^0)/N``. dG/dc^0
    is a central difference with step 1e-3 in c0 (truncation ~1e-6 relative to the 1/N term;
    one-sided within 1e-3 of ``|c0| = 1``). docs/theory, "The sensitivity at finite width".

    Parameters
    ----------
    activation : str or fieldgen.Activation
        A built-in name (:data:`fieldgen.ACTIVATIONS`, :data:`fieldgen.PRESETS`) or an
        activation made by :func:`fieldgen.activation`.
    r : float or array_like
        Residual scale, >= 0. r, sigma_w2 and sigma_b2 broadcast; their shape is the result's.
    tau : float or array_like, optional
        Instead of r, a depth-scaled network's tau = r^2 sigma_w^2 L >= 0 (then r =
        sqrt(tau / (sigma_w2 depth)), with sigma_w2 > 0 and depth >= 1; tau broadcasts like r).
        Give r or tau, not both.
    sigma_w2 : float or array_like
        Weight variance >= 0.
    depth : int
        Number of residual blocks L >= 0.
    c0 : float
        Input correlation in [-1, 1].
    K0 : float, default 1.0
        Norm (variance) of each input, > 0.
    sigma_b2 : float or array_like, default 0.0
        Bias variance >= 0.
    block : {"full", "reduced"}, default "full"
        Residual block.
    input : {"kernel", "layer"}, default "kernel"
        With ``"layer"``, c0 and K0 describe the input Gram matrix of an input layer.
    width : int, optional
        Network width N >= 1: the one-loop sensitivity S_N (block must be "full"). None (the
        default): the mean-field (infinite-width) S. With a width, each grid point runs two
        two-input one loops (kernel covariance and mean shift) at c0 +- 1e-3.

    Returns
    -------
    float or numpy.ndarray
        A float for scalar parameters, else an array of their broadcast shape. Dimensionless.

    Raises
    ------
    ValueError
        A parameter outside its range (message starts with its name); an input layer with
        ``sigma_w2 = sigma_b2 = 0`` (no input kernel, no correlation); ``width`` not an integer
        >= 1, or given with ``block="reduced"``.
    OverflowError
        If the kernel leaves the float64 range.

    Examples
    --------
    >>> import fieldgen
    >>> S = fieldgen.sensitivity("tanh", r=[0.0, 0.1, 0.2, 0.3], sigma_w2=1.0, depth=300, c0=0.9)
    >>> S.shape, float(S[0])
    ((4,), 1.0)
    >>> S_inf = fieldgen.sensitivity("erf", r=0.2, sigma_w2=2.0, depth=30, c0=0.9)
    >>> S_16 = fieldgen.sensitivity("erf", r=0.2, sigma_w2=2.0, depth=30, c0=0.9, width=16)
    >>> bool(S_16 != S_inf)
    True
    """
    r = check.residual_scale(r, tau, sigma_w2, depth)
    activation, block, input, depth = check.network(activation, block, input, depth)
    c0 = check.correlation("c0", c0)
    K0 = check.positive("K0", K0, scalar=True)
    width = check.width_for_one_loop(width, block)
    shape, grids = _grid(r, sigma_w2, sigma_b2)
    k0, v0 = sensitivity_inputs(c0=c0, K0=K0, sigma_w2=grids[1], sigma_b2=grids[2], input=input)
    if np.any(k0[:, 0] <= 0):
        # Only an input layer with sigma_w2 = sigma_b2 = 0 gets here: K^0 = 0, c^0 undefined.
        raise ValueError(
            "sigma_w2 and sigma_b2: with input='layer' the input kernel "
            "K^0 = sigma_w2 K0 + sigma_b2 must be > 0 for the correlation to exist; "
            "got sigma_w2 = sigma_b2 = 0"
        )
    # S is scale-free where K is homogeneous in K^0 (exact rescaling); an error elsewhere.
    s = scales.rescaling(
        activation, k0[:, [0, 0, 1]], grids[2], identity=input == "kernel" and not np.any(grids[0])
    )
    if s != 1.0:
        k0, v0 = k0 / s, v0 / s
    fn = getattr(module("response", activation), f"sensitivity_{block}")
    out = run_on_grid(fn, grids, (k0, v0), np.empty((grids[0].shape[0], 1)), depth)
    network = dict(
        activation=activation,
        r=grids[0],
        sigma_w2=grids[1],
        sigma_b2=grids[2],
        depth=depth,
        K0=np.array([[1.0, c0], [c0, 1.0]]) * (K0 / s),
        block=block,
        input=input,
    )
    _raise_if_not_finite(out, "the sensitivity", network, k0[:, [0, 0, 1]])
    if width is not None:
        kw = dict(activation=activation, depth=depth, K0=K0, input=input)
        out = out[:, 0] + np.array(
            [
                _correlation_shift_slope(c0=c0, r=a, sigma_w2=b, sigma_b2=c, **kw) / width
                for a, b, c in zip(*grids)
            ]
        )
    return float(np.ravel(out)[0]) if shape == () else out.reshape(shape)


def correlation_shift(activation, *, r, sigma_w2, depth, K0, sigma_b2=0.0, input="kernel"):
    """N (E[chat^L] - c^L) at one loop for two inputs K0 (2x2): the mean shift of the kernel
    through grad g plus the delta-method term (1/2) Hess g : N Cov(Khat^L, Khat^L), with
    g(K) = K_12/sqrt(K_11 K_22) the correlation."""
    from .oneloop import kernel_covariance, kernel_mean_shift

    kw = dict(r=r, sigma_w2=sigma_w2, depth=depth, K0=K0, sigma_b2=sigma_b2, input=input)
    K = kernel(activation, **kw)[-1]
    shift = to_pairs(kernel_mean_shift(activation, **kw)[-1])  # (11, 22, 12)
    cov = kernel_covariance(activation, **kw)[-1, -1]
    C = np.array([[cov[a, b, c, d] for (c, d) in _PAIRS] for (a, b) in _PAIRS])
    grad, hess = _correlation_derivatives(K[0, 0], K[1, 1], K[0, 1])
    return float(grad @ shift + 0.5 * np.sum(hess * C))


_PAIRS = ((0, 0), (1, 1), (0, 1))


def _correlation_derivatives(k11, k22, k12):
    """Gradient and Hessian of g = k12/sqrt(k11 k22) in the pair order (11, 22, 12), derived in
    derivations/correlation.py and printed into generated/shared.py."""
    from .generated.shared import _correlation_derivatives as derived

    g1, g2, g3, h11, h12, h13, h22, h23, h33 = derived(float(k11), float(k22), float(k12))
    grad = np.array([g1, g2, g3])
    hess = np.array([[h11, h12, h13], [h12, h22, h23], [h13, h23, h33]])
    return grad, hess


C0_STEP = 1e-3  # step in c0 of the central difference of the one-loop correlation shift


def _correlation_shift_slope(*, c0, K0, **kw):
    """d/dc0 of correlation_shift for two inputs of norm K0 and correlation c0 (central
    difference, one-sided where c0 +- C0_STEP leaves [-1, 1])."""

    def G(c):
        return correlation_shift(K0=K0 * np.array([[1.0, c], [c, 1.0]]), **kw)

    up, down = min(c0 + C0_STEP, 1.0), max(c0 - C0_STEP, -1.0)
    return (G(up) - G(down)) / (up - down)


def _one_loop_response(activation, *, r, sigma_w2, depth, K0, sigma_b2, block, input, width):
    """chi + (1/N) d shift^depth / dK0 with the shift's derivative by central differences
    (one-sided where a step would leave the positive semi-definite cone: c0 = +-1, K0 = 0)."""
    from .oneloop import kernel_mean_shift

    for name, value in (("r", r), ("sigma_w2", sigma_w2), ("sigma_b2", sigma_b2)):
        check.nonnegative(name, value, scalar=True)
    kw = dict(r=r, sigma_w2=sigma_w2, depth=depth, sigma_b2=sigma_b2, block=block, input=input)
    chi = _response_pairs(activation, K0=K0, **kw)
    entries, n_inputs = check.kernel_matrix("K0", K0)
    # A step per entry relative to its own scale (a diagonal entry, or sqrt(K11 K22) for K12):
    # one step for all would be large against the smaller norm when the norms differ a lot.
    scales = (
        np.abs(entries)
        if n_inputs == 1
        else np.array([entries[0], entries[1], np.sqrt(entries[0]) * np.sqrt(entries[1])])
    )
    fallback = max(float(np.max(np.abs(entries))), 1e-12)
    steps = 1e-4 * np.where(scales > 0, scales, fallback)

    def shift(moved):
        """N shift^depth at pair entries `moved`, or None outside the cone (the same rule, and
        round-off tolerance, as the check of K0 itself: the centre is always inside)."""
        arg = float(moved[0]) if n_inputs == 1 else check.pair_to_matrix(moved)
        try:
            check.kernel_matrix("K0", arg)
        except ValueError:
            return None
        last = kernel_mean_shift(activation, K0=arg, **kw)[-1]
        return np.atleast_1d(last) if n_inputs == 1 else to_pairs(last)

    centre = None
    derivative = np.empty((len(entries), len(entries)))
    for s, h in enumerate(steps):
        step = np.zeros(len(entries))
        step[s] = h
        up, down = shift(entries + step), shift(entries - step)
        if up is None and down is None:
            raise ValueError("K0 is too close to singular to differentiate the one-loop shift")
        if up is None or down is None:
            centre = shift(entries) if centre is None else centre
        if up is None:
            derivative[:, s] = (centre - down) / h
        elif down is None:
            derivative[:, s] = (up - centre) / h
        else:
            derivative[:, s] = (up - down) / (2 * h)
    correction = derivative / width
    return chi + (correction[0, 0] if n_inputs == 1 else correction)
