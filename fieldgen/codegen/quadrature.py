"""Fast evaluators for Gaussian expectations without a closed form.

``lower_expectations`` turns every ``GaussianExpectation`` node into a call of a generated helper.
Helpers are named by a hash of the integrand, so equal integrands share one helper and names do
not depend on traversal order.

1-D, <f(x1)> with x1 ~ N(0, k): a piecewise Chebyshev table in log k (analytic there), built from
the composite Gauss-Legendre rule ``table_rule`` of generated/quadrature.py, which also serves
outside the table's range and at k <= 0. Every table is built the first time a compilation needs
it (stored_table, typed by loading it) and stored in the per-user cache (usercache.load_table)
under a key printed here (_table_key); importing a module loads no table.

2-D, <f(x1) g(x2)>: Mehler's series sum_n rho^n a_n(k11) b_n(k22) with the Hermite coefficient
functions of f and g tabulated the same way; its tail is bounded by Cauchy-Schwarz and where the
bound exceeds the tolerance (|rho| near 1 with a sharp f or g, e.g. tanh at K >~ 1) or a variance
lies outside the tables, the nested graded rule below integrates: h1 = s1 z1, h2 = c z1 + s2 z2
(Cholesky). The inner rule is graded where h2 crosses zero, z2 = -c z1 / s2, on the scale 1/s2;
the outer rule at z1 = 0 on the smallest scale of h1 and of the smoothed inner integral (s2/|c|
when g may have a kink, max(1, s2)/|c| otherwise); at s2 = 0 the inner integral is g(c z1).
Factors of the integrand that depend on h1 only are hoisted out of the inner loop. Integrands
that do not factor use the nested rule only. The nested rule costs ~1e4 integrand evaluations.

2-D near the diagonal, two families with two parameters, recognised from the call's arguments
(the same expression twice): equal variances K11 = K22 = K (the sensitivity, the continuum) and
the walk K12 = K11 (one-loop moments of an early and a late layer, rho = sqrt(Ke / Kl) -> 1 for
nearby layers). Both are <A(y) B(y)>, y ~ N(0, S), with A and B f and g smoothed by the heat
kernel over variances V1, V2 (equal variances: S = |K12|, V1 = V2 = K - |K12|; walk: S = Ke,
V1 = 0, V2 = Kl - Ke): E[f(x1) g(x2)] = E[f(x1) (G_V g)(x1)] for x2 = x1 + sqrt(V) z. The value is
analytic in (log S, log V) (singular only at S < 0 or V < 0; a kink's terms near |rho| = 1 are
powers of V/S), so it is tabulated there, piecewise Chebyshev, on the panels near the diagonal: A and B are computed
once per V point on one composite rule in y shared by every S (templates/quadrature.tmpl), and a
lookup is a 13 x 13 Clenshaw sum whatever rho is, |rho| = 1 - 1e-9 included. Outside the table
(V < exp(-16), e.g. |rho| = 1 exactly, S or V outside the ranges, or V/S outside the band of
PAIR_BAND) the general helper above answers. Calls with other arguments (unequal variances) use the general helper.

In the general helper, at run time, for a symmetric integrand f(x1) f(x2) with f unbounded
(relu-like activations, whose kernels grow with depth and whose two-input mean field spends its
layers near the diagonal; _grows): where K11 == K22 (bit for bit, as the recursion keeps equal
diagonals) the equal-variance table; where K11 != K22 and K12 > 0, tables in a third variable
t = sqrt(Kb / Ka) >= 1 (Ka, Kb the smaller and the larger variance): x2 = t x2' with (x1, x2')
of equal variances Ka, so E = <A(y) B_t(y)> with B_t(y) = <f(t (y + sqrt(V) z))>, tabulated in
(log S, log V) at the Chebyshev points of log t in [0, log PAIR_T_HI] (degree PAIR_T_DEGREE),
a lookup ~0.3 us (Mehler's series: ~0.5 us; the nested rule: ~0.4 ms). Then Mehler's series and
the nested rule as before. Building these tables (the heat-smoothed f(t .) at every t) takes about
a minute once per integrand; it is stored in the per-user table cache.

3-D and 4-D (hermite.py): the trapezoidal rule in whitened coordinates for analytic integrands
(TRAP_* below), tensor Gauss-Hermite for kinked ones; tests check each helper kind against an
independent reference (adaptive quadrature, closed forms, brute-force sums).
"""

from __future__ import annotations

import hashlib
import math
import string
from dataclasses import dataclass
from importlib import resources

import sympy as sp
from sympy.codegen.ast import Assignment, For, Return, aug_assign
from sympy.integrals.quadrature import gauss_hermite, gauss_legendre

from ..derivations.expectation import GaussianExpectation, variables
from .nodes import Allocate, JitFunction, helper_call

