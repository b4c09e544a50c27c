"""Small generated math helpers: a vectorisable arcsin, the clamped correlation and its
derivatives, and the Cauchy-Schwarz clamp of a kernel's off-diagonal entry.

arcsin on [-1/2, 1/2] is y + y^3 Q(y^2) with Q a Chebyshev fit (mpmath, 40 digits) of
(asin(sqrt(z)) - sqrt(z)) / z^{3/2} on z in [0, 1/4]; outside, asin(x) = pi/2 - 2 asin(sqrt((1-x)/2))
keeps full accuracy. Branches are selects, so the loops that call it vectorise (libm's scalar call
cannot be). Q is evaluated in Estrin's scheme: a layer step of the mean-field recursion waits for
its arcsin, and Estrin's tree of independent multiply-adds has depth 4 where Horner's chain has 12
(bench_kernel: relu 1.1x). Accuracy against libm is checked in tests (a few ulp).
"""

from __future__ import annotations

from functools import lru_cache

import mpmath
import sympy as sp
from sympy.codegen.ast import Assignment, Return

from ..derivations import correlation
from .nodes import JitFunction, TupleReturn
from .printer import CopySign

ASIN_DEGREE = 12  # fit error 1.5e-17 on [0, 1/4], times y^3 <= 1/8: below double round-off
_x, _a, _y, _z, _p = sp.symbols("x a y z p", real=True)
_k11, _k22, _k12, _s = sp.symbols("k11 k22 k12 s", real=True)


@lru_cache(maxsize=None)
def asin_series_coefficients(degree: int = ASIN_DEGREE) -> tuple[sp.Float, ...]:
    """Monomial coefficients (highest first) of Q(z) ~ (asin(sqrt z) - sqrt z)/z^{3/2}, z <= 1/4."""
    with mpmath.workdps(40):

        def g(z):
            if z == 0:
                return mpmath.mpf(1) / 6
            s = mpmath.sqrt(z)
            return (mpmath.asin(s) - s) / (z * s)

        coeffs, _err = mpmath.chebyfit(g, [0, mpmath.mpf(1) / 4], degree + 1, error=True)
        return tuple(sp.Float(mpmath.nstr(c, 20), 20) for c in coeffs)


def estrin(coefficients, x: sp.Symbol, prefix: str):
    """(assignments, value) of sum_k coefficients[k] x^k (lowest first) in Estrin's scheme.

    Each level pairs neighbours as a + b x^(2^level), one fused multiply-add apiece, so the
    dependency chain is log2(degree) multiply-adds long instead of degree (Horner).
    """
    assignments, terms, power, level = [], list(coefficients), x, 0
    while len(terms) > 1:
        paired = []
        for k in range(0, len(terms), 2):
            if k + 1 == len(terms):  # an odd one out moves up a level as it is
                paired.append(terms[k])
                continue
            symbol = sp.Symbol(f"{prefix}{level}_{k // 2}", real=True)
            assignments.append(Assignment(symbol, terms[k] + terms[k + 1] * power))
            paired.append(symbol)
        terms = paired
        if len(terms) > 1:
            square = sp.Symbol(f"{x.name}{2 ** (level + 1)}", real=True)
            assignments.append(Assignment(square, power**2))
            power, level = square, level + 1
    return assignments, terms[0]


def _odd_asin_kernel(y: sp.Symbol, z: sp.Symbol):
    """(assignments, y + y z Q(z)) with z = y^2: asin(y) for |y| <= 1/2."""
    assignments, q = estrin(asin_series_coefficients()[::-1], z, "q")
    return assignments, y + y * z * q


def _asin() -> JitFunction:
    big = _a > sp.Rational(1, 2)
    polynomial, odd_kernel = _odd_asin_kernel(_y, _z)
    body = (
        Assignment(_a, sp.Abs(_x)),
        Assignment(_y, sp.Piecewise((sp.sqrt((1 - _a) / 2), big), (_a, True))),
        Assignment(_z, _y**2),
        *polynomial,
        Assignment(_p, odd_kernel),
        Return(CopySign(sp.Piecewise((sp.pi / 2 - 2 * _p, big), (_p, True)), _x)),
    )
    return JitFunction(
        "_asin",
        (_x,),
        "float64(float64)",
        body,
        "arcsin(x) for |x| <= 1, branch-free polynomial form.",
    )


def _correlation() -> JitFunction:
    body = (
        Assignment(_s, sp.sqrt(_k11 * _k22)),
        Return(sp.Piecewise((sp.Min(sp.Max(_k12 / _s, -1), 1), _s > 0), (0.0, True))),
    )
    return JitFunction(
        "_correlation",
        (_k11, _k22, _k12),
        "float64(float64, float64, float64)",
        body,
        "rho = k12 / sqrt(k11 k22), kept in [-1, 1] against round-off; 0 if a variance is 0.",
        inline=True,
    )


def _cauchy_schwarz() -> JitFunction:
    bound = sp.sqrt(_k11 * _k22)
    return JitFunction(
        "_cauchy_schwarz",
        (_k11, _k22, _k12),
        "float64(float64, float64, float64)",
        (Return(sp.Min(sp.Max(_k12, -bound), bound)),),
        "k12 kept in [-sqrt(k11 k22), sqrt(k11 k22)]: a kernel is a Gram matrix, round-off is not.",
        inline=True,
    )


def _correlation_derivatives() -> JitFunction:
    """Gradient and Hessian of the correlation (derivations/correlation.py), for the delta method
    of a network's output correlation at one loop (fieldgen.response.correlation_shift)."""
    grad, hess = correlation.derivatives()
    values = [*grad, *(hess[i, j] for i in range(3) for j in range(i, 3))]
    values = [sp.Float(0.0) if v == 0 else v for v in values]  # a float tuple, not int 0
    replacements, reduced = sp.cse(values, symbols=sp.numbered_symbols("t"), order="canonical")
    body = (*(Assignment(s, e) for s, e in replacements), TupleReturn(tuple(reduced)))
    return JitFunction(
        "_correlation_derivatives",
        correlation.PAIR_ORDER,
        "UniTuple(float64, 9)(float64, float64, float64)",
        body,
        "grad (11, 22, 12) then the Hessian's upper triangle (row by row) of k12 / sqrt(k11 k22).",
    )


BUILTIN = {
    "_asin": _asin,
    "_correlation": _correlation,
    "_correlation_derivatives": _correlation_derivatives,
    "_cauchy_schwarz": _cauchy_schwarz,
}
