"""Derivation objects as equations to display.

The one place that turns a LayerMap, SaddlePoint, PairClosedForms or Increment into
``sympy.Eq(lhs, rhs)`` rows; sections and ``fieldgen.latex`` both use it. Right-hand sides are the
derivation's own expressions; the only rewrites are exact ones for display: layer superscripts
(``nodes.AtLayer``), abbreviating a defined quantity by its symbol (``abbreviate``), and
``sympy.simplify`` of closed-form derivatives (the generated code differentiates the same closed
form; the round-trip test compares the printed form with the unsimplified derivative).
"""

from __future__ import annotations

from functools import singledispatch

import sympy as sp

from ..derivations import action, activations, closed_forms, gauss, meanfield, model
from ..derivations.expectation import (
    Correlation,
    GaussianExpectation,
    explicit_correlation,
    variables,
)
from .nodes import AtLayer, Mean, at_layer

LAYER = model.layer
PREVIOUS = model.layer - 1
# The generic activation of the action and of Price's theorem.
phi = sp.Function("phi", real=True)
ACTION = sp.Symbol("S")
# The off-diagonal expectation P12 = <phi(h_1) phi(h_2)>_K, named to keep derivative rows short.
PAIR_SYMBOL = sp.Symbol("P12")
# The conjugate field of one input (the auxiliary field is field_symbols(1)).
ONE_INPUT_CONJUGATE = sp.Symbol("Ct", real=True)


def eq(lhs, rhs) -> sp.Eq:
    return sp.Eq(lhs, rhs, evaluate=False)


def unevaluated_expectation(body, entries) -> GaussianExpectation:
    """<body(x1..xn)> as a node even when it could evaluate (a constant integrand, say)."""
    n = {1: 1, 3: 2}[len(entries)]
    return GaussianExpectation(sp.Lambda(variables(n), body), *entries, evaluate=False)


def abbreviate(expr, definitions: dict) -> sp.Expr:
    """Write every c * definition inside a sum (c a number) as c * symbol: an exact rewrite.

    ``definitions`` maps sums to the symbols that stand for them, e.g.
    sigma_w^2 K^{l-1}_11 + sigma_b^2 -> C^l_11, so 2 sigma_w^2 K^{l-1}_11 + 2 sigma_b^2 + 1 prints
    as 2 C^l_11 + 1.
    """

    def fold(node):
        terms = list(node.args)
        for definition, symbol in definitions.items():
            parts = sp.Add.make_args(definition)
            for term in list(terms):
                c = term / parts[0]
                scaled = [c * p for p in parts]
                if c.is_number and all(s in terms for s in scaled):
                    for s in scaled:
                        terms.remove(s)
                    terms.append(c * symbol)
        return sp.Add(*terms)

    return sp.sympify(expr).replace(lambda e: e.is_Add, fold)


# ---- the mean-field recursion ---------------------------------------------------------------


def field_symbols(n_inputs: int) -> tuple:
    """The auxiliary field as displayed: C for one input, (C11, C22, C12) for two."""
    return (sp.Symbol("C", positive=True),) if n_inputs == 1 else model.C


def field_values(lm: meanfield.LayerMap) -> tuple:
    """C^l at the saddle in terms of the previous layer, in pair order."""
    C, _ = action.pair_fields(lm.n_inputs)
    return tuple(at_layer(lm.saddle.fields[c], lm.kernel_state, PREVIOUS) for c in C)


def field_equations(lm: meanfield.LayerMap) -> list[sp.Eq]:
    """C^l = sigma_w^2 <g g>_{K^{l-1}} + sigma_b^2: the saddle point that drives the layer."""
    return [eq(AtLayer(c, LAYER), v) for c, v in zip(field_symbols(lm.n_inputs), field_values(lm))]


def layer_map_equations(lm: meanfield.LayerMap) -> list[sp.Eq]:
    """State^l = update(state^{l-1}); the reduced block's C^l abbreviated (see field_equations)."""
    update = [at_layer(u, lm.state, PREVIOUS) for u in lm.update]
    if lm.block == "reduced":
        short = {v: AtLayer(c, LAYER) for c, v in zip(field_symbols(lm.n_inputs), field_values(lm))}
        update = [abbreviate(u, short) for u in update]
    return [eq(AtLayer(s, LAYER), u) for s, u in zip(lm.state, update)]


