"""The Gaussian expectations each activation uses: closed forms where derived, quadrature otherwise.

Every function returns a SymPy expression in the model's kernel symbols. For activations without a
closed form the result contains ``GaussianExpectation`` nodes, which the code generator prints as
quadrature and which differentiate by Price's theorem, so downstream code never needs to know
which kind it got.
"""

from __future__ import annotations

import sympy as sp

from . import activations, closed_forms, model
from .expectation import expect, variables


def pair(name: str, entries=model.K) -> tuple[sp.Expr, sp.Expr, sp.Expr]:
    """(P11, P22, P12): <phi(h_a) phi(h_b)> for h ~ N(0, K), K given by its pair entries."""
    k11, k22, k12 = entries
    if closed_forms.has_closed_form(name):
        p = closed_forms.pair_expectation(name)
        return tuple(sp.sympify(e).xreplace(dict(zip(model.K, entries))) for e in p)
    x1, x2 = variables(2)
    phi = activations.get(name)
    return (
        expect(phi(x1) ** 2, (k11,)),
        expect(phi(x1) ** 2, (k22,)),
        expect(phi(x1) * phi(x2), (k11, k22, k12)),
    )


def single(name: str, variance: sp.Expr = model.K1) -> sp.Expr:
    """P(K) = <phi(h)^2> for h ~ N(0, K)."""
    if closed_forms.has_closed_form(name):
        return closed_forms.single_expectation(name, variance)
    (x1,) = variables(1)
    return expect(activations.get(name)(x1) ** 2, (variance,))


def mean(name: str, variance: sp.Expr) -> sp.Expr:
    """<phi(h)> for h ~ N(0, K)."""
    if closed_forms.has_closed_form(name):
        return closed_forms.mean(name, variance)
    (x1,) = variables(1)
    return expect(activations.get(name)(x1), (variance,))
