"""The data behind each figure: theory from the public API, simulations through the cache.

Each analysis takes its parameter dict (`params.py`) and returns plain arrays: theory as lines
(`Line`), simulations as points with standard errors (`Points`). Nothing here draws.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np

import fieldgen

from ..optimum import finite_or_nan  # S on a grid, NaN where the kernel overflows
from ..scan import exponent
from ..stats import covariance_and_se, mean_and_se, variance_and_se


@dataclass
class Line:
    """A theory curve."""

    x: np.ndarray
    y: np.ndarray


@dataclass
class Points:
    """Simulated values with their standard errors."""

    x: np.ndarray
    y: np.ndarray
    err: np.ndarray


@dataclass
class Context:
    """What every analysis needs besides its parameters: the simulation cache, the progress
    switch, a log, the optima already found in this run (figures 4 and 5 share some) and the
    Dask client the simulations run on (None: in process)."""

    cache: object
    progress: bool | None = None
    log: object = print
    optima: dict = field(default_factory=dict)
    client: object = None

    def optimal_r(self, activation: str, **kw):
        kw.setdefault("method", "numeric")
        key = (activation, tuple(sorted(kw.items())))
        if key not in self.optima:
            self.optima[key] = fieldgen.optimal_r(activation, **kw)
        return self.optima[key]


def _seed(base: int, *parts) -> int:
    """A fixed seed per simulated setting, stable across processes and runs."""
    return zlib.crc32(repr((base, *parts)).encode())


def _simulate(ctx: Context, activation: str, **arguments) -> np.ndarray:
    # The client changes where the chunks run, not the numbers: untracked (not in the cache key).
    # No results folder of chunks: the report's cache keeps each finished simulation.
    untracked = {"progress": ctx.progress}
    if ctx.client is not None:
        untracked.update(client=ctx.client, results=False)
    return ctx.cache.call(
        "simulate",
        fieldgen.simulate,
        untracked=untracked,
        activation=activation,
        **arguments,
    )


def _pair(K0: float, c0: float) -> np.ndarray:
    """The input kernel of two inputs of variance K0 and correlation c0."""
    return K0 * np.array([[1.0, c0], [c0, 1.0]])


def _network(p: dict, depth: int | None = None) -> dict:
    """The network arguments shared by theory and simulation (depth: p["depth"] unless given)."""
    net = {k: p[k] for k in ("sigma_w2", "sigma_b2", "block", "input")}
    return dict(net, depth=p["depth"] if depth is None else depth)


def _correlation(K: np.ndarray) -> np.ndarray:
    return K[..., 0, 1] / np.sqrt(K[..., 0, 0] * K[..., 1, 1])


# ---- figure 1: the mean-field kernel across layers -------------------------------------------


def kernel_paths(p: dict, ctx: Context) -> dict:
    """{activation: {r: {"norm"|"corr": (Line, Points)}}}: K^l_11/K^0 and c^l against l."""
    net, K0 = _network(p), _pair(p["K0"], p["c0"])
    layers = np.arange(p["depth"] + 1)
    shown = np.unique(np.linspace(0, p["depth"], p["markers"]).round().astype(int))
    out = {}
    for activation in p["activations"]:
        K = fieldgen.kernel(activation, r=np.array(p["r"]), K0=K0, **net)
        out[activation] = {}
        for r, Kr in zip(p["r"], K):
            ctx.log(f"  kernel: {activation}, r = {r:g}")
            Kh = _simulate(
                ctx,
                activation,
                r=r,
                K0=K0,
                width=p["width"],
                samples=p["samples"],
                method=p["method"],
                seed=_seed(p["seed"], activation, r),
                **net,
            )
            Kh = Kh[:, shown]
            norm = mean_and_se(Kh[..., 0, 0] / p["K0"])
            corr = mean_and_se(_correlation(Kh))
            out[activation][r] = {
                "norm": (Line(layers, Kr[:, 0, 0] / p["K0"]), Points(shown, *norm)),
                "corr": (Line(layers, _correlation(Kr)), Points(shown, *corr)),
            }
    return out


# ---- figure 2: kernel fluctuations (one loop) ------------------------------------------------


def fluctuations(p: dict, ctx: Context) -> dict:
    """{activation: {"var"|"cov": (Line, {N: Points})}}, normalised by the mean-field kernel:
    N Var(Khat^l)/(K^l)^2 and N Cov(Khat^l, Khat^l')/(K^l K^l') at l' = reference_layer."""
    net, ref = _network(p), p["reference_layer"]
    layers = np.arange(p["depth"] + 1)
    out = {}
    for activation in p["activations"]:
        C = fieldgen.kernel_covariance(activation, r=p["r"], K0=p["K0"], **net)
        K = fieldgen.kernel(activation, r=p["r"], K0=p["K0"], **net)
        var_sim, cov_sim = {}, {}
        for N in p["widths"]:
            ctx.log(f"  fluctuations: {activation}, N = {N}")
            Kh = _simulate(
                ctx,
                activation,
                r=p["r"],
                K0=p["K0"],
                width=N,
                samples=p["samples"],
                method=p["method"],
                seed=_seed(p["seed"], activation, N),
                **net,
            )
            var, var_se = variance_and_se(Kh)
            cov, cov_se = covariance_and_se(Kh, Kh[:, [ref]])
            var_sim[N] = Points(layers, N * var / K**2, N * var_se / K**2)
            cov_sim[N] = Points(layers, N * cov / (K * K[ref]), N * cov_se / (K * K[ref]))
        out[activation] = {
            "var": (Line(layers, np.diag(C) / K**2), var_sim),
            "cov": (Line(layers, C[:, ref] / (K * K[ref])), cov_sim),
        }
    return out


