"""Derivatives of piecewise activations in the sense of distributions.

relu(x) = x Theta(x) has relu' = Theta, relu'' = delta. SymPy's own derivative of Max(0, x)^2
leaves products such as Max(0, x) DiracDelta(x) and Heaviside(x)^2 unsimplified; Price's theorem
needs them reduced: x^k delta(x) = 0 (k >= 1), f(x) delta(x) = f(0) delta(x) for f continuous at 0,
Theta^k = Theta. A product that would need Theta(0) is ill-defined and raises.
"""
from __future__ import annotations

import sympy as sp


def _as_step_form(expr: sp.Expr) -> sp.Expr:
    """Max(0, x) -> x Theta(x), so derivatives stay products of steps and polynomials."""
    def to_step(*args):
        if len(args) == 2 and sp.S.Zero in args:
            (other,) = [a for a in args if a != 0]
            return other * sp.Heaviside(other)
        return sp.Max(*args)
    return expr.replace(sp.Max, to_step)


def _sift(term: sp.Expr, x: sp.Symbol) -> sp.Expr:
    """f(x) delta^(n)(x) -> sum_k (-1)^k C(n, k) f^(k)(0) delta^(n-k)(x) in one product term."""
    factors = sp.Mul.make_args(term)
    deltas = [f for f in factors if isinstance(f, sp.DiracDelta) and f.args[0] == x]
    if not deltas:
        return term
    if len(deltas) > 1:
        raise ValueError(f"product of distributions in {term} is not defined")
    delta = deltas[0]
    n = int(delta.args[1]) if len(delta.args) > 1 else 0
    rest = sp.Mul(*[f for f in factors if f is not delta])
    if not rest.has(x):
        return term
    if any(isinstance(h, (sp.Heaviside, sp.DiracDelta)) and h.args[0].has(x)
           for h in rest.atoms(sp.Heaviside, sp.DiracDelta)):
        raise ValueError(f"{term} needs Theta(0): the product is not defined")
    return sp.Add(*[(-1) ** k * sp.binomial(n, k) * sp.diff(rest, x, k).subs(x, 0)
                    * (sp.DiracDelta(x, n - k) if n - k else sp.DiracDelta(x))
                    for k in range(n + 1)])


def simplify_distributions(expr: sp.Expr, variables) -> sp.Expr:
    """Reduce products of steps, deltas and smooth factors in the given variables."""
    expr = sp.expand(_as_step_form(expr))
    expr = expr.replace(lambda e: e.is_Pow and isinstance(e.base, sp.Heaviside) and e.exp.is_positive,
                        lambda e: e.base)
    for x in variables:
        expr = sp.Add(*[_sift(t, x) for t in sp.Add.make_args(sp.expand(expr))])
    return expr


def derivative(expr: sp.Expr, x: sp.Symbol, order: int = 1, variables=None) -> sp.Expr:
    """d^order/dx^order in the sense of distributions, simplified after every step."""
    variables = tuple(variables) if variables is not None else (x,)
    out = simplify_distributions(expr, variables)
    for _ in range(order):
        out = simplify_distributions(sp.diff(out, x), variables)
    return out
