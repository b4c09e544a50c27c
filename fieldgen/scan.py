"""Tables of r* over depths and weight variances, with the exponent d ln r*/d ln sigma_w^2."""
from __future__ import annotations

import csv
import math
from dataclasses import asdict, dataclass

import numpy as np

from .optimum import TYPICAL, optimal_r


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
    typical_inside: bool           # TYPICAL (0.1-0.3) inside [r_lo, r_hi]
    exponent: float | None         # d ln r*/d ln sigma_w^2 over the scanned sigma_w^2 values


def exponent(sigma_w2s, r_stars) -> float | None:
    """Least-squares slope of ln r* against ln sigma_w^2 (the secant for two values)."""
    pairs = [(math.log(s), math.log(r)) for s, r in zip(sigma_w2s, r_stars) if r is not None]
    if len(pairs) < 2 or len({x for x, _ in pairs}) < 2:
        return None
    x, y = np.array(pairs).T
    return float(np.polyfit(x, y, 1)[0])


def scan(activations, depths, sigma_w2s, *, c0, K0=1.0, sigma_b2=0.0, block="full",
         input="kernel", analytic=True, on_group=None) -> list[ScanRow]:
    """r* for every (activation, depth, sigma_w2); on_group(rows) is called as each
    (activation, depth) group of rows is complete."""
    rows = []
    for activation in activations:
        for depth in depths:
            kw = dict(depth=depth, c0=c0, K0=K0, sigma_b2=sigma_b2, block=block, input=input)
            numeric = [optimal_r(activation, sigma_w2=s, **kw) for s in sigma_w2s]
            approx = [optimal_r(activation, sigma_w2=s, method="analytic", **kw) if analytic else None
                      for s in sigma_w2s]
            slope = exponent(sigma_w2s, [n.r_star for n in numeric])
            group = [ScanRow(activation, depth, s, n.r_star, a.r_star if a else None,
                             a.L0 if a else None, n.r_lo, n.r_hi, n.S_max, n.contains(*TYPICAL), slope)
                     for s, n, a in zip(sigma_w2s, numeric, approx)]
            rows += group
            if on_group is not None:
                on_group(group)
    return rows


def _fmt(value, spec=".4g") -> str:
    return "-" if value is None else format(value, spec)


HEADER = (f"{'activation':<10} {'depth':>6} {'sigma_w2':>8} {'r* numeric':>11} {'r* analytic':>11} "
          f"{'L0':>6} {'r_lo':>8} {'r_hi':>8} {'S_max':>7} {'0.1-0.3 in':>10} {'d ln r*/d ln sw2':>16}")


def format_row(row: ScanRow) -> str:
    return (f"{row.activation:<10} {row.depth:>6d} {row.sigma_w2:>8.4g} {_fmt(row.r_star, '.5f'):>11} "
            f"{_fmt(row.r_star_analytic, '.5f'):>11} {_fmt(row.L0, '.3g'):>6} {_fmt(row.r_lo):>8} "
            f"{_fmt(row.r_hi):>8} {_fmt(row.S_max, '.4f'):>7} "
            f"{('yes' if row.typical_inside else 'no'):>10} {_fmt(row.exponent, '.4f'):>16}")


def write_csv(rows, path) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(ScanRow.__dataclass_fields__))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if v is None else v) for k, v in asdict(row).items()})
