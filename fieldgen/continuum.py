"""The continuum limit of the sensitivity: tau* and L0 from the generated flow (RK4 in tau).

``derivations/continuum.py`` derives the flow dx/dtau = F(x) of two equal-norm inputs, the rate
d ln S/dtau, its first-order (in eps = r^2 sigma_w^2) correction and L0; the generated
``continuum_<block>`` integrates them with RK4 on a geometric grid of tau. Here the path is
followed window by window until the maximum of S(tau) and the half-maximum point beyond it are
passed; tau* (a sign change of the rate from + to -) and the half-maximum points are refined
by Brent's method on single RK4 steps from the grid point before them, and the correction terms
(curvature, L0) are evaluated by the generated ``continuum_terms_<block>`` at tau*.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from . import brent
from .generated import module

# Geometric tau grid: tau_k = scale ((1 + GROWTH)^k - 1), scale = 1 + K^0 (the flow's time scale
# is the larger of the activation's unit scale and the kernel). The tests check that tau* and L0
# do not move when the steps are halved.
GROWTH = 0.05
TAU_MAX = 1e4  # in units of the scale; maxima sit at tau* ~ K^0 e^u* (sign limit)
WINDOW = 16
HUGE = 1e100  # a kernel this large is past any maximum; beyond it round-off takes over
TINY = 1e-10  # ln S below this counts as no gain over S(0) = 1 (linear: S = 1 exactly)


@dataclass(frozen=True)
class ContinuumOptimum:
    tau_star: float | None
    l0: float | None
    log_s_max: float | None  # ln S at tau* in the continuum limit
    tau_lo: float | None  # where S - 1 falls to half of S_max - 1, below and above tau*
    tau_hi: float | None
    message: str


def tau_grid(scale: float, growth: float, tau_max: float = TAU_MAX) -> np.ndarray:
    steps = int(math.ceil(math.log1p(tau_max) / math.log1p(growth)))
    return scale * np.expm1(np.arange(steps + 1) * math.log1p(growth))


class _Flow:
    """The generated continuum flow of one (activation, block, sigma_w2, sigma_b2)."""

    def __init__(self, activation, block, sigma_w2, sigma_b2):
        generated = module("response", activation)
        self.path_fn = getattr(generated, f"continuum_{block}")
        self.terms_fn = getattr(generated, f"continuum_terms_{block}")
        self.path_terms, self.point_terms = generated.PATH_TERMS, generated.POINT_TERMS
        self.params = (float(sigma_w2), float(sigma_b2))

    def run(self, z0, times):
        """States (m, 6) and path terms {name: (m,)} at `times`, starting from z0 at times[0]."""
        times = np.ascontiguousarray(times, dtype=float)
        path = np.empty((times.size, 6))
        values = np.empty((times.size, len(self.path_terms)))
        self.path_fn(*self.params, np.ascontiguousarray(z0, dtype=float), times, path, values)
        return path, dict(zip(self.path_terms, values.T))

    def at(self, z, t0, t, name):
        """A path term at tau = t, one RK4 step from state z at t0."""
        return self.run(z, [t0, t])[1][name][1]

    def terms(self, z, t0, t):
        state = self.run(z, [t0, t])[0][1]
        return dict(zip(self.point_terms, self.terms_fn(*self.params, t, *state)))


def _follow(flow: _Flow, z0, grid, log_k0):
    """Integrate window by window; stop past the first maximum's upper half point."""
    times, states = [grid[:1]], [np.asarray(z0)[None]]
    rate: list[float] = []
    log_s: list[float] = []
    k, best, done = 0, -math.inf, False
    while k < grid.size - 1 and not done:
        window = grid[k : k + WINDOW + 1]
        path, v = flow.run(states[-1][-1], window)
        usable = (
            np.isfinite(v["rate"]) & np.isfinite(v["log_sensitivity"]) & (np.abs(path[:, 0]) < HUGE)
        )
        end = window.size if usable.all() else int(np.argmin(usable))
        if not rate:
            rate.append(v["rate"][:1])
            log_s.append(v["log_sensitivity"][:1] + log_k0)
        times.append(window[1:end])
        states.append(path[1:end])
        rate.append(v["rate"][1:end])
        log_s.append(v["log_sensitivity"][1:end] + log_k0)
        if end < window.size:
            break
        r, ls = np.concatenate(rate), np.concatenate(log_s)
        down = _maxima(r)
        if down.size:
            best = max(best, ls[down].max())
            half = math.log1p(0.5 * math.expm1(best))
            done = best > TINY and ls[-1] < half and r[-1] < 0
        k += WINDOW
    return (
        np.concatenate(times),
        np.concatenate(states),
        np.concatenate(rate),
        np.concatenate(log_s),
    )


