"""Tables of r* over depths and weight variances, with the exponent d ln r*/d ln sigma_w^2."""

from __future__ import annotations

import csv
import functools
import math
from dataclasses import asdict, dataclass

import numpy as np

from .optimum import TYPICAL, optimal_r
from .response import sensitivity


@dataclass(frozen=True)
class ScanRow:
    activation: str
    depth: int
    sigma_w2: float
    r_star: float | None
    r_star_analytic: float | None
    L0: float | None
    r_lo: float | None
    r_hi: float | None
    S_max: float | None
    typical_inside: bool  # TYPICAL (0.1-0.3) inside [r_lo, r_hi]
    exponent: float | None  # d ln r*/d ln sigma_w^2 over the scanned sigma_w^2 values


def exponent(sigma_w2s, r_stars) -> float | None:
    """Least-squares slope of ln r* against ln sigma_w^2 (the secant for two values)."""
    pairs = [(math.log(s), math.log(r)) for s, r in zip(sigma_w2s, r_stars) if r is not None]
    if len(pairs) < 2 or len({x for x, _ in pairs}) < 2:
        return None
    x, y = np.array(pairs).T
    return float(np.polyfit(x, y, 1)[0])


def scan(
    activations,
    depths,
    sigma_w2s,
    *,
    c0,
    K0=1.0,
    sigma_b2=0.0,
    block="full",
    input="kernel",
    analytic=True,
    on_group=None,
    client=None,
) -> list[ScanRow]:
    """r* for every (activation, depth, sigma_w2); on_group(rows) is called as each
    (activation, depth) group of rows is complete, in order. client: a dask.distributed.Client
    or a scheduler address to compute the groups on a Dask cluster (None: in process)."""
    from .distributed import client_for, map_ordered  # imports Dask only for a client

    network = dict(c0=c0, K0=K0, sigma_b2=sigma_b2, block=block, input=input)
    compute = functools.partial(_group, sigma_w2s=tuple(sigma_w2s), analytic=analytic, **network)
    rows = []
    with client_for(client) as live:
        for group in map_ordered(live, compute, [(a, d) for a in activations for d in depths]):
            rows += group
            if on_group is not None:
                on_group(group)
    return rows


def _group(point, *, sigma_w2s, analytic, **network) -> list[ScanRow]:
    """The rows of one (activation, depth) over the sigma_w2 values (a unit of work)."""
    activation, depth = point
    kw = dict(network, depth=depth)
    numeric = [optimal_r(activation, sigma_w2=s, **kw) for s in sigma_w2s]
    approx = [
        optimal_r(activation, sigma_w2=s, method="analytic", **kw) if analytic else None
        for s in sigma_w2s
    ]
    slope = exponent(sigma_w2s, [n.r_star for n in numeric])
    return [
        ScanRow(
            activation,
            depth,
            s,
            n.r_star,
            a.r_star if a else None,
            a.L0 if a else None,
            n.r_lo,
            n.r_hi,
            n.S_max,
            n.contains(*TYPICAL),
            slope,
        )
        for s, n, a in zip(sigma_w2s, numeric, approx)
    ]


def inside_at(depth, *, lo=TYPICAL[0], hi=TYPICAL[1], guess, **kw) -> bool:
    """Whether [lo, hi] lies in the range of maximal sensitivity at this depth.

    S is unimodal, so its half-maximum superlevel set is an interval and [lo, hi] lies inside iff
    S(lo) and S(hi) both reach 1 + (S_max - 1)/2. S_max is S at `guess` (the analytic r*, off by
    ~1e-4 at large depth, so S_max to ~1e-8) when the neighbours +-1 % confirm it is near the
    maximum; otherwise (small depths) the numeric optimum's.
    """
    r = np.array([lo, hi, guess, 0.99 * guess, 1.01 * guess])
    s_lo, s_hi, s_max, left, right = np.asarray(sensitivity(r=r, depth=depth, **kw))
    if not (s_max >= left and s_max >= right):
        best = optimal_r(depth=depth, **kw)
        if not best:
            return False
        s_max = best.S_max
    return min(s_lo, s_hi) >= 1 + 0.5 * (s_max - 1)