def input_kernel_equations(mode: str, n_inputs: int) -> list[sp.Eq]:
    """K^0 in pair order for an input mode."""
    kernel = meanfield.kernel_symbols(n_inputs)
    return [eq(AtLayer(k, 0), v) for k, v in zip(kernel, meanfield.input_kernel(mode, n_inputs))]


# ---- action and saddle point ----------------------------------------------------------------


def _layered_fields(expr, n_inputs: int):
    """C, C~ of layer l; the kernel (and anything else in pair symbols of K) of layer l - 1."""
    C, Ct = action.pair_fields(n_inputs)
    expr = at_layer(expr, C + Ct, LAYER)
    return at_layer(expr, meanfield.kernel_symbols(n_inputs), PREVIOUS)


def action_equation(saddle: action.SaddlePoint, n_inputs: int) -> sp.Eq:
    return layer_action_equation(saddle.action, n_inputs)


def layer_action_equation(S: sp.Expr, n_inputs: int) -> sp.Eq:
    """S^l = S[C^l, C~^l; K^{l-1}]; one input's C11, C~11 shown as C, C~ (as field_symbols)."""
    if n_inputs == 1:
        S = S.xreplace({model.C[0]: field_symbols(1)[0], model.Ct[0]: ONE_INPUT_CONJUGATE})
        return eq(
            AtLayer(ACTION, LAYER),
            at_layer(
                at_layer(S, (field_symbols(1)[0], ONE_INPUT_CONJUGATE), LAYER),
                (model.K1,),
                PREVIOUS,
            ),
        )
    return eq(AtLayer(ACTION, LAYER), _layered_fields(S, n_inputs))


def saddle_point_equations(saddle: action.SaddlePoint, n_inputs: int) -> list[sp.Eq]:
    """dS/dC = 0 and dS/dC~ = 0 at C~ = 0, as derived (equal to zero)."""
    C, Ct = action.pair_fields(n_inputs)
    S = AtLayer(ACTION, LAYER)
    conjugate = [AtLayer(ct, LAYER) for ct in Ct]
    rows = [
        eq(sp.Derivative(S, AtLayer(c, LAYER)), _layered_fields(e, n_inputs))
        for c, e in zip(C, saddle.conjugate_equations)
    ]
    rows += [
        eq(
            sp.Subs(sp.Derivative(S, ct), tuple(conjugate), (0,) * len(conjugate)),
            _layered_fields(e, n_inputs),
        )
        for ct, e in zip(conjugate, saddle.equations)
    ]
    return rows


def saddle_solution_equations(saddle: action.SaddlePoint, n_inputs: int) -> list[sp.Eq]:
    C, Ct = action.pair_fields(n_inputs)
    rows = [eq(AtLayer(ct, LAYER), saddle.conjugates[ct]) for ct in Ct]
    rows += [eq(AtLayer(c, LAYER), _layered_fields(saddle.fields[c], n_inputs)) for c in C]
    return rows


def increment_equations(inc: action.Increment, n_inputs: int) -> list[sp.Eq]:
    """E[Delta_a] and E[Delta_a Delta_b] of the step h^l - h^{l-1}, C at layer l."""
    if n_inputs == 1:
        steps = (AtLayer(sp.Symbol("Delta"), LAYER),)
        pairs = ((0, 0),)
    else:
        steps = tuple(AtLayer(sp.Symbol(f"Delta{a}"), LAYER) for a in (1, 2))
        pairs = ((0, 0), (1, 1), (0, 1))

    def shown(e):
        return at_layer(e, field_symbols(n_inputs) + model.C, LAYER)

    rows = [eq(Mean(d), shown(m)) for d, m in zip(steps, inc.mean)]
    rows += [eq(Mean(steps[a] * steps[b]), shown(s)) for (a, b), s in zip(pairs, inc.second)]
    return rows


