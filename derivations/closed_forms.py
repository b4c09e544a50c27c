"""Closed forms of the Gaussian expectations, derived by integrating Price's theorem.

For two inputs, dP12/dK12 = <phi'(h1) phi'(h2)>, and at K12 = 0 the two pre-activations are
independent. So starting from a derivative order d whose expectation <phi^(d) phi^(d)> SymPy can
do exactly (a Gaussian integral, the density at the origin, or a constant), d integrations in K12,

    <phi^(j) phi^(j)>(K12) = <phi^(j)>_{K11} <phi^(j)>_{K22} + int_0^{K12} <phi^(j+1) phi^(j+1)>(k) dk,

give P12 in closed form. One input is the diagonal K11 = K22 = K12. Nothing here is typed in as a
final formula; tests compare every result against quadrature and Price's theorem.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import sympy as sp

from . import activations, model
from .expectation import (Correlation, cholesky_expectation, covariance_matrix,
                          gaussian_density, integrate_1d, variables)


@dataclass(frozen=True)
class Recipe:
    """Where the Price chain starts: derivative order and how its expectation is done."""
    order: int
    base: str  # "density": phi^(d) = delta; "gaussian": exp-quadratic; "constant"


RECIPES = {
    "relu": Recipe(order=2, base="density"),
    "erf": Recipe(order=1, base="gaussian"),
    "linear": Recipe(order=1, base="constant"),
}


def has_closed_form(name: str) -> bool:
    return name in RECIPES


@dataclass(frozen=True)
class PairClosedForms:
    """<phi^(j)(h1) phi^(j)(h2)> for j = 0 .. order, in terms of (K11, K22, K12)."""
    name: str
    chain: tuple  # chain[j] = <phi^(j) phi^(j)>

    @property
    def phiphi(self) -> sp.Expr:
        return self.chain[0]

    @property
    def dphi_dphi(self) -> sp.Expr:
        return self.chain[1]


def _base_expectation(name: str, recipe: Recipe, entries) -> sp.Expr:
    x1, x2 = variables(2)
    phi_d = activations.get(name).derivative(recipe.order)
    body = phi_d(x1) * phi_d(x2)
    if recipe.base == "density":
        if body != sp.DiracDelta(x1) * sp.DiracDelta(x2):
            raise ValueError(f"{name}: density base needs phi^({recipe.order}) = delta")
        return gaussian_density((0, 0), covariance_matrix(2, entries))
    if recipe.base == "gaussian":
        return cholesky_expectation(body, entries)
    if recipe.base == "constant":
        if body.free_symbols & {x1, x2}:
            raise ValueError(f"{name}: constant base needs a constant phi^({recipe.order})^2")
        return body
    raise ValueError(f"unknown recipe base {recipe.base!r}")


def _integrate_in_k12(expr: sp.Expr, k: sp.Symbol) -> sp.Expr:
    """int_0^k expr(k') dk' with the k-free part of sqrt(A - B k^2) made positive for SymPy."""
    kp = sp.Dummy("k", real=True)
    integrand = expr.xreplace({k: kp})
    # SymPy finds arcsin primitives when the constant under a square root is known positive.
    positives = {}
    for root in integrand.atoms(sp.Pow):
        if root.exp in (sp.S.Half, -sp.S.Half):
            try:
                poly = sp.Poly(sp.expand(root.base), kp)
            except sp.PolynomialError:
                continue
            if poly.degree() == 2 and poly.coeff_monomial(kp) == 0:
                const = poly.coeff_monomial(1)
                if not const.is_number:
                    positives[const] = sp.Dummy("A", positive=True)
    sub = sp.expand(integrand)
    for const, symbol in positives.items():
        sub = sub.subs(const, symbol)
    result = sp.integrate(sub, (kp, 0, k), conds="none")
    for const, symbol in positives.items():
        result = result.xreplace({symbol: const})
    if result.has(sp.Integral):
        raise ValueError(f"SymPy could not integrate {expr} in K12")
    return result


def tidy_roots(expr: sp.Expr) -> sp.Expr:
    """Factor the radicands, so sqrt((1 + 2K)^2) becomes 1 + 2K for positive K."""
    return sp.simplify(expr).replace(
        lambda e: e.is_Pow and e.exp in (sp.S.Half, -sp.S.Half),
        lambda e: sp.Pow(sp.factor(e.base), e.exp))


def singular_at_full_correlation(expr: sp.Expr) -> bool:
    """True if a square root vanishes or an arcsin/arccos argument reaches +-1 at K12^2 = K11 K22.

    There round-off can push the argument out of the domain (a NaN), so such forms are written
    through the clamped correlation.
    """
    k11, k22, k12 = model.K
    at_boundary = {k12: sp.sqrt(k11 * k22)}
    for e in sp.preorder_traversal(expr):
        if e.is_Pow and e.exp in (sp.S.Half, -sp.S.Half):
            if sp.simplify(e.base.subs(at_boundary)) == 0:
                return True
        if isinstance(e, (sp.asin, sp.acos)):
            if sp.simplify(e.args[0].subs(at_boundary) ** 2 - 1) == 0:
                return True
    return False


def _in_correlation(expr: sp.Expr) -> sp.Expr:
    """Rewrite through rho = Correlation(K11, K22, K12), so generated code can clamp it."""
    k11, k22, k12 = model.K
    rho = sp.Symbol("rho", real=True)
    s = sp.sqrt(k11 * k22)
    written = sp.simplify(expr.subs(k12, rho * s))
    written = sp.simplify(written.subs(sp.sqrt(k11) * sp.sqrt(k22), s))
    return sp.collect(written, s).xreplace({rho: Correlation(k11, k22, k12)})


@lru_cache(maxsize=None)
def pair_chain(name: str) -> PairClosedForms:
    """Derive <phi^(j) phi^(j)> for j = order .. 0 by integrating Price's theorem in K12."""
    recipe = RECIPES[name]
    act = activations.get(name)
    (x1,) = variables(1)
    k11, k22, k12 = model.K
    k = sp.Symbol("k", real=True)
    current = _base_expectation(name, recipe, (k11, k22, k))
    chain = [current]
    for order in range(recipe.order - 1, -1, -1):
        phi_j = act.derivative(order)(x1)
        boundary = integrate_1d(phi_j, k11) * integrate_1d(phi_j, k22)
        current = sp.simplify(boundary + _integrate_in_k12(current, k))
        chain.insert(0, current)
    chain = tuple(tidy_roots(c.xreplace({k: k12})) for c in chain)
    if any(singular_at_full_correlation(c) for c in chain[:2]):
        chain = tuple(_in_correlation(c) for c in chain)
    return PairClosedForms(name, chain)


@lru_cache(maxsize=None)
def pair_expectation(name: str) -> tuple[sp.Expr, sp.Expr, sp.Expr]:
    """(P11, P22, P12) of two inputs, closed form, in terms of model.K."""
    k11, k22, k12 = model.K
    p12 = pair_chain(name).phiphi
    return (single_expectation(name, k11), single_expectation(name, k22), p12)


def single_expectation(name: str, variance: sp.Expr) -> sp.Expr:
    """P(K) = <phi(h)^2> of one input: the pair form on the diagonal."""
    k11, k22, k12 = model.K
    diagonal = pair_chain(name).phiphi.subs({k11: variance, k22: variance, k12: variance})
    return tidy_roots(diagonal)


def mean(name: str, variance: sp.Expr) -> sp.Expr:
    """<phi(h)> for h ~ N(0, variance): the drift of the reduced block."""
    (x1,) = variables(1)
    return integrate_1d(activations.get(name)(x1), variance)
