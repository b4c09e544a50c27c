"""The optimal residual scale r* = argmax_r S(r) and the range of maximal sensitivity.

method="numeric": S(r) of the discrete network (the generated sensitivity recursion) on a
geometric grid of r, then Brent's method for the maximum and for the two half-maximum points
(where S(r)/S(0) - 1 is half its maximum). method="analytic": the continuum limit,
r* = sqrt(tau*/(sigma_w^2 (depth - L0))), with tau* from the flow and L0 from its first-order
correction (``fieldgen.continuum``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import brent, continuum
from . import progress as _progress
from . import validation as check
from .activations import ActivationLike
from .response import sensitivity, sensitivity_inputs

METHODS = ("numeric", "analytic")
# The search grid covers tau = r^2 sigma_w^2 depth in [TAU_LO, TAU_HI] x (1 + K^0) with GRID
# points (ratio ~1.4 in r between neighbours); it grows by EXTEND while S still rises at its end.
TAU_LO, TAU_HI, GRID, EXTEND, MAX_EXTENSIONS = 1e-2, 1e3, 24, 1e2, 2
XTOL = 1e-9  # relative tolerance in r of the maximum and the half-maximum points
GAIN = 1e-12  # S(r) - S(0) below this is no gain (round-off; linear: S = 1 exactly)
ROUNDOFF_PER_LAYER = 1e-14  # ~50 ulp per layer: the noise floor of S after many layers
TYPICAL = (0.1, 0.3)
# Rough cost of one layer of the sensitivity recursion at one r (for the progress bar only):
# tanh has no closed form and integrates numerically in every layer.
SECONDS_PER_LAYER = {"tanh": 2e-3}
ONE_LOOP_SECONDS_PER_LAYER2 = 1e-5  # rough: a two-input one loop at depth L (progress bar only)


@dataclass(frozen=True)
class OptimalR:
    """r* and the range of maximal sensitivity, returned by :func:`fieldgen.optimal_r`.

    ``r_star`` is None when S has no interior maximum (then the result is falsy and ``message``
    says why); ``S_max`` is S(r*); ``r_lo`` and ``r_hi`` are where S(r)/S(0) - 1 is half its
    maximum (None when it does not fall that far); ``method`` is "numeric" or "analytic".
    Analytic results also carry ``tau_star``, ``L0`` and the ``approximation`` used.
    """

    r_star: float | None
    S_max: float | None
    r_lo: float | None
    r_hi: float | None
    method: str
    message: str
    tau_star: float | None = None
    L0: float | None = None
    approximation: str | None = None
    S0: float | None = None  # S(r = 0): 1 for input="kernel", below 1 with an input layer

    def __bool__(self) -> bool:
        return self.r_star is not None

    def contains(self, lo: float = TYPICAL[0], hi: float = TYPICAL[1]) -> bool:
        """Whether [lo, hi] lies inside the range of maximal sensitivity."""
        if self.r_star is None or self.r_lo is None:
            return False
        return self.r_lo <= lo and (self.r_hi is None or hi <= self.r_hi)


def optimal_r(
    activation: ActivationLike,
    *,
    sigma_w2: float,
    depth: int,
    c0: float,
    K0: float = 1.0,
    sigma_b2: float = 0.0,
    block: str = "full",
    input: str = "kernel",
    method: str = "numeric",
    progress: bool | None = None,
    width: int | None = None,
) -> OptimalR:
    """The optimal residual scale r* = argmax_r S(r) and the range of maximal sensitivity.

    S(r) = dc^L/dc^0 is the sensitivity of two inputs of equal norm K0 and correlation c0
    (:func:`fieldgen.sensitivity`); the range is where S(r)/S(0) - 1 is at least half its
    maximum (docs/theory, "Continuum limit and the optimal residual scale").

    Parameters
    ----------
    activation : str or fieldgen.Activation
        A built-in name (:data:`fieldgen.ACTIVATIONS`, :data:`fieldgen.PRESETS`) or an
        activation made by :func:`fieldgen.activation`.
    sigma_w2 : float
        Weight variance, > 0.
    depth : int
        Number of residual blocks L >= 1.
    c0 : float
        Input correlation in [-1, 1].
    K0 : float, default 1.0
        Norm of each input, > 0.
    sigma_b2 : float, default 0.0
        Bias variance >= 0.
    block : {"full", "reduced"}, default "full"
        Residual block.
    input : {"kernel", "layer"}, default "kernel"
        Meaning of c0 and K0.
    method : {"numeric", "analytic"}, default "numeric"
        ``"numeric"``: S of the discrete network on a geometric r-grid, refined by Brent's
        method. ``"analytic"``: the continuum limit ``r* = sqrt(tau*/(sigma_w^2 (L - L0)))``
        with tau* and L0 derived from the flow.
    progress : bool, optional
        Show a progress bar on standard error (None: when the search looks longer than a few
        seconds and stderr is a terminal).
    width : int, optional
        Network width N >= 1: maximise the one-loop sensitivity S_N
        (``fieldgen.sensitivity(..., width=N)``, the derivative of the mean empirical output
        correlation) instead of the mean-field S; method must be "numeric" and block "full".
        Each evaluation of S_N runs two-input one loops (about 150 evaluations per search).

    Returns
    -------
    OptimalR
        ``r_star`` (None when S has no interior maximum, e.g. relu; then ``bool(result)`` is
        False and ``message`` says why), ``S_max``, ``r_lo``, ``r_hi``; analytic results also
        carry ``tau_star``, ``L0`` and ``approximation``.

    Raises
    ------
    ValueError
        A parameter outside its range (message starts with its name); ``width`` with
        ``method="analytic"`` or ``block="reduced"``.
    OverflowError
        Only if every r of the search overflows (overflowing r are skipped).

    Examples
    --------
    >>> import fieldgen
    >>> best = fieldgen.optimal_r("erf", sigma_w2=2.0, depth=300, c0=0.9)
    >>> round(best.r_star, 4), round(best.r_lo, 4), round(best.r_hi, 4)
    (0.1829, 0.0852, 0.3947)
    >>> best.contains(0.1, 0.3)
    True
    >>> bool(fieldgen.optimal_r("relu", sigma_w2=2.0, depth=100, c0=0.9))   # no maximum
    False
    """
    sigma_w2 = check.positive("sigma_w2", sigma_w2, scalar=True)
    sigma_b2 = check.nonnegative("sigma_b2", sigma_b2, scalar=True)
    depth = check.integer("depth", depth, minimum=1)
    c0 = check.correlation("c0", c0)
    K0 = check.positive("K0", K0, scalar=True)
    method = check.choice("method", method, METHODS)
    width = check.width_for_one_loop(width, block)
    if width is not None and method != "numeric":
        raise ValueError(f"method must be 'numeric' with width given; got method={method!r}")
    kw: dict[str, Any] = dict(
        activation=activation,
        sigma_w2=sigma_w2,
        depth=depth,
        c0=c0,
        K0=K0,
        sigma_b2=sigma_b2,
        block=block,
        input=input,
    )
    # S(0) = 1 (chi = identity); evaluating it also validates activation, block and input.
    if width is not None:
        # At finite width S_N(0) != 1: the sampled input layer's own correlation is biased.
        kw["width"] = width
    s0 = sensitivity(r=0.0, **kw)
    k0, _ = sensitivity_inputs(
        c0=c0, K0=K0, sigma_w2=np.array([sigma_w2]), sigma_b2=np.array([sigma_b2]), input=input
    )
    if method == "analytic":
        return _analytic(kw, float(k0[0, 0]), float(k0[0, 1]))
    # Evaluations of S: the grid, its extensions and Brent's searches (a typical count).
    evaluations = GRID + 100
    seconds = evaluations * depth * SECONDS_PER_LAYER.get(kw["activation"], 3e-8)
    if width is not None:
        seconds += evaluations * 4 * ONE_LOOP_SECONDS_PER_LAYER2 * depth**2
    bar = _progress.Progress(
        evaluations,
        f"optimal_r {kw['activation']} depth {depth}",
        _progress.wanted(progress, seconds),
    )
    try:
        return _numeric(kw, float(k0[0, 0]), s0, bar)
    finally:
        bar.close()


# ---- numeric -------------------------------------------------------------------------------


def _numeric(kw, k0, s0, bar) -> OptimalR:
    def S(r):
        value = sensitivity(r=r, **kw)
        bar.update(int(np.size(r)))
        return value

    with np.errstate(over="ignore", divide="ignore"):
        scale = (1.0 + k0) / (kw["sigma_w2"] * kw["depth"])
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(
            f"sigma_w2 = {kw['sigma_w2']:g} and K0 = {kw['K0']:g}: the r grid "
            "(1 + K^0)/(sigma_w2 depth) leaves the float64 range; use sigma_w2 >= 1e-300 "
            "and K0 <= 1e300"
        )
    top = TAU_HI
    r = np.sqrt(scale * np.geomspace(TAU_LO, top, GRID))
    values = finite_or_nan(S, r)
    for _ in range(MAX_EXTENSIONS):
        if not np.any(np.isfinite(values)) or np.nanargmax(values) != _last_finite(values):
            break
        more = np.sqrt(scale * np.geomspace(top, top * EXTEND, GRID // 2 + 1)[1:])
        top *= EXTEND
        r, values = np.concatenate([r, more]), np.concatenate([values, finite_or_nan(S, more)])
    if not np.any(np.isfinite(values)):
        raise OverflowError(
            f"the kernel leaves the float64 range for every r scanned (r >= "
            f"{r[0]:.3g}): reduce depth, sigma_w2, sigma_b2 or K0"
        )
    r, values = np.concatenate([[0.0], r]), np.concatenate([[s0], values])
    finite = np.isfinite(values)
    r, values = r[finite], values[finite]
    i = int(np.argmax(values))
    # Round-off in S grows like depth x machine epsilon; a gain below that is noise.
    if values[i] - s0 <= max(GAIN, ROUNDOFF_PER_LAYER * kw["depth"]):
        return OptimalR(
            None,
            None,
            None,
            None,
            "numeric",
            f"no interior maximum: S(r) <= S(0) = {s0:g} for every r scanned up to r = {r[-1]:.3g}",
            S0=float(s0),
        )
    if i == r.size - 1:
        return OptimalR(
            None,
            None,
            None,
            None,
            "numeric",
            f"no interior maximum found: S(r) still grows at r = {r[-1]:.3g}",
            S0=float(s0),
        )
    r_star, s_max = brent.maximise(S, r[i - 1], r[i + 1], xtol=XTOL)
    level = s0 + 0.5 * (s_max - s0)
    below = np.flatnonzero(values[:i] < level)
    above = np.flatnonzero(values[i + 1 :] < level) + i + 1
    r_lo = brent.root(
        lambda x: S(x) - level, r[below[-1]], r[below[-1] + 1], xtol=XTOL * r[below[-1] + 1]
    )
    r_hi = (
        brent.root(lambda x: S(x) - level, r[above[0] - 1], r[above[0]], xtol=XTOL * r[above[0]])
        if above.size
        else None
    )
    message = f"r* = {r_star:.6g}, S(r*) = {s_max:.6g} (S(0) = {s0:g})"
    if r_hi is None:
        message += f"; S stays above half its gain up to r = {r[-1]:.3g}"
    return OptimalR(
        float(r_star),
        float(s_max),
        float(r_lo),
        None if r_hi is None else float(r_hi),
        "numeric",
        message,
        S0=float(s0),
    )


def finite_or_nan(S, r):
    """S on a grid, NaN where the kernel leaves the float64 range."""
    try:
        return np.asarray(S(r), dtype=float)
    except OverflowError:
        return np.array([_safe_point(S, x) for x in r])


def _safe_point(S, x):
    try:
        return float(S(x))
    except OverflowError:
        return math.nan


def _last_finite(values) -> int:
    return int(np.flatnonzero(np.isfinite(values))[-1])


# ---- analytic ------------------------------------------------------------------------------


def _analytic(kw, k0, k12) -> OptimalR:
    opt = continuum.optimum(
        kw["activation"],
        kw["block"],
        sigma_w2=kw["sigma_w2"],
        sigma_b2=kw["sigma_b2"],
        k0=k0,
        k12=k12,
    )
    if opt.tau_star is None or opt.l0 is None or opt.log_s_max is None:
        return OptimalR(None, None, None, None, "analytic", opt.message)
    depth, sw2 = kw["depth"], kw["sigma_w2"]
    if not math.isfinite(opt.l0):
        # The correction needs the flow's curvature, infinite where the closed forms are singular.
        effective = depth
        approximation = (
            f"continuum limit tau* = {opt.tau_star:.6g} at leading order (the "
            "first-order correction L0 is not finite here): r* = sqrt(tau*/(sigma_w^2 depth))"
        )
    elif depth - opt.l0 > 0:
        effective = depth - opt.l0
        approximation = (
            f"continuum limit tau* = {opt.tau_star:.6g} (d ln S/dtau = 0 on the flow) "
            f"with the first-order Euler correction L0 = {opt.l0:.4g}: "
            "r* = sqrt(tau*/(sigma_w^2 (depth - L0)))"
        )
    else:
        effective = depth
        approximation = (
            f"continuum limit tau* = {opt.tau_star:.6g} at leading order "
            f"(depth <= L0 = {opt.l0:.4g}, the first-order correction does not apply): "
            "r* = sqrt(tau*/(sigma_w^2 depth))"
        )

    def to_r(t):
        return None if t is None else math.sqrt(t / (sw2 * effective))

    return OptimalR(
        to_r(opt.tau_star),
        math.exp(opt.log_s_max),
        to_r(opt.tau_lo),
        to_r(opt.tau_hi),
        "analytic",
        f"r* = {to_r(opt.tau_star):.6g} ({approximation})",
        tau_star=float(opt.tau_star),
        L0=float(opt.l0) if math.isfinite(opt.l0) else None,
        approximation=approximation,
    )
