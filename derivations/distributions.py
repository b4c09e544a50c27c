"""Derivatives of piecewise activations in the sense of distributions.

relu(x) = x Theta(x) has relu' = Theta, relu'' = delta. SymPy's own derivative of Max(0, x)^2
leaves products such as Max(0, x) DiracDelta(x) and Heaviside(x)^2 unsimplified; Price's theorem
needs them reduced: x^k delta(x) = 0 (k >= 1), f(x) delta(x) = f(0) delta(x) for f continuous at 0,
Theta^k = Theta. A product that would need Theta(0) is ill-defined and raises.
"""

from __future__ import annotations

import sympy as sp


def _step(u: sp.Expr) -> sp.Expr:
    """Theta(u) for an argument u(x) that changes sign only at x = 0: Theta(x) or 1 - Theta(x).

    Price's theorem and the sifting below work with steps and deltas at the origin; a kink or step
    elsewhere (relu6, a shifted step) is not supported and raises.
    """
    symbols = sorted(u.free_symbols, key=sp.default_sort_key)
    if len(symbols) != 1:
        return sp.Heaviside(u)
    (x,) = symbols
    if u == x:
        return sp.Heaviside(x)
    slope = sp.diff(u, x).subs(x, 0)
    at_zero = u.subs(x, 0)
    try:
        roots = sp.solve(u, x)
    except NotImplementedError:
        roots = None
    if (
        at_zero != 0
        or roots is None
        or any(sp.simplify(r) != 0 for r in roots)
        or not slope.is_number
        or slope == 0
    ):
        raise ValueError(
            f"steps and kinks are supported at x = 0 only; {sp.sstr(u)} changes sign "
            "elsewhere or is not monotone there"
        )
    return sp.Heaviside(x) if slope > 0 else 1 - sp.Heaviside(x)


def _as_step_form(expr: sp.Expr) -> sp.Expr:
    """Max, Min, Abs, sign -> products of steps, so derivatives stay steps and deltas:
    Max(a, b) = b + (a - b) Theta(a - b), Min(a, b) = a - (a - b) Theta(a - b), |u| = u (2 Theta(u) - 1),
    sign(u) = 2 Theta(u) - 1; steps of an argument that crosses zero at x = 0 become Theta(+-x)."""

    def max_to_step(*args):
        if len(args) != 2:
            return sp.Max(*args)
        if sp.S.Zero in args:  # relu's form, x Theta(x)
            (other,) = [a for a in args if a != 0]
            return other * sp.Heaviside(other)
        a, b = args
        return b + (a - b) * sp.Heaviside(a - b)

    def min_to_step(*args):
        if len(args) != 2:
            return sp.Min(*args)
        a, b = args
        return a - (a - b) * sp.Heaviside(a - b)

    expr = expr.replace(sp.Max, max_to_step).replace(sp.Min, min_to_step)
    expr = expr.replace(sp.Abs, lambda u: u * (2 * sp.Heaviside(u) - 1))
    expr = expr.replace(sp.sign, lambda u: 2 * sp.Heaviside(u) - 1)
    return expr.replace(sp.Heaviside, lambda u, *h0: _step(u))


def piecewise_form(expr: sp.Expr, variables) -> sp.Expr:
    """A + B Theta(x) -> Piecewise((A + B, x > 0), (A, True)) for each variable x in turn.

    The same function, but printed code then evaluates only the branch that applies, so a factor
    that overflows on the other side (ELU's exp(x) times Theta(-x)) never meets a zero.
    """
    for x in variables:
        step = sp.Heaviside(x)
        if not expr.has(step):
            continue
        expanded = sp.expand(expr)
        with_step = sp.expand(expanded.xreplace({step: 1}))
        without = sp.expand(expanded.xreplace({step: 0}))
        if with_step.has(step) or without.has(step):
            continue
        expr = sp.Piecewise(
            (piecewise_form(with_step, variables), x > 0),
            (piecewise_form(without, variables), True),
        )
    return expr


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
    steps = [h for h in rest.atoms(sp.Heaviside, sp.DiracDelta) if h.args[0].has(x)]
    if steps:
        # f continuous at 0 although it has steps (relu's x Theta(x)): f delta = f(0) delta.
        # The one-sided values at 0 agree; otherwise f(0) would need Theta(0).
        sides = {sp.simplify(rest.xreplace({h: side for h in steps}).subs(x, 0)) for side in (0, 1)}
        if n or any(h != sp.Heaviside(x) for h in steps) or len(sides) != 1:
            raise ValueError(f"{term} needs Theta(0): the product is not defined")
        return sides.pop() * delta
    return sp.Add(
        *[
            (-1) ** k
            * sp.binomial(n, k)
            * sp.diff(rest, x, k).subs(x, 0)
            * (sp.DiracDelta(x, n - k) if n - k else sp.DiracDelta(x))
            for k in range(n + 1)
        ]
    )


def simplify_distributions(expr: sp.Expr, variables) -> sp.Expr:
    """Reduce products of steps, deltas and smooth factors in the given variables."""
    expr = sp.expand(_as_step_form(expr))
    expr = expr.replace(
        lambda e: e.is_Pow and isinstance(e.base, sp.Heaviside) and e.exp.is_positive,
        lambda e: e.base,
    )
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