ORDER = 10
# Gauss-Legendre nodes of the one-loop path integrals over s in [0, 1], in t with
# s = 1 - (1 - t)^PATH_POWER. Measured against mpmath on the path integrands of relu and erf
# (one input, pairs at c0 in {-0.9, 0, 0.5, 0.99, 0.999}, K from 0.01 to 1e4): at most 7e-12
# relative with (32, 4); (24, 1), the plain rule used before, gave 1e-4 at K ~ 30.
PATH_ORDER = 32
PATH_POWER = 4
# Gauss-Hermite nodes per axis for 3-D and 4-D expectations of kinked integrands (8000 and 20736
# nodes): relu's and erf's one-loop moments are path integrals of closed forms, the analytic ones
# without closed forms take the trapezoidal rule below.
HERMITE_ORDER = {3: 20, 4: 12}
# The trapezoidal rule in whitened coordinates for 3-D and 4-D expectations of analytic
# integrands (hermite.py, tensor_trapezoid_helper): nodes on a lattice of step h_j along z_j
# inside the ball |z| <= TRAP_Z of the outer axes (Gaussian mass outside: 4e-12 in 3-D; the last
# axis, tabulated, runs over [-TRAP_Z, TRAP_Z]; TRAP_Z_GROWING for
# integrands with an unbounded factor, polynomial of degree up to 8 overall: 1e-12 relative),
# h_j = TRAP_H_ARG over the fastest rate at which an argument moves along z_j, at most
# TRAP_H_GAUSS (the weight times a polynomial of degree 8: aliasing error
# (2 pi / h)^8 exp(-2 pi^2 / h^2) = 3e-16).
# The error falls like exp(-2 pi s / h) with s the distance of the integrand's nearest
# singularity from the real axis (tanh: pi / 2, in the arguments' units). Measured on the 4-D
# self-feedback moment of tanh and gelu pairs (K = 1.5 and 5, early/late ratio 0.5 to 0.999):
# 1e-10 to 2e-9 relative with 0.3, against a 4-D trapezoid of step 0.05 to 0.2. The innermost
# axis is summed once per covariance into tables of the smoothed innermost factors on a grid of
# spacing TRAP_DELTA (times the smoothing width when it is wider than 1), read by local
# interpolation of degree TRAP_DEGREE: n^(d-1) work instead of n^d.
TRAP_Z = 7.5
TRAP_Z_GROWING = 9.5
TRAP_H_ARG = 0.3
# Refinement: level l of TRAP_LEVELS takes steps f = 2^((TRAP_BASE_LEVEL - l) / 2) times those
# above (level TRAP_BASE_LEVEL: the bounds above). From the third level on, the changes between
# the last three levels extrapolate the error of the last (``trap_converged``); levels run until
# it is below TRAP_TOL times the sum of |integrand|. The bounds above alone are not enough: poles
# of order four (four tanh factors of nearly one argument) and the Gaussian's growth off the real
# axis put 7e-8 on h = 0.6 where K = 0.3, c0 = 0.9 and the layers nearly coincide, and tanh(5 x)
# was 4e-3 off. Refinement finds the step each integrand needs: tanh's stops at the bounds above
# (its self-feedback moments extrapolated to 1e-10 to 6e-10 there, 0.3 to 3 times the measured
# error), the logistic's in SiLU (singularities at pi, not pi / 2) one level coarser.
TRAP_BASE_LEVEL = 3
TRAP_LEVELS = 9
TRAP_TOL = 1e-9
TRAP_ROUNDING = 1e-13
TRAP_H_GAUSS = 0.6
TRAP_DELTA = 0.07
# A table's spacing is halved until interpolation from its even points onto its odd points (a
# table of twice the spacing) is within TRAP_TABLE_TOL of its largest value: the table itself is
# then about 2^(TRAP_DEGREE + 1) = 256 times closer, 1e-9 (tanh at spacing 0.07: 7e-10
# pointwise, and the errors of the interpolated values, of either sign, largely cancel in the
# sum: 4e-12 on a tanh moment). tanh(5 x) takes two halvings.
TRAP_TABLE_TOL = 2.5e-7
TRAP_DEGREE = 7
TRAP_MAX_HALF = 160
TRAP_MAX_TABLE = 20000
GROWTH = 2.0
MAX_PANEL = 2.0
MIN_PANEL = 1e-18
HALF_WIDTH = 9.0
MAX_NODES = 2048
# Tables (see templates/quadrature.tmpl): panels in t = log K, Chebyshev degree, Mehler terms.
TABLE_LOG_RANGE = (-12.0, 70.0)
TABLE_PANEL = 2.0
TABLE_DEGREE = 16
HERMITE_TERMS = 64
MEHLER_TOL = 1e-12
TABLE_ORDER = 20
TABLE_MAX_PANEL = 0.5
TABLE_HALF_WIDTH = 20.0
TABLE_MAX_NODES = 8192
# Two-point tables near the diagonal (templates/quadrature.tmpl): log S and log V ranges, panel
# width and Chebyshev degree, and the shared rule in y (nodes a panel, first panel, growth).
PAIR_S_LOG_RANGE = (-10.0, 70.0)
PAIR_V_LOG_RANGE = (-16.0, 70.0)
# Panels covered (templates/quadrature.tmpl, _pair_slots): log S and log V below PAIR_CORE_LOG_HI,
# and log(V / S) in PAIR_BAND (|rho| near 1) up to the top of the ranges.
PAIR_CORE_LOG_HI = 10.0
PAIR_BAND = (-24.0, 4.0)
PAIR_PANEL = 2.0
PAIR_DEGREE = 12
PAIR_Y_ORDER = 12
PAIR_Y_FIRST = 1e-4
PAIR_Y_GROWTH = 2.5
# Unequal variances near the diagonal (templates/quadrature.tmpl): tables in t = sqrt(Kb / Ka) for
# 1 <= t <= PAIR_T_HI, Chebyshev of degree PAIR_T_DEGREE in log t.
PAIR_T_HI = 2.0
PAIR_T_DEGREE = 9


