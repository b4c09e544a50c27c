"""Fold kinked expectations that linearity split apart back into one integrand.

``GaussianExpectation`` splits a sum integrand into one node per term, which the closed-form
rules need. For a kinked activation without closed forms that is harmful numerically: ELU's
phi' = Theta(x) + exp(x) Theta(-x) is written Theta(x) + exp(x) - exp(x) Theta(x) (steps at the
origin are kept as Theta(x) and 1 - Theta(x)), so <phi'(h1) phi'(h2)> becomes nine nodes, among
them <exp(x1) exp(x2)> ~ exp(2K), that cancel to a value of order one: at K ~ 15 the
sensitivity came out as 1e34. Before the expectations are lowered to quadrature, the terms of a
sum that share the covariance entries and the factor in front are summed under one integrand
again (factored, so that Mehler's product form still applies), and the printer then evaluates
only the branch of each step that applies (``printer``: steps become branches).
"""

from __future__ import annotations

import sympy as sp

from ..derivations.expectation import GaussianExpectation


def fold_kinked_expectations(expr: sp.Expr) -> sp.Expr:
    """sum_i q_i c <A_i> -> c <sum_i q_i A_i> where some A_i has a step (q_i numbers, c common)."""
    if not expr.has(GaussianExpectation):
        return expr
    return expr.replace(lambda e: e.is_Add and any(_kinked(t) for t in e.args), _fold_sum)


def _node(term: sp.Expr) -> GaussianExpectation | None:
    nodes = [f for f in sp.Mul.make_args(term) if isinstance(f, GaussianExpectation)]
    return nodes[0] if len(nodes) == 1 else None


def _kinked(term: sp.Expr) -> bool:
    node = _node(term)
    return node is not None and node.integrand.expr.has(sp.Heaviside)


def _fold_sum(add: sp.Add) -> sp.Expr:
    groups: dict = {}
    kept = []
    for term in add.args:
        node = _node(term)
        if node is None:
            kept.append(term)
            continue
        q, factor = (term / node).as_coeff_Mul()
        key = (factor, node.integrand.variables, node.entries)
        groups.setdefault(key, []).append(q * node.integrand.expr)
    for (factor, xs, entries), bodies in groups.items():
        if len(bodies) == 1 or not any(b.has(sp.Heaviside) for b in bodies):
            kept.extend(factor * GaussianExpectation(sp.Lambda(xs, b), *entries) for b in bodies)
            continue
        body = sp.factor(sp.Add(*bodies))
        if body == 0:
            continue
        q, body = body.as_coeff_Mul()
        # evaluate=False: evaluation would split the sum again.
        node = GaussianExpectation(sp.Lambda(xs, body), *entries, evaluate=False)
        kept.append(q * factor * node)
    return sp.Add(*kept)
