"""Quadrature for Gaussian expectations without a closed form.

``lower_expectations`` turns every ``GaussianExpectation`` node into a call of a generated helper
whose body integrates the node's integrand (printed by SymPy) with the graded rule of
``generated/quadrature.py``. Helpers are named by a hash of the integrand, so equal integrands
share one helper and names do not depend on traversal order.

1-D: h = sqrt(K) z with the rule graded at z = 0 on the scale min(1, 1/sqrt(K)).
2-D: h1 = s1 z1, h2 = c z1 + s2 z2 (Cholesky). The inner rule is graded where h2 crosses zero,
z2 = -c z1 / s2, on the scale 1/s2; the outer rule at z1 = 0 on the smallest scale of h1 and of
the smoothed inner integral. Factors of the integrand that depend on h1 only are hoisted out of
the inner loop. The activation's sharp region is assumed at h = 0 with unit width, true for every
activation shipped here; tests check each helper against adaptive quadrature.
"""
from __future__ import annotations

import hashlib
import string
from importlib import resources

import sympy as sp
from sympy.codegen.ast import Assignment, For, Return, aug_assign
from sympy.integrals.quadrature import gauss_legendre

from ..derivations.expectation import GaussianExpectation, variables
from .nodes import Allocate, JitFunction, helper_call

ORDER = 10
GROWTH = 2.0
MAX_PANEL = 2.0
MIN_PANEL = 1e-6
HALF_WIDTH = 9.0
MAX_NODES = 1024


def rule_module_source() -> str:
    """The text of generated/quadrature.py (before its banner)."""
    nodes, weights = gauss_legendre(ORDER, 30)
    template = string.Template(
        resources.files("fieldgen.codegen").joinpath("templates/quadrature.tmpl").read_text())
    return template.substitute(
        GL_NODES=", ".join(repr(float(x)) for x in nodes),
        GL_WEIGHTS=", ".join(repr(float(w)) for w in weights),
        HALF_WIDTH=repr(HALF_WIDTH), GROWTH=repr(GROWTH), MAX_PANEL=repr(MAX_PANEL),
        MIN_PANEL=repr(MIN_PANEL), MAX_NODES=MAX_NODES, ORDER=ORDER)


def helper_name(node: GaussianExpectation) -> str:
    digest = hashlib.sha256(sp.srepr(node.integrand).encode()).hexdigest()[:12]
    return f"_expect{node.dimension}_{digest}"


class HelperLibrary:
    """Helpers a module needs beyond the built-in math helpers, by name."""

    def __init__(self):
        self.functions: dict[str, JitFunction] = {}

    def add(self, fn: JitFunction) -> None:
        known = self.functions.get(fn.name)
        if known is not None and known != fn:
            raise ValueError(f"two different helpers named {fn.name}")
        self.functions[fn.name] = fn


def lower_expectations(expr: sp.Expr, library: HelperLibrary) -> sp.Expr:
    """Replace GaussianExpectation nodes by calls of quadrature helpers added to `library`."""
    def lower(node):
        name = helper_name(node)
        library.add(_helper(name, node))
        return helper_call(name, *node.entries)
    return expr.replace(lambda e: isinstance(e, GaussianExpectation), lower)


def _helper(name: str, node: GaussianExpectation) -> JitFunction:
    if node.dimension == 1:
        return _helper_1d(name, node)
    if node.dimension == 2:
        return _helper_2d(name, node)
    raise NotImplementedError("quadrature helpers exist for 1-D and 2-D expectations")


_z, _w, _z1, _w1, _z2, _w2 = (sp.IndexedBase(n, shape=(MAX_NODES,)) for n in
                              ("z", "w", "z1", "w1", "z2", "w2"))
_i, _j, _n, _n1, _n2 = (sp.Symbol(n, integer=True) for n in ("i", "j", "n", "n1", "n2"))
_k, _k11, _k22, _k12 = sp.symbols("k k11 k22 k12", real=True)
_s, _s1, _s2, _c, _a1, _a2, _m, _acc, _inner, _outer = sp.symbols(
    "s s1 s2 c a1 a2 m acc inner outer", real=True)
_rule = sp.Function("graded_rule")


def _one_over(x: sp.Expr) -> sp.Expr:
    return sp.Piecewise((1 / x, x > 0), (1.0, True))


def _helper_1d(name: str, node: GaussianExpectation) -> JitFunction:
    (x1,) = variables(1)
    f = node.integrand.expr
    body = (
        Assignment(_s, sp.sqrt(sp.Max(_k, 0))),
        Allocate(_z, (MAX_NODES,)), Allocate(_w, (MAX_NODES,)),
        Assignment(_n, _rule(0.0, sp.Min(1.0, _one_over(_s)), _z, _w)),
        Assignment(_acc, 0.0),
        For(_i, sp.Range(0, _n), [Assignment(x1, _s * _z[_i]), aug_assign(_acc, "+", _w[_i] * f)]),
        Return(_acc),
    )
    return JitFunction(name, (_k,), "float64(float64)", body,
                       f"<{f}> for x1 ~ N(0, k): graded Gauss-Legendre quadrature.")


def _helper_2d(name: str, node: GaussianExpectation) -> JitFunction:
    x1, x2 = variables(2)
    f = node.integrand.expr
    outer_factor, inner_factor = sp.S.One, sp.S.One
    for factor in sp.Mul.make_args(f):
        if factor.has(x2):
            inner_factor *= factor
        else:
            outer_factor *= factor
    inner_loop = For(_j, sp.Range(0, _n2), [
        Assignment(x2, _m + _s2 * _z2[_j]),
        aug_assign(_inner, "+", _w2[_j] * inner_factor)])
    outer_loop = For(_i, sp.Range(0, _n1), [
        Assignment(x1, _s1 * _z1[_i]),
        Assignment(_m, _c * _z1[_i]),
        Assignment(_n2, _rule(sp.Piecewise((-_m / _s2, _s2 > 0), (0.0, True)), _a2, _z2, _w2)),
        Assignment(_inner, 0.0),
        inner_loop,
        aug_assign(_acc, "+", _w1[_i] * outer_factor * _inner)])
    # Feature length in z1: of h1 (1/s1) and of the inner integral, a function of c z1 smoothed
    # over s2 (max(1, s2)/|c|).
    inner_scale = sp.Piecewise((sp.Max(1.0, _s2) / sp.Abs(_c), sp.Abs(_c) > 0), (1.0, True))
    body = (
        Assignment(_s1, sp.sqrt(sp.Max(_k11, 0))),
        Assignment(_c, sp.Piecewise((_k12 / _s1, _s1 > 0), (0.0, True))),
        Assignment(_s2, sp.sqrt(sp.Max(_k22 - _c**2, 0))),
        Assignment(_a1, sp.Min(1.0, _one_over(_s1), inner_scale)),
        Assignment(_a2, sp.Min(1.0, _one_over(_s2))),
        Allocate(_z1, (MAX_NODES,)), Allocate(_w1, (MAX_NODES,)),
        Allocate(_z2, (MAX_NODES,)), Allocate(_w2, (MAX_NODES,)),
        Assignment(_n1, _rule(0.0, _a1, _z1, _w1)),
        Assignment(_acc, 0.0),
        outer_loop,
        Return(_acc),
    )
    return JitFunction(name, (_k11, _k22, _k12), "float64(float64, float64, float64)", body,
                       f"<{f}> for (x1, x2) ~ N(0, [[k11, k12], [k12, k22]]): nested graded "
                       "Gauss-Legendre quadrature.")