def rule_module_source() -> str:
    """The text of generated/quadrature.py (before its banner)."""
    nodes, weights = gauss_legendre(ORDER, 30)
    path_nodes, path_weights = gauss_legendre(PATH_ORDER, 30)
    gh3_nodes, gh3_weights = gauss_hermite(HERMITE_ORDER[3], 30)
    gh4_nodes, gh4_weights = gauss_hermite(HERMITE_ORDER[4], 30)
    table_nodes, table_weights = gauss_legendre(TABLE_ORDER, 30)
    pair_nodes, pair_weights = gauss_legendre(PAIR_Y_ORDER, 30)
    s_lo, s_hi = PAIR_S_LOG_RANGE
    v_lo, v_hi = PAIR_V_LOG_RANGE
    lo, hi = TABLE_LOG_RANGE
    template = string.Template(
        resources.files("fieldgen.codegen").joinpath("templates/quadrature.tmpl").read_text()
    )

    def floats(values):
        return ", ".join(repr(float(v)) for v in values)

    return template.substitute(
        GL_NODES=floats(nodes),
        GL_WEIGHTS=floats(weights),
        # [-1, 1] -> [0, 1]
        # [-1, 1] -> t in [0, 1] -> s = 1 - (1 - t)^p, ds = p (1 - t)^(p - 1) dt
        PATH_ORDER=PATH_ORDER,
        PATH_POWER=PATH_POWER,
        PATH_NODES=floats(1 - ((1 - x) / 2) ** PATH_POWER for x in path_nodes),
        PATH_WEIGHTS=floats(
            w / 2 * PATH_POWER * ((1 - x) / 2) ** (PATH_POWER - 1)
            for x, w in zip(path_nodes, path_weights)
        ),
        # weight exp(-x^2) -> standard normal density: z = sqrt(2) x, w / sqrt(pi)
        GH3_NODES=floats(sp.sqrt(2) * x for x in gh3_nodes),
        GH3_WEIGHTS=floats(w / sp.sqrt(sp.pi) for w in gh3_weights),
        GH4_NODES=floats(sp.sqrt(2) * x for x in gh4_nodes),
        GH4_WEIGHTS=floats(w / sp.sqrt(sp.pi) for w in gh4_weights),
        TRAP_Z=repr(TRAP_Z),
        TRAP_Z_GROWING=repr(TRAP_Z_GROWING),
        TRAP_H_ARG=repr(TRAP_H_ARG),
        TRAP_BASE_LEVEL=TRAP_BASE_LEVEL,
        TRAP_LEVELS=TRAP_LEVELS,
        TRAP_TOL=repr(TRAP_TOL),
        TRAP_ROUNDING=repr(TRAP_ROUNDING),
        TRAP_TABLE_TOL=repr(TRAP_TABLE_TOL),
        TRAP_H_GAUSS=repr(TRAP_H_GAUSS),
        TRAP_DELTA=repr(TRAP_DELTA),
        TRAP_DEGREE=TRAP_DEGREE,
        TRAP_MAX_HALF=TRAP_MAX_HALF,
        TRAP_MAX_TABLE=TRAP_MAX_TABLE,
        TRAP_LAGRANGE=floats(
            (-1) ** (TRAP_DEGREE - a) / (math.factorial(a) * math.factorial(TRAP_DEGREE - a))
            for a in range(TRAP_DEGREE + 1)
        ),
        TRAP_MIDPOINT=floats(_lagrange_at(TRAP_DEGREE, sp.Rational(TRAP_DEGREE, 2))),
        HALF_WIDTH=repr(HALF_WIDTH),
        GROWTH=repr(GROWTH),
        MAX_PANEL=repr(MAX_PANEL),
        MIN_PANEL=repr(MIN_PANEL),
        MAX_NODES=MAX_NODES,
        ORDER=ORDER,
        TABLE_LOG_LO=repr(lo),
        TABLE_LOG_HI=repr(hi),
        TABLE_PANEL=repr(TABLE_PANEL),
        TABLE_PANELS=int(round((hi - lo) / TABLE_PANEL)),
        TABLE_DEGREE=TABLE_DEGREE,
        HERMITE_TERMS=HERMITE_TERMS,
        MEHLER_TOL=repr(MEHLER_TOL),
        TABLE_ORDER=TABLE_ORDER,
        TABLE_GL_NODES=floats(table_nodes),
        TABLE_GL_WEIGHTS=floats(table_weights),
        TABLE_HALF_WIDTH=repr(TABLE_HALF_WIDTH),
        TABLE_MAX_PANEL=repr(TABLE_MAX_PANEL),
        TABLE_MAX_NODES=TABLE_MAX_NODES,
        PAIR_S_LOG_LO=repr(s_lo),
        PAIR_S_LOG_HI=repr(s_hi),
        PAIR_V_LOG_LO=repr(v_lo),
        PAIR_V_LOG_HI=repr(v_hi),
        PAIR_PANEL=repr(PAIR_PANEL),
        PAIR_S_PANELS=int(round((s_hi - s_lo) / PAIR_PANEL)),
        PAIR_V_PANELS=int(round((v_hi - v_lo) / PAIR_PANEL)),
        PAIR_DEGREE=PAIR_DEGREE,
        PAIR_CORE_LOG_HI=repr(PAIR_CORE_LOG_HI),
        PAIR_BAND_LO=repr(PAIR_BAND[0]),
        PAIR_BAND_HI=repr(PAIR_BAND[1]),
        PAIR_GL_NODES=floats(pair_nodes),
        PAIR_GL_WEIGHTS=floats(pair_weights),
        PAIR_Y_ORDER=PAIR_Y_ORDER,
        PAIR_Y_FIRST=repr(PAIR_Y_FIRST),
        PAIR_Y_GROWTH=repr(PAIR_Y_GROWTH),
        PAIR_T_HI=repr(PAIR_T_HI),
        PAIR_T_DEGREE=PAIR_T_DEGREE,
    )


def helper_name(node: GaussianExpectation) -> str:
    digest = hashlib.sha256(sp.srepr(node.integrand).encode()).hexdigest()[:12]
    return f"_expect{node.dimension}_{digest}"


class HelperLibrary:
    """Helpers a module needs beyond the built-in math helpers, by name, and their imports."""

    def __init__(self):
        self.functions: dict[str, JitFunction] = {}
        self.imports: set[str] = set()

    def add(self, fn: JitFunction) -> None:
        known = self.functions.get(fn.name)
        if known is not None and known != fn:
            raise ValueError(f"two different helpers named {fn.name}")
        self.functions[fn.name] = fn


def lower_expectations(expr: sp.Expr, library: HelperLibrary) -> sp.Expr:
    """Replace GaussianExpectation nodes (and one-dimensional Integrals over [0, 1]) by calls of
    quadrature helpers added to `library`."""

    def lower(node):
        if node.dimension >= 3:
            from .hermite import tensor_hermite_helper  # hermite builds on this module

            return helper_call(tensor_hermite_helper([node.integrand], library), *node.entries)
        name = helper_name(node)
        library.add(_helper(name, node, library))
        family = _pair_family(node)
        if family is not None:
            k11, k22, k12 = node.entries
            library.add(_pair_helper(name, family, node, library))
            if family == "s":
                return helper_call(f"{name}s", k11, k12)
            return helper_call(f"{name}w", k11, k22)
        return helper_call(name, *node.entries)

    def lower_integral(integral):
        return _path_integral(integral, library)

    expr = expr.replace(lambda e: isinstance(e, sp.Integral), lower_integral)
    return expr.replace(lambda e: isinstance(e, GaussianExpectation), lower)


def _helper(name: str, node: GaussianExpectation, library: HelperLibrary) -> JitFunction:
    if node.dimension == 1:
        return _tabulated_1d(name, node, library)
    return _mehler_2d(name, node, library)