# ---- figure 3: the mean shift and its parts --------------------------------------------------


def mean_shift(p: dict, ctx: Context) -> dict:
    """{activation: {"terms": {name: Line}, "simulated": Points, "shown": bool}} for
    N (E Khat^l - K^l). The simulated points are shown only when informative: the theory's shift
    at the last layer is at least `min_signal` of their standard errors there (a criterion on the
    error bar, not on the agreement)."""
    net, N, L = _network(p), p["width"], p["depth"]
    layers = np.arange(L + 1)
    out = {}
    for activation in p["activations"]:
        terms = fieldgen.mean_shift_terms(activation, r=p["r"], K0=p["K0"], **net)
        lines = {
            "total": Line(layers, terms.total),
            "propagated": Line(layers, terms.propagated),
            "tadpole": Line(layers, terms.tadpole),
            "self-feedback": Line(layers, terms.self_feedback),
        }
        ctx.log(f"  mean shift: {activation}, N = {N}, {p['samples']} networks")
        Kh = _simulate(
            ctx,
            activation,
            r=p["r"],
            K0=p["K0"],
            width=N,
            samples=p["samples"],
            method=p["method"],
            seed=_seed(p["seed"], activation),
            **net,
        )
        K = fieldgen.kernel(activation, r=p["r"], K0=p["K0"], **net)
        mean, se = mean_and_se(Kh)
        simulated = Points(layers, N * (mean - K), N * se)
        out[activation] = {
            "terms": lines,
            "simulated": simulated,
            "shown": abs(terms.total[L]) >= p["min_signal"] * simulated.err[L],
        }
    return out


# ---- figure 4: the sensitivity S(r) ----------------------------------------------------------


def sensitivity_curves(p: dict, ctx: Context) -> dict:
    """{"curves": {activation: {depth: (Line, OptimalR)}}, "check": Points, "check_depth", ...}."""
    kw = dict(
        sigma_w2=p["sigma_w2"],
        sigma_b2=p["sigma_b2"],
        K0=p["K0"],
        c0=p["c0"],
        block=p["block"],
        input=p["input"],
    )
    r = np.geomspace(*p["r_range"], p["r_points"])
    curves = {}
    for activation in p["activations"]:
        curves[activation] = {}
        for depth in p["depths"]:
            ctx.log(f"  sensitivity: {activation}, L = {depth}")
            # relu's kernel grows like (1 + r^2 sigma_w^2/2)^L: large r leave the float64 range.
            S = finite_or_nan(lambda x: fieldgen.sensitivity(activation, r=x, depth=depth, **kw), r)
            best = ctx.optimal_r(activation, depth=depth, **kw)
            curves[activation][depth] = (Line(r, S), best)
    check = _sensitivity_check(p, ctx)
    theory = (
        None
        if check is None
        else fieldgen.sensitivity(p["check_activation"], r=check.x, depth=p["check_depth"], **kw)
    )
    return {"curves": curves, "check": check, "check_theory": theory}


