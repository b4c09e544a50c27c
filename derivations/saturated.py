"""The saturated (sign) limit of the optimal residual scale, without bias.

phi = sign is the limit of erf at pre-activation scales large against the activation's width:
its expectations are the large-lambda limits of the derived erf closed forms at lambda K,
P11 = 1 and P12 = (2/pi) arcsin(c). With the kernel's diagonal growing by a constant per layer,

    K^l = K^0 + l dK,   dK = r^2 sigma_w^2 (full block) or r^2 (reduced block),

the correlation obeys, in u = ln(K/K^0), the autonomous flow dc/du = f(c) = (2/pi) arcsin c - c,
so S = dc^L/dc^0 = f(c^L)/f(c^0): S is maximal where f'(c^L) = 0, c^L = c_x = sqrt(1 - 4/pi^2),
reached at u* = int_{c_x}^{c^0} dc / (c - (2/pi) arcsin c) (only for |c^0| > c_x), and
K^L/K^0 = e^{u*} gives r*. ``optimal_r`` returns it for each block and input mode; the scale q in
r* = sqrt(q (e^{u*} - 1)/L) is whatever multiplies (e^{u*} - 1)/L there.
"""

from __future__ import annotations

from functools import lru_cache

import sympy as sp

from . import closed_forms, model

c = sp.Symbol("c", real=True)
c0 = sp.Symbol("c0", positive=True)
depth = sp.Symbol("L", positive=True)
u = sp.Symbol("u", positive=True)


@lru_cache(maxsize=None)
def saturated_pair() -> tuple:
    """(P11, P12) of sign for two inputs of equal norm K: erf's closed forms at lambda K."""
    lam = sp.Symbol("lambda", positive=True)
    k11, k22, k12 = model.K
    K = sp.Symbol("K", positive=True)
    p11, _, p12 = closed_forms.pair_expectation("erf")
    scaled = {k11: lam * K, k22: lam * K, k12: lam * c * K}
    return (sp.limit(p11.xreplace(scaled), lam, sp.oo), sp.limit(p12.xreplace(scaled), lam, sp.oo))


def _diagonal_step(block: str) -> sp.Expr:
    """dK per layer without bias: the full block scales P by sigma_w^2, the reduced does not
    (sign(sigma_w a) = sign(a))."""
    return model.r**2 * (model.sigma_w2 if block == "full" else 1)


@lru_cache(maxsize=None)
def correlation_flow() -> sp.Expr:
    """f(c) = dc/du, u = ln K: the same for both blocks (the step factor cancels)."""
    p11, p12 = saturated_pair()
    K = sp.Symbol("K", positive=True)
    dK = _diagonal_step("full") * p11
    dK12 = _diagonal_step("full") * p12
    # c = K12/K: dc = (dK12 - c dK)/K and du = dK/K.
    return sp.simplify((dK12 - c * dK) / dK).subs(K, 1)


@lru_cache(maxsize=None)
def optimal_correlation() -> sp.Expr:
    """c_x: the stationary point f'(c) = 0 in (0, 1), where |f| and hence S is largest."""
    roots = [x for x in sp.solve(sp.diff(correlation_flow(), c), c) if x.is_positive]
    (root,) = roots
    return sp.simplify(root)


def log_growth() -> sp.Integral:
    """u* = ln(K^L/K^0) at the optimum: the time the flow takes from c^0 down to c_x."""
    f = correlation_flow()
    return sp.Integral(-1 / f, (c, optimal_correlation(), c0))


@lru_cache(maxsize=None)
def optimal_r(block: str, mode: str) -> sp.Expr:
    """r* in terms of u*, the input (K^0 = K0 symbol, or G for an input layer), sigma_w^2, L."""
    K0 = sp.Symbol("K0", positive=True)
    G = sp.Symbol("G", positive=True)
    start = K0 if mode == "kernel" else model.sigma_w2 * G  # the input layer's K^0 without bias
    rp = sp.Symbol("r", positive=True)
    final = start + depth * _diagonal_step(block).subs(model.r, rp) * saturated_pair()[0]
    (solution,) = sp.solve(sp.Eq(final, start * sp.exp(u)), rp)
    return sp.simplify(solution)