def _path_integral(integral: sp.Integral, library: HelperLibrary) -> sp.Expr:
    """int_0^1 f(s) ds of a closed form -> a helper summing Gauss-Legendre nodes.

    The rule (generated/quadrature.py) is Gauss-Legendre in t with s = 1 - (1 - t)^4: the
    integrands' branch points sit at or just beyond s = 1 (a correlation reaching 1 between
    adjacent layers, or at large K for erf), where sqrt(1 - s) becomes (1 - t)^2. The sum over nodes may be reassociated
    (PATH_FASTMATH) so that LLVM vectorises it.
    """
    ((s, lo, hi),) = integral.limits
    if (lo, hi) != (0, 1):
        raise NotImplementedError("path integrals run over [0, 1]")
    integrand = lower_expectations(integral.function, library)
    args = tuple(sorted(integrand.free_symbols - {s}, key=sp.default_sort_key))
    digest = hashlib.sha256(sp.srepr(sp.Lambda((s,) + args, integrand)).encode()).hexdigest()[:12]
    name = f"_path_{digest}"
    replacements, (reduced,) = sp.cse(
        [integrand], symbols=sp.numbered_symbols("u"), order="canonical"
    )
    lines = [
        '@njit(cache=True, nogil=True, error_model="numpy", fastmath=PATH_FASTMATH)',
        "def {}({}):".format(name, ", ".join(str(a) for a in args)),
        '    """Gauss-Legendre integral over the cross-covariance path s in [0, 1]."""',
        "    acc = 0.0",
        "    for k in range(PATH_ORDER):",
        f"        {s} = PATH_NODES[k]",
    ]
    exprs = []
    for a, b in replacements:
        lines.append(f"        {a} = @{len(exprs)}@")
        exprs.append(b)
    lines.append(f"        acc += PATH_WEIGHTS[k]*(@{len(exprs)}@)")
    exprs.append(reduced)
    lines.append("    return acc")
    library.imports.add(
        "from .quadrature import PATH_FASTMATH, PATH_NODES, PATH_ORDER, PATH_WEIGHTS"
    )
    library.add(TextHelper(name, "\n".join(lines), tuple(exprs), ()))
    return helper_call(name, *args)


_z, _w, _z1, _w1, _z2, _w2 = (
    sp.IndexedBase(n, shape=(MAX_NODES,)) for n in ("z", "w", "z1", "w1", "z2", "w2")
)
_i, _j, _n, _n1, _n2 = (sp.Symbol(n, integer=True) for n in ("i", "j", "n", "n1", "n2"))
_k, _k11, _k22, _k12 = sp.symbols("k k11 k22 k12", real=True)
_s, _s1, _s2, _c, _a1, _a2, _m, _acc, _inner, _outer = sp.symbols(
    "s s1 s2 c a1 a2 m acc inner outer", real=True
)
_rule = sp.Function("graded_rule")


def _one_over(x: sp.Expr) -> sp.Expr:
    return sp.Piecewise((1 / x, x > 0), (1.0, True))


def _helper_1d(name: str, node: GaussianExpectation) -> JitFunction:
    (x1,) = variables(1)
    f = node.integrand.expr
    body = (
        Assignment(_s, sp.sqrt(sp.Max(_k, 0))),
        Allocate(_z, (MAX_NODES,)),
        Allocate(_w, (MAX_NODES,)),
        Assignment(_n, _rule(0.0, sp.Min(1.0, _one_over(_s)), _z, _w)),
        Assignment(_acc, 0.0),
        For(_i, sp.Range(0, _n), [Assignment(x1, _s * _z[_i]), aug_assign(_acc, "+", _w[_i] * f)]),
        Return(_acc),
    )
    return JitFunction(
        name,
        (_k,),
        "float64(float64)",
        body,
        f"<{f}> for x1 ~ N(0, k): graded Gauss-Legendre quadrature.",
    )


def _kinked(expr: sp.Expr) -> bool:
    """Whether expr may have a kink or a step (at 0: the only place activations may have them)."""
    return expr.has(sp.Piecewise, sp.Heaviside, sp.Abs, sp.Max, sp.Min, sp.sign, sp.DiracDelta)


def _helper_2d(name: str, node: GaussianExpectation) -> JitFunction:
    x1, x2 = variables(2)
    f = node.integrand.expr
    outer_factor, inner_factor = sp.S.One, sp.S.One
    for factor in sp.Mul.make_args(f):
        if factor.has(x2):
            inner_factor *= factor
        else:
            outer_factor *= factor
    inner_loop = For(
        _j,
        sp.Range(0, _n2),
        [Assignment(x2, _m + _s2 * _z2[_j]), aug_assign(_inner, "+", _w2[_j] * inner_factor)],
    )
    outer_loop = For(
        _i,
        sp.Range(0, _n1),
        [
            Assignment(x1, _s1 * _z1[_i]),
            Assignment(_m, _c * _z1[_i]),
            # s2 = 0 (|rho| = 1): x2 = m, one node (z2[0] = 0, w2[0] = 1, set below)
            Assignment(_n2, sp.Piecewise((_rule(-_m / _s2, _a2, _z2, _w2), _s2 > 0), (1, True))),
            Assignment(_inner, 0.0),
            inner_loop,
            aug_assign(_acc, "+", _w1[_i] * outer_factor * _inner),
        ],
    )
    # Feature length in z1: of h1 (1/s1) and of the inner integral, a function of c z1 smoothed
    # over s2: max(1, s2)/|c| for a smooth inner factor (unit width at 0), s2/|c| for a kinked
    # one (its kink at x2 = 0 smoothed over s2 only; at s2 = 0 the kink is at z1 = 0, a panel
    # edge).
    width = sp.Piecewise((_s2, _s2 > 0), (1.0, True)) if _kinked(inner_factor) else sp.Max(1.0, _s2)
    inner_scale = sp.Piecewise((width / sp.Abs(_c), sp.Abs(_c) > 0), (1.0, True))
    body = (
        Assignment(_s1, sp.sqrt(sp.Max(_k11, 0))),
        Assignment(_c, sp.Piecewise((_k12 / _s1, _s1 > 0), (0.0, True))),
        Assignment(_s2, sp.sqrt(sp.Max(_k22 - _c**2, 0))),
        Assignment(_a1, sp.Min(1.0, _one_over(_s1), inner_scale)),
        Assignment(_a2, sp.Min(1.0, _one_over(_s2))),
        Allocate(_z1, (MAX_NODES,)),
        Allocate(_w1, (MAX_NODES,)),
        Allocate(_z2, (MAX_NODES,)),
        Allocate(_w2, (MAX_NODES,)),
        Assignment(_z2[0], 0.0),
        Assignment(_w2[0], 1.0),
        Assignment(_n1, _rule(0.0, _a1, _z1, _w1)),
        Assignment(_acc, 0.0),
        outer_loop,
        Return(_acc),
    )
    return JitFunction(
        name,
        (_k11, _k22, _k12),
        "float64(float64, float64, float64)",
        body,
        f"<{f}> for (x1, x2) ~ N(0, [[k11, k12], [k12, k22]]): nested graded "
        "Gauss-Legendre quadrature.",
    )