def _sensitivity_check(p: dict, ctx: Context) -> Points | None:
    """Simulated S = dc^L/dc^0 at multiples of r*: central differences in c^0 with common random
    numbers (the same seed at c^0 +- dc0 gives each network the same random streams, so the
    quotient is that network's own derivative)."""
    activation, depth, h = p["check_activation"], p["check_depth"], p["check_dc0"]
    best = ctx.optimal_r(
        activation,
        sigma_w2=p["sigma_w2"],
        sigma_b2=p["sigma_b2"],
        depth=depth,
        K0=p["K0"],
        c0=p["c0"],
        block=p["block"],
        input=p["input"],
    )
    if not best:
        return None
    net = _network(p, depth)
    rs = best.r_star * np.array(p["check_r_factors"])
    values = []
    for r in rs:
        ctx.log(f"  sensitivity check: {activation}, L = {depth}, r = {r:.4g}")

        def c_out(c):
            Kh = _simulate(
                ctx,
                activation,
                r=float(r),
                K0=_pair(p["K0"], c),
                width=p["check_width"],
                samples=p["check_samples"],
                method=p["method"],
                seed=_seed(p["seed"], activation, depth, float(r)),
                **net,
            )
            return _correlation(Kh[:, -1])

        values.append((c_out(p["c0"] + h) - c_out(p["c0"] - h)) / (2 * h))
    mean, se = mean_and_se(np.stack(values, axis=1))
    return Points(rs, mean, se)


# ---- figure 5: r* against depth and sigma_w^2 ------------------------------------------------


def optimum(p: dict, ctx: Context) -> dict:
    """r* (numeric: the discrete recursion; analytic: the continuum limit with L0) against depth,
    the leading-order law sqrt(tau*/(sigma_w^2 L)), and r* against sigma_w^2 with and without
    bias with the fitted exponent d ln r*/d ln sigma_w^2."""
    kw = dict(K0=p["K0"], c0=p["c0"], block=p["block"], input=p["input"])
    depths = np.array(p["depths"])
    dense = np.unique(np.geomspace(depths[0], depths[-1], 40).round().astype(int))

    def r_star(activation, depths, **more):
        return np.array(
            [ctx.optimal_r(activation, depth=int(L), **kw, **more).r_star for L in depths],
            dtype=float,
        )

    by_depth, by_weight = {}, {}
    for activation in p["activations"]:
        ctx.log(f"  optimum: {activation}, r* against depth")
        analytic = dict(sigma_w2=p["sigma_w2"], sigma_b2=0.0, method="analytic")
        last = ctx.optimal_r(activation, depth=int(depths[-1]), **kw, **analytic)
        by_depth[activation] = {
            "numeric": Line(
                depths,
                r_star(activation, depths, sigma_w2=p["sigma_w2"], sigma_b2=0.0, method="numeric"),
            ),
            "analytic_at": Line(depths, r_star(activation, depths, **analytic)),
            "analytic": Line(dense, r_star(activation, dense, **analytic)),
            "leading": Line(dense, np.sqrt(last.tau_star / (p["sigma_w2"] * dense))),
            "tau_star": last.tau_star,
            "L0": last.L0,
        }
        sw2 = np.array(p["sigma_w2s"])
        for sigma_b2 in p["sigma_b2s"]:
            ctx.log(f"  optimum: {activation}, r* against sigma_w^2, sigma_b^2 = {sigma_b2:g}")
            found = {
                m: np.array(
                    [
                        ctx.optimal_r(
                            activation,
                            depth=p["sweep_depth"],
                            sigma_w2=float(s),
                            sigma_b2=sigma_b2,
                            method=m,
                            **kw,
                        ).r_star
                        for s in sw2
                    ],
                    dtype=float,
                )
                for m in ("numeric", "analytic")
            }
            by_weight[(activation, sigma_b2)] = {
                "numeric": Line(sw2, found["numeric"]),
                "analytic": Line(sw2, found["analytic"]),
                "exponent": exponent(sw2, [None if np.isnan(v) else v for v in found["numeric"]]),
            }
    return {"by_depth": by_depth, "by_weight": by_weight}
