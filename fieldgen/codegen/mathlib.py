"""Small generated math helpers: a vectorisable arcsin, the clamped correlation and the
Cauchy-Schwarz clamp of a kernel's off-diagonal entry.

arcsin on [-1/2, 1/2] is y + y^3 Q(y^2) with Q a Chebyshev fit (mpmath, 40 digits) of
(asin(sqrt(z)) - sqrt(z)) / z^{3/2} on z in [0, 1/4]; outside, asin(x) = pi/2 - 2 asin(sqrt((1-x)/2))
keeps full accuracy. Branches are selects, so the loops that call it vectorise (libm's scalar call
cannot be). Accuracy against libm is checked in tests (a few ulp).
"""
from __future__ import annotations

from functools import lru_cache

import mpmath
import sympy as sp
from sympy.codegen.ast import Assignment, Return

from .nodes import JitFunction
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


def _odd_asin_kernel(y: sp.Symbol, z: sp.Symbol) -> sp.Expr:
    """y + y z Q(z) with z = y^2, Q in Horner form: asin(y) for |y| <= 1/2."""
    q = sp.S.Zero
    for c in asin_series_coefficients():
        q = q * z + c
    return y + y * z * q


def _asin() -> JitFunction:
    big = _a > sp.Rational(1, 2)
    body = (
        Assignment(_a, sp.Abs(_x)),
        Assignment(_y, sp.Piecewise((sp.sqrt((1 - _a) / 2), big), (_a, True))),
        Assignment(_z, _y**2),
        Assignment(_p, _odd_asin_kernel(_y, _z)),
        Return(CopySign(sp.Piecewise((sp.pi / 2 - 2 * _p, big), (_p, True)), _x)),
    )
    return JitFunction("_asin", (_x,), "float64(float64)", body,
                       "arcsin(x) for |x| <= 1, branch-free polynomial form.", inline=True)


def _correlation() -> JitFunction:
    body = (
        Assignment(_s, sp.sqrt(_k11 * _k22)),
        Return(sp.Piecewise((sp.Min(sp.Max(_k12 / _s, -1), 1), _s > 0), (0.0, True))),
    )
    return JitFunction(
        "_correlation", (_k11, _k22, _k12), "float64(float64, float64, float64)", body,
        "rho = k12 / sqrt(k11 k22), kept in [-1, 1] against round-off; 0 if a variance is 0.",
        inline=True)


def _cauchy_schwarz() -> JitFunction:
    bound = sp.sqrt(_k11 * _k22)
    return JitFunction(
        "_cauchy_schwarz", (_k11, _k22, _k12), "float64(float64, float64, float64)",
        (Return(sp.Min(sp.Max(_k12, -bound), bound)),),
        "k12 kept in [-sqrt(k11 k22), sqrt(k11 k22)]: a kernel is a Gram matrix, round-off is not.",
        inline=True)


BUILTIN = {"_asin": _asin, "_correlation": _correlation, "_cauchy_schwarz": _cauchy_schwarz}