# ---- Tables: fast helpers in front of the quadrature -------------------------------------


def _lagrange_at(p: int, u: sp.Rational) -> list:
    """The weights of equispaced Lagrange interpolation on nodes 0..p at u (exact)."""
    return [
        sp.prod([(u - b) / sp.Integer(a - b) for b in range(p + 1) if b != a]) for a in range(p + 1)
    ]


@dataclass(frozen=True)
class TextHelper:
    """A helper printed from Python text; `exprs` (SymPy) replace the markers @0@, @1@, ... and
    `requires` names the generated helpers the text calls (so they are defined first)."""

    name: str
    text: str
    exprs: tuple = ()
    requires: tuple = ()

    def _numbacode(self, printer) -> str:
        printer.required.update(self.requires)
        text = self.text
        for i, e in enumerate(self.exprs):
            text = text.replace(f"@{i}@", printer._print(e))
        return text


_TABLE_IMPORTS = (
    "from .quadrature import TABLE_K_HI, TABLE_K_LO, TABLE_MAX_NODES, stored_table, table_points, "
    "table_ref, table_rule"
)


def _table_key(kind: str, *exprs: sp.Expr) -> str:
    """The key a table is stored under in the per-user cache (usercache.load_table): a SHA-256 of
    its kind, its integrands and the generator's sources (which fix the rule, the table's layout
    and how the integrands are printed), so that a stored table is never stale."""
    from ..usercache import generator_digest

    text = "\0".join([kind, generator_digest(), *(sp.srepr(e) for e in exprs)])
    return hashlib.sha256(text.encode()).hexdigest()


# Samples the integrand body (in x1) on table_rule at every table point; `@finish@` turns the
# samples into `values[i]`.
_SAMPLE = """    points = table_points()
    z = np.empty(TABLE_MAX_NODES)
    w = np.empty(TABLE_MAX_NODES)
    fz = np.empty(TABLE_MAX_NODES)
@alloc@
    for i in range(points.shape[0]):
        s = math.sqrt(points[i])
        n = table_rule(min(1.0, 1.0 / s), z, w)
        for j in range(n):
            x1 = s*z[j]
            fz[j] = @0@
@finish@
"""


def _late(target: str, arity: int, library: HelperLibrary) -> tuple[str, str]:
    """(helper, call): `target` registered as a fallback called through Numba's object mode
    (late1 / late3 in generated/quadrature.py), and the start of the call to print, ending with
    the key and a comma. A caller in nopython code then compiles none of target's chain: target
    compiles (or loads from the cache) on the first call that needs it, and the trampoline, one
    per arity, compiles once per process for every fallback of every module (a fallback's name
    is its integrand's digest: modules registering the same name hold the same code, the first
    one serves all). Arguments outside the tables pay a Python call (about a microsecond,
    against the quadrature's tens)."""
    key = "0x" + hashlib.sha256(target.encode()).hexdigest()[:15]
    helper = f"_late{target}"
    library.imports.add(f"from .quadrature import late{arity}, register_late")
    library.add(TextHelper(helper, f"register_late({key}, {target})", (), (target,)))
    return helper, f"late{arity}(np.int64({key}), "


def _suffix(name: str) -> str:
    return name[len("_expect") :]


def _tabulated_1d(name: str, node: GaussianExpectation, library: HelperLibrary) -> TextHelper:
    """<f(x1)>, x1 ~ N(0, k): a Chebyshev table in log k built (when first needed) from the
    composite rule (table_rule), which also serves outside the table's range (and k <= 0)."""
    suffix = _suffix(name)
    exact, build, table = f"_exact{suffix}", f"_build{suffix}", f"_TABLE{suffix}"
    library.imports.add(_TABLE_IMPORTS)
    library.imports.add("from .quadrature import chebyshev_table, table_value")
    f = node.integrand.expr
    library.add(
        TextHelper(
            exact,
            (
                f'@njit(cache=True, nogil=True, error_model="numpy", fastmath=FASTMATH)\n'
                f"def {exact}(k):\n"
                f'    """<{f}> for x1 ~ N(0, k): composite Gauss-Legendre graded at 0 (table_rule)."""\n'
                "    s = math.sqrt(max(k, 0.0))\n"
                "    z = np.empty(TABLE_MAX_NODES)\n"
                "    w = np.empty(TABLE_MAX_NODES)\n"
                "    n = table_rule(min(1.0, 1.0 / s) if s > 0.0 else 1.0, z, w)\n"
                "    acc = 0.0\n"
                "    for j in range(n):\n"
                "        x1 = s*z[j]\n"
                "        acc += w[j]*(@0@)\n"
                "    return acc"
            ),
            (f,),
            (),
        )
    )
    library.add(
        TextHelper(
            build,
            (
                '@njit(cache=True, nogil=True, error_model="numpy")\n'
                f"def {build}():\n"
                f'    """Chebyshev table in log k of <{f}> (generated/quadrature.py)."""\n'
                "    points = table_points()\n"
                "    values = np.empty(points.shape[0])\n"
                "    for i in range(points.shape[0]):\n"
                f"        values[i] = {exact}(points[i])\n"
                "    return chebyshev_table(values)\n"
                f'\n\n{table} = table_ref("{_table_key("chebyshev", f)}", {build})'
            ),
            (),
            (exact,),
        )
    )
    late, call = _late(exact, 1, library)
    return TextHelper(
        name,
        (
            f'@njit(cache=True, nogil=True, error_model="numpy", fastmath=FASTMATH, inline="always")\n'
            f"def {name}(k):\n"
            f'    """<{f}> for x1 ~ N(0, k): Chebyshev table in log k, graded quadrature outside it."""\n'
            f"    if k >= TABLE_K_LO and k <= TABLE_K_HI:\n"
            f"        return table_value(stored_table({table}), k)\n"
            f"    return {call}k)"
        ),
        (),
        (build, late),
    )