def depth_window(
    activation,
    *,
    sigma_w2,
    c0,
    K0=1.0,
    sigma_b2=0.0,
    block="full",
    input="kernel",
    lo=TYPICAL[0],
    hi=TYPICAL[1],
    max_depth=10**5,
):
    """(first, last) depth at which [lo, hi] lies inside the range of maximal sensitivity, or None.

    The analytic r*(depth) locates the window's middle and gives S_max at each depth; the two ends
    are bisected on the discrete S (``inside_at``), which is monotone on each side.
    """
    kw = dict(
        activation=activation,
        sigma_w2=sigma_w2,
        c0=c0,
        K0=K0,
        sigma_b2=sigma_b2,
        block=block,
        input=input,
    )
    ref = optimal_r(depth=max_depth, method="analytic", **kw)
    if not ref:
        return None

    def inside(depth):
        guess = optimal_r(depth=depth, method="analytic", **kw).r_star
        return inside_at(depth, lo=lo, hi=hi, guess=guess, **kw)

    # The continuum range scales with r*: [lo, hi] fits while r* is between hi/(r_hi/r*) and
    # lo/(r_lo/r*). Those depths predict the window's ends; the bisection brackets start near them.
    # (The inverse of r* = sqrt(tau*/(sigma_w^2 (depth - L0))); a range without an end, r_lo or
    # r_hi None, predicts the extreme depth.)
    def depth_for(r_star, missing):
        return (
            missing if r_star is None else ref.tau_star / (sigma_w2 * r_star**2) + (ref.L0 or 0.0)
        )

    predicted_first = depth_for(ref.r_lo and lo * ref.r_star / ref.r_lo, 1)
    predicted_last = depth_for(ref.r_hi and hi * ref.r_star / ref.r_hi, max_depth)
    if predicted_first > predicted_last:
        return None
    middle = int(round(math.sqrt(predicted_first * predicted_last)))
    if not 1 <= middle <= max_depth or not inside(middle):
        return None

    def outside_from(start, step):
        depth = start
        while 1 < depth < max_depth and inside(depth):
            depth = min(max(depth + step, 1), max_depth)
            step *= 2
        return depth

    def edge(inside_end, outside_end):
        while abs(outside_end - inside_end) > 1:
            mid = (inside_end + outside_end) // 2
            inside_end, outside_end = (mid, outside_end) if inside(mid) else (inside_end, mid)
        return inside_end

    below = outside_from(max(1, min(middle - 1, int(0.97 * predicted_first))), -8)
    above = outside_from(min(max_depth, max(middle + 1, int(1.03 * predicted_last) + 1)), 8)
    first = 1 if below == 1 and inside(1) else edge(middle, below)
    last = max_depth if above == max_depth and inside(max_depth) else edge(middle, above)
    return first, last


def _fmt(value, spec=".4g") -> str:
    if value is None:
        return "-"
    if spec.endswith("f") and value != 0 and not 1e-3 <= abs(value) < 1e5:
        spec = ".4g"  # fixed point would print 150 digits (or only zeros) at extreme scales
    return format(value, spec)


HEADER = (
    f"{'activation':<10} {'depth':>6} {'sigma_w2':>8} {'r* numeric':>11} {'r* analytic':>11} "
    f"{'L0':>6} {'r_lo':>8} {'r_hi':>8} {'S_max':>7} {'0.1-0.3 in':>10} {'d ln r*/d ln sw2':>16}"
)


def format_row(row: ScanRow) -> str:
    return (
        f"{row.activation:<10} {row.depth:>6d} {row.sigma_w2:>8.4g} {_fmt(row.r_star, '.5f'):>11} "
        f"{_fmt(row.r_star_analytic, '.5f'):>11} {_fmt(row.L0, '.3g'):>6} {_fmt(row.r_lo):>8} "
        f"{_fmt(row.r_hi):>8} {_fmt(row.S_max, '.4f'):>7} "
        f"{('yes' if row.typical_inside else 'no'):>10} {_fmt(row.exponent, '.4f'):>16}"
    )


def write_csv(rows, path) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(ScanRow.__dataclass_fields__))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if v is None else v) for k, v in asdict(row).items()})