# tau*, L0 and the half points do not depend on depth: r* at many depths reuses one flow.
@functools.lru_cache(maxsize=256)
def optimum(
    activation: str,
    block: str,
    *,
    sigma_w2: float,
    sigma_b2: float,
    k0: float,
    k12: float,
    growth: float = GROWTH,
) -> ContinuumOptimum:
    """The maximum of the continuum S(tau) = chi_12 K^0/K over tau > 0, if it is interior.

    k0, k12: the input kernel of the two equal-norm inputs; growth: relative step of the tau grid.
    """
    if not hasattr(module("response", activation), f"continuum_{block}"):
        return ContinuumOptimum(
            None,
            None,
            None,
            None,
            None,
            f"no continuum limit in tau = r^2 sigma_w^2 l for the {block} block "
            f"with {activation}: the pre-activation mean grows like r l",
        )
    flow = _Flow(activation, block, sigma_w2, sigma_b2)
    grid = tau_grid(1.0 + k0, growth)
    times, states, rate, log_s = _follow(flow, [k0, k12, 0.0, 0.0, 0.0, 0.0], grid, math.log(k0))
    down = _maxima(rate)
    if not down.size or log_s[down].max() <= TINY:
        if not np.any(rate > TINY):
            why = "d ln S/dtau <= 0 everywhere: S never rises above S(0) = 1"
        elif not down.size:
            why = "d ln S/dtau > 0 to the end: S still grows"
        else:
            why = "S never exceeds S(0) = 1"
        return ContinuumOptimum(
            None,
            None,
            None,
            None,
            None,
            f"no interior maximum of the continuum S(tau) up to tau = {times[-1]:.3g} ({why})",
        )
    k = int(down[np.argmax(log_s[down])])
    t_star = brent.root(
        lambda t: flow.at(states[k], times[k], t, "rate"),
        times[k],
        times[k + 1],
        xtol=1e-13 * times[k + 1],
    )
    terms = flow.terms(states[k], times[k], t_star)
    log_s_max = terms["log_sensitivity"] + math.log(k0)
    half = math.log1p(0.5 * math.expm1(log_s_max))
    lo = _half_point(flow, times, states, log_s, half, math.log(k0), range(k, -1, -1))
    hi = _half_point(flow, times, states, log_s, half, math.log(k0), range(k + 1, times.size - 1))
    return ContinuumOptimum(t_star, terms["l0"], log_s_max, lo, hi, "")


def _maxima(rate: np.ndarray) -> np.ndarray:
    """Grid intervals where d ln S/dtau falls from above TINY to <= 0: the maxima of S.

    A rate within round-off of zero (relu at c0 = +-1, where S = 1 exactly) changes sign at
    random and is not a maximum.
    """
    return np.flatnonzero((rate[:-1] > TINY) & (rate[1:] <= 0))


def _half_point(flow, times, states, log_s, level, log_k0, ks):
    """The first grid interval in `ks` where ln S crosses `level`, refined; None if none."""
    for k in ks:
        if (log_s[k] < level) != (log_s[k + 1] < level):
            return brent.root(
                lambda t: flow.at(states[k], times[k], t, "log_sensitivity") + log_k0 - level,
                times[k],
                times[k + 1],
                xtol=1e-13 * times[k + 1],
            )
    return None