def _hermite_table(f: sp.Expr, library: HelperLibrary) -> str:
    """The global name of the reference to the Hermite table of f(x1) (built when first needed
    by a generated helper)."""
    (x1,) = variables(1)
    digest = hashlib.sha256(sp.srepr(sp.Lambda(x1, f)).encode()).hexdigest()[:12]
    build, table = f"_hermite_{digest}", f"_HERMITE_{digest}"
    library.imports.add(_TABLE_IMPORTS)
    library.imports.add(
        "from .quadrature import HERMITE_TERMS, hermite_moments, hermite_table, mehler_sum"
    )
    body = (
        _SAMPLE.replace(
            "@alloc@", "    values = np.empty((points.shape[0], HERMITE_TERMS + 1))"
        ).replace("@finish@", "        hermite_moments(fz, z, w, n, values[i])")
        + "    return hermite_table(values)\n"
    )
    library.add(
        TextHelper(
            build,
            (
                '@njit(cache=True, nogil=True, error_model="numpy")\n'
                f"def {build}():\n"
                f'    """Hermite coefficients of {f} tabulated in log k (generated/quadrature.py)."""\n'
                + body
                + f'\n\n{table} = table_ref("{_table_key("hermite", f)}", {build})'
            ),
            (f,),
            (),
        )
    )
    return table


def _mehler_2d(name: str, node: GaussianExpectation, library: HelperLibrary):
    """<f(x1) g(x2)>: Mehler's series from tabulated Hermite coefficients where its tail bound
    allows, the nested graded rule elsewhere; integrands that do not factor use the rule only.
    A symmetric integrand f(x1) f(x2) with f unbounded (the mean field of a relu-like
    activation, _grows) first tries the two-point tables: the equal-variance one where
    K11 == K22 (bit for bit: the recursion keeps equal diagonals equal) and the tables in
    t = sqrt(Kb / Ka) where K11 != K22 and K12 > 0."""
    x1, x2 = variables(2)
    first, second = sp.S.One, sp.S.One
    for factor in sp.Mul.make_args(node.integrand.expr):
        if factor.has(x1) and factor.has(x2):
            return _helper_2d(name, node)
        if factor.has(x2):
            second *= factor
        else:
            first *= factor
    if not (first.has(x1) and second.has(x2)):
        return _helper_2d(name, node)
    if max(_growth(first), _growth(second.xreplace({x2: x1}))) > MAX_GROWTH:
        return _helper_2d(name, node)
    exact = f"_exact{_suffix(name)}"
    library.add(_helper_2d(exact, node))
    table_a = _hermite_table(first, library)
    table_b = _hermite_table(second.xreplace({x2: x1}), library)
    f = node.integrand.expr
    builds = tuple("_hermite_" + t[len("_HERMITE_") :] for t in (table_a, table_b))
    tables = ""
    if first == second.xreplace({x2: x1}) and _grows(first.xreplace({x1: variables(1)[0]})):
        build_eq, pos, neg = _equal_tables(name, node, library)
        build_t, table_t = _scaled_tables(name, node, library)
        builds += (build_eq, build_t)
        library.imports.add("from .quadrature import PAIR_T_HI, pair_value_t")
        tables = (
            "    if k11 == k22:\n"
            "        s = abs(k12)\n"
            f"        value = pair_value(stored_table({pos}) if k12 > 0.0 else stored_table({neg}), s, k11 - s)\n"
            "        if value == value:\n"
            "            return value\n"
            "    elif k12 > 0.0:\n"
            "        ka = min(k11, k22)\n"
            "        t = math.sqrt(max(k11, k22) / ka)\n"
            "        if t <= PAIR_T_HI:\n"
            "            s = k12 / t\n"
            f"            value = pair_value_t(stored_table({table_t}), s, ka - s, t)\n"
            "            if value == value:\n"
            "                return value\n"
        )
    late, call = _late(exact, 3, library)
    chain = (
        tables
        + "    if k11 >= TABLE_K_LO and k11 <= TABLE_K_HI and k22 >= TABLE_K_LO and k22 <= TABLE_K_HI:\n"
        f"        value = mehler_sum(stored_table({table_a}), stored_table({table_b}), k11, k22, k12)\n"
        "        if value == value:\n"
        "            return value\n"
    )
    requires = tuple(sorted(set(builds)))
    # the same chain with the nested quadrature called directly, for the pair tables' fallback
    # (compiled when first needed, one call through object mode instead of two)
    library.add(
        TextHelper(
            f"_chain{_suffix(name)}",
            (
                '@njit(cache=True, nogil=True, error_model="numpy", fastmath=FASTMATH)\n'
                f"def _chain{_suffix(name)}(k11, k22, k12):\n"
                f'    """{name} with {exact} called directly: the pair tables\' fallback."""\n'
                + chain
                + f"    return {exact}(k11, k22, k12)"
            ),
            (),
            requires + (exact,),
        )
    )
    return TextHelper(
        name,
        (
            f'@njit(cache=True, nogil=True, error_model="numpy", '
            f'fastmath=FASTMATH, inline="always")\n'
            f"def {name}(k11, k22, k12):\n"
            f'    """<{f}> for (x1, x2) ~ N(0, [[k11, k12], [k12, k22]]): '
            + ("two-point tables near the diagonal,\n    " if tables else "")
            + "Mehler series from tables,\n"
            '    nested graded quadrature where its tail bound is too large or outside the tables."""\n'
            + chain
            + f"    return {call}k11, k22, k12)"
        ),
        (),
        requires + (late,),
    )


# ---- Two-point tables near the diagonal (equal variances, the walk) -----------------------

_PAIR_IMPORTS = (
    "from .quadrature import MAX_NODES, PAIR_Y, "
    "PAIR_Y_LIMITS, "
    "built, graded_rule, pair_table, pair_v_points, pair_value, stored_table, table_ref"
)


def _factors(node: GaussianExpectation) -> tuple[sp.Expr, sp.Expr] | None:
    """(f(x1), g(x1)) with integrand f(x1) g(x2), or None if it does not factor that way."""
    x1, x2 = variables(2)
    first, second = sp.S.One, sp.S.One
    for factor in sp.Mul.make_args(node.integrand.expr):
        if factor.has(x1) and factor.has(x2):
            return None
        if factor.has(x2):
            second *= factor
        else:
            first *= factor
    if not (first.has(x1) and second.has(x2)):
        return None
    return first, second.xreplace({x2: x1})


def _pair_family(node: GaussianExpectation) -> str | None:
    """The family: "s" for equal variances (K11 and K22 the same expression), "w" for the walk
    (K12 = K11), None otherwise or if the integrand does not factor as f(x1) g(x2)."""
    if node.dimension != 2 or _factors(node) is None:
        return None
    k11, k22, k12 = node.entries
    if k11 == k22:
        return "s"
    if k12 == k11:
        return "w"
    return None