# ---- Gaussian expectations ------------------------------------------------------------------


def expectation_node(name: str, order: int = 0, entries=model.K) -> GaussianExpectation:
    """<phi^(order)(h_1) phi^(order)(h_2)>_K (or <phi^(order)(h)^2> for one entry), unevaluated."""
    d = activations.get(name).derivative(order)
    x1, x2 = variables(2)
    body = d(x1) ** 2 if len(entries) == 1 else d(x1) * d(x2)
    return unevaluated_expectation(body, entries)


def mean_node(name: str, variance=model.K1) -> GaussianExpectation:
    (x1,) = variables(1)
    return unevaluated_expectation(activations.get(name)(x1), (variance,))


def chain_equations(forms: closed_forms.PairClosedForms) -> list[sp.Eq]:
    """<phi^(j) phi^(j)>_K for j = 0 .. order: the Price chain the closed forms come from."""
    return [eq(expectation_node(forms.name, j), value) for j, value in enumerate(forms.chain)]


def correlation_equation() -> sp.Eq:
    rho = Correlation(*model.K)
    return eq(rho, explicit_correlation(rho))


def single_equations(name: str) -> list[sp.Eq]:
    """P(K) = <phi^2>_K, its first two derivatives, and <phi>_K, for one input."""
    K = model.K1
    node = expectation_node(name, entries=(K,))
    P = gauss.single(name, K)
    return [
        eq(node, P),
        eq(sp.Derivative(node, K), _shown_derivative(sp.diff(P, K))),
        eq(sp.Derivative(node, (K, 2)), _shown_derivative(sp.diff(P, K, 2))),
        eq(mean_node(name), gauss.mean(name, K)),
    ]


def pair_derivative_equations(name: str) -> list[sp.Eq]:
    """P12 = <phi phi>_K, then dP12/dK_s and d^2 P12/dK_q dK_s (q <= s in pair order): the
    Jacobian and Hessian rows of the off-diagonal entry."""
    P12 = gauss.pair(name)[2]
    rows = [eq(PAIR_SYMBOL, expectation_node(name))]
    rows += [eq(sp.Derivative(PAIR_SYMBOL, k), _shown_derivative(sp.diff(P12, k))) for k in model.K]
    for i, q in enumerate(model.K):
        for s in model.K[i:]:
            rows.append(eq(sp.Derivative(PAIR_SYMBOL, q, s), _shown_derivative(sp.diff(P12, q, s))))
    return rows


def _shown_derivative(expr):
    """Closed-form derivatives simplified for reading; quadrature nodes left as derived."""
    return expr if expr.has(GaussianExpectation) else sp.simplify(expr)


def price_equations(entries=model.K) -> list[sp.Eq]:
    """d<f>/dK_s = <D_s f> for a generic f: Price's theorem as the derivative of the node."""
    xs = variables({1: 1, 3: 2}[len(entries)])
    f = sp.Function("f", real=True)
    node = unevaluated_expectation(f(*xs), entries)
    return [eq(sp.Derivative(node, k), sp.diff(node, k)) for k in entries]


# ---- dispatch for fieldgen.latex --------------------------------------------------------------


@singledispatch
def equations(obj) -> list[sp.Eq]:
    raise TypeError(
        f"no LaTeX view of {type(obj).__name__}; pass a SymPy object or a derivation "
        "(LayerMap, SaddlePoint, PairClosedForms, Increment)"
    )


@equations.register
def _(obj: meanfield.LayerMap):
    fields = field_equations(obj) if obj.block == "reduced" else []
    return fields + layer_map_equations(obj)


@equations.register
def _(obj: action.SaddlePoint):
    n_inputs = len(obj.fields)
    return (
        [action_equation(obj, n_inputs)]
        + saddle_point_equations(obj, n_inputs)
        + saddle_solution_equations(obj, n_inputs)
    )


@equations.register
def _(obj: closed_forms.PairClosedForms):
    return chain_equations(obj)


@equations.register
def _(obj: action.Increment):
    return increment_equations(obj, len(obj.mean))