def _heat_table(f: sp.Expr, library: HelperLibrary, smooth: bool) -> str:
    """The name of the builder of f's samples at the pair rule's nodes: smoothed by the heat
    kernel at every V point of the pair tables, shape (V points, nodes), or plain, shape
    (1, nodes). Called (through `built`, once per process) only to build a two-point table."""
    (x1,) = variables(1)
    digest = hashlib.sha256(sp.srepr(sp.Lambda(x1, f)).encode()).hexdigest()[:12]
    kind = "heat" if smooth else "plain"
    build = f"_{kind}_{digest}"
    library.imports.add(_PAIR_IMPORTS)
    if smooth:
        body = (
            f'    """<{f}> at x1 = y + sqrt(V) z, z ~ N(0, 1), for the pair rule\'s nodes y and the\n'
            '    V points of the pair tables (graded_rule around the point where x1 crosses 0)."""\n'
            "    vs = pair_v_points()\n"
            "    z = np.empty(MAX_NODES)\n"
            "    w = np.empty(MAX_NODES)\n"
            "    out = np.empty((vs.shape[0], PAIR_Y.shape[0]))\n"
            "    for k in range(vs.shape[0]):\n"
            "        sv = math.sqrt(vs[k])\n"
            "        for j in range(PAIR_Y.shape[0]):\n"
            "            if abs(PAIR_Y[j]) >= PAIR_Y_LIMITS[k]:\n"
            "                out[k, j] = 0.0\n"
            "                continue\n"
            "            n = graded_rule(-PAIR_Y[j] / sv, min(1.0, 1.0 / sv), z, w)\n"
            "            acc = 0.0\n"
            "            for i in range(n):\n"
            "                x1 = PAIR_Y[j] + sv*z[i]\n"
            "                acc += w[i]*(@0@)\n"
            "            out[k, j] = acc\n"
            "    return out\n"
        )
    else:
        body = (
            f'    """{f} at the pair rule\'s nodes."""\n'
            "    out = np.empty((1, PAIR_Y.shape[0]))\n"
            "    for j in range(PAIR_Y.shape[0]):\n"
            "        x1 = PAIR_Y[j]\n"
            "        out[0, j] = @0@\n"
            "    return out\n"
        )
    library.add(
        TextHelper(
            build,
            (f'@njit(cache=True, nogil=True, error_model="numpy")\ndef {build}():\n' + body),
            (f,),
            (),
        )
    )
    return build


def _growth(f: sp.Expr) -> float:
    """max |f(x)| at x = 10^4 and -10^4, evaluated exactly (inf for an overflow or a value that
    does not evaluate): about 10^4 for relu-like activations, 1 for bounded ones."""
    (x,) = variables(1)
    # opaque phi^(k) of a smooth activation (derivations/activations.py): written out
    f = f.replace(lambda e: callable(getattr(e, "explicit", None)), lambda e: e.explicit())
    f = f.rewrite(sp.log)  # Softplus
    # mpmath at fixed precision: SymPy's evalf chases the relative digits of a tiny term
    # (GELU's x exp(-x^2/2) beside Phi(x)) through millions of digits.
    import mpmath

    def step(u, *_):
        return mpmath.mpf(1) if u > 0 else mpmath.mpf(0)

    try:
        fn = sp.lambdify(x, f, modules=[{"Heaviside": step}, "mpmath"])
    except (TypeError, ValueError, NameError):
        return math.inf
    worst = 0.0
    with mpmath.workdps(30):
        for point in (10**4, -(10**4)):
            try:
                value = float(abs(mpmath.mpc(fn(mpmath.mpf(point)))))
            except (TypeError, ValueError, ArithmeticError, OverflowError, NameError):
                return math.inf
            worst = max(worst, value if value == value else math.inf)
    return worst


# Factors growing faster than this at |x| = 10^4 (exponentials, as in ELU's derivative terms
# exp(x) Heaviside(x)) have Hermite coefficients and two-point values growing double-exponentially
# in log K, which the Chebyshev tables do not resolve: their pairs use the nested rule only.
MAX_GROWTH = 1e6


def _grows(f: sp.Expr) -> bool:
    """Whether f(x) is unbounded but at most about linear (100 <= |f(+-10^4)| <= MAX_GROWTH):
    relu-like activations (silu, softplus, elu, mish), whose kernels grow with depth and whose
    two-input mean field spends its layers near the diagonal, where Mehler's series fails. Only
    their symmetric integrands get the two-point tables in the general helper: each costs a
    minute to build (once, then cached); bounded factors (tanh, derivatives) keep Mehler's
    series and the nested rule there."""
    return 100.0 <= _growth(f) <= MAX_GROWTH


def _equal_tables(name: str, node: GaussianExpectation, library: HelperLibrary):
    """(builder, positive, negative): the names of the equal-variance tables of <f(x1) g(x2)>
    (K12 > 0 and K12 < 0) and of the helper that defines them."""
    factors = _factors(node)
    assert factors is not None
    f, g = factors
    suffix = _suffix(name)
    heat_a = _heat_table(f, library, smooth=True)
    heat_b = _heat_table(g, library, smooth=True)
    pos, neg = f"_PAIRS_POS{suffix}", f"_PAIRS_NEG{suffix}"
    build = f"_pairs{suffix}"
    library.add(
        TextHelper(
            build,
            (
                f"def {build}():\n"
                f'    """Tables of <{node.integrand.expr}> at K11 = K22, K12 > 0 and K12 < 0."""\n'
                f"    a = built({heat_a})\n"
                f"    b = built({heat_b})\n"
                "    return pair_table(a, b, False), pair_table(a, b, True)\n"
                f'\n\n{pos} = table_ref("{_table_key("pairs", f, g)}", {build}, 0)'
                f'\n{neg} = table_ref("{_table_key("pairs", f, g)}", {build}, 1)'
            ),
            (),
            (heat_a, heat_b),
        )
    )
    return build, pos, neg


def _scaled_tables(name: str, node: GaussianExpectation, library: HelperLibrary):
    """(builder, table): the tables in t of a symmetric <f(x1) f(x2)> at K11 != K22, K12 > 0,
    i.e. of the equal-variance pair f(x1) f(t x2') at the t of pair_t_points()."""
    factors = _factors(node)
    assert factors is not None
    f, _ = factors
    (x1,) = variables(1)
    suffix = _suffix(name)
    heat_a = _heat_table(f, library, smooth=True)
    digest = hashlib.sha256(sp.srepr(sp.Lambda(x1, f)).encode()).hexdigest()[:12]
    scaled = f"_heatt_{digest}"
    library.imports.add("from .quadrature import pair_t_points, pair_t_table")
    library.add(
        TextHelper(
            scaled,
            (
                '@njit(cache=True, nogil=True, error_model="numpy")\n'
                f"def {scaled}(ts):\n"
                f'    """<{f}> at x1 = t (y + sqrt(V) z), z ~ N(0, 1), for each t in ts, the pair\n'
                "    rule's nodes y and the V points of the pair tables: one graded_rule (around the\n"
                '    point where x1 crosses 0, on the scale of f(max(ts) .)) serves every t."""\n'
                "    vs = pair_v_points()\n"
                "    z = np.empty(MAX_NODES)\n"
                "    w = np.empty(MAX_NODES)\n"
                "    acc = np.empty(len(ts))\n"
                "    out = np.empty((len(ts), vs.shape[0], PAIR_Y.shape[0]))\n"
                "    t_max = max(ts)\n"
                "    for k in range(vs.shape[0]):\n"
                "        sv = math.sqrt(vs[k])\n"
                "        for j in range(PAIR_Y.shape[0]):\n"
                "            if abs(PAIR_Y[j]) >= PAIR_Y_LIMITS[k]:\n"
                "                out[:, k, j] = 0.0\n"
                "                continue\n"
                "            n = graded_rule(-PAIR_Y[j] / sv, min(1.0, 1.0 / (t_max*sv)), z, w)\n"
                "            acc[:] = 0.0\n"
                "            for i in range(n):\n"
                "                h = PAIR_Y[j] + sv*z[i]\n"
                "                for a in range(len(ts)):\n"
                "                    x1 = ts[a]*h\n"
                "                    acc[a] += w[i]*(@0@)\n"
                "            out[:, k, j] = acc\n"
                "    return out"
            ),
            (f,),
            (),
        )
    )
    build, table = f"_pairt{suffix}", f"_PAIRT{suffix}"
    library.add(
        TextHelper(
            build,
            (
                f"def {build}():\n"
                f'    """Tables in t of <{node.integrand.expr}> at K11 != K22, K12 > 0."""\n'
                f"    a = built({heat_a})\n"
                f"    b = {scaled}(np.array(pair_t_points()))\n"
                "    return pair_t_table([pair_table(a, b[i], False) for i in range(b.shape[0])])\n"
                f'\n\n{table} = table_ref("{_table_key("pairs-t", f)}", {build})'
            ),
            (),
            (heat_a, scaled),
        )
    )
    return build, table


def _pair_helper(name: str, family: str, node: GaussianExpectation, library: HelperLibrary):
    """<f(x1) g(x2)> for one family: a table in (log S, log V) inside its range, the general
    helper `name` outside it (and where the table holds no number)."""
    factors = _factors(node)
    assert factors is not None  # _pair_family checked it
    f, g = factors
    suffix = _suffix(name)
    body = node.integrand.expr
    # the general helper's chain compiled when first needed (_chain*, printed by _mehler_2d),
    # or the general helper itself where it is the nested quadrature alone
    chain = f"_chain{suffix}"
    late, call = _late(chain if chain in library.functions else name, 3, library)
    if family == "s":
        build, pos, neg = _equal_tables(name, node, library)
        text = (
            f'@njit(cache=True, nogil=True, error_model="numpy", '
            f'fastmath=FASTMATH, inline="always")\n'
            f"def {name}s(k, k12):\n"
            f'    """<{body}> for (x1, x2) ~ N(0, [[k, k12], [k12, k]]): table in (log |k12|,\n'
            f'    log(k - |k12|)) (generated/quadrature.py), {name} outside it."""\n'
            "    s = abs(k12)\n"
            f"    value = pair_value(stored_table({pos}) if k12 > 0.0 else stored_table({neg}), s, k - s)\n"
            "    if value == value:\n"
            "        return value\n"
            f"    return {call}k, k, k12)"
        )
        return TextHelper(f"{name}s", text, (), (build, late))
    plain = _heat_table(f, library, smooth=False)
    heat_b = _heat_table(g, library, smooth=True)
    table = f"_PAIRW{suffix}"
    library.add(
        TextHelper(
            f"_pairw{suffix}",
            (
                f"def _pairw{suffix}():\n"
                f'    """Table of <{body}> at K12 = K11."""\n'
                f"    return pair_table(built({plain}), built({heat_b}), False)\n"
                f'\n\n{table} = table_ref("{_table_key("walk", f, g)}", _pairw{suffix})'
            ),
            (),
            (plain, heat_b),
        )
    )
    # The walk takes no step (kl == ke: the diagonal of every one-loop sum): x2 = x1, a
    # one-dimensional expectation <f g>, tabulated like the others (outside the pair table,
    # whose V starts at PAIR_V_LO, it would otherwise reach the general helper's fallbacks).
    x1 = variables(1)[0]
    diagonal = GaussianExpectation(sp.Lambda((x1,), f * g), sp.Symbol("k", real=True))
    same, requires = "", [f"_pairw{suffix}", late]
    if isinstance(diagonal, GaussianExpectation):
        single = helper_name(diagonal)
        library.add(_helper(single, diagonal, library))
        same, requires = f"    if v == 0.0:\n        return {single}(ke)\n", requires + [single]
    text = (
        f'@njit(cache=True, nogil=True, error_model="numpy", '
        f'fastmath=FASTMATH, inline="always")\n'
        f"def {name}w(ke, kl):\n"
        f'    """<{body}> for (x1, x2) ~ N(0, [[ke, ke], [ke, kl]]) (x2 = x1 + sqrt(kl - ke) z):\n'
        f'    table in (log ke, log(kl - ke)) (generated/quadrature.py), {name} outside it."""\n'
        "    v = kl - ke\n"
        f"{same}"
        f"    value = pair_value(stored_table({table}), ke, v)\n"
        "    if value == value:\n"
        "        return value\n"
        f"    return {call}ke, kl, ke)"
    )
    return TextHelper(f"{name}w", text, (), tuple(requires))
