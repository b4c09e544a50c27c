"""The generic path for expectations without a closed form (codegen/quadrature.py) against SciPy's
adaptive quadrature: Chebyshev tables in log K (one dimension), Mehler's series from tabulated
Hermite coefficients with its quadrature fallback (two dimensions), and the two-point tables in
(log S, log V) of the equal-variance and walk families (K11 = K22, K12 = K11) near |rho| = 1.

Helpers are lowered from hand-made GaussianExpectation nodes for several activations, including a
kinked one (elu: phi'' jumps at 0), written into a temporary package next to the rule module, and
compared for the integrand kinds the Jacobians and Hessians use (phi, phi', phi'' factors) at
K in [1e-4, 1e4] and correlations up to +-1. The activations and their derivatives on the SciPy
side are written by hand, independently of SymPy.

Errors are measured relative to sqrt(<f^2> <g^2>) (Cauchy-Schwarz bound of |<f g>|): the
expectation itself can cross zero (rho = 0, or phi phi'' changing sign with K), where a relative
error has no meaning.
"""

import hashlib
import importlib
import math
import sys
from pathlib import Path

import pytest
import sympy as sp

from fieldgen.codegen.builders import scalar_function
from fieldgen.codegen.module import ModuleSpec, render
from fieldgen.codegen.quadrature import rule_module_source
from fieldgen.derivations.distributions import derivative
from fieldgen.derivations.expectation import expect, variables

integrate = pytest.importorskip("scipy.integrate")

X = variables(1)[0]
# Numerically stable forms (each branch free of overflow at |x| up to 1e4).
SYMBOLIC = {
    "tanh": sp.tanh(X),
    "silu": sp.Piecewise((X / (1 + sp.exp(-X)), X >= 0), (X * sp.exp(X) / (1 + sp.exp(X)), True)),
    "softplus": sp.Piecewise((X + sp.log(1 + sp.exp(-X)), X >= 0), (sp.log(1 + sp.exp(X)), True)),
    "elu": sp.Piecewise((X, X > 0), (sp.exp(X) - 1, True)),
}


def _sigmoid(x):
    return 1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))


# (phi, phi', phi'') by hand.
NUMERIC = {
    "tanh": (
        math.tanh,
        lambda x: 1 - math.tanh(x) ** 2,
        lambda x: -2 * math.tanh(x) * (1 - math.tanh(x) ** 2),
    ),
    "silu": (
        lambda x: x * _sigmoid(x),
        lambda x: _sigmoid(x) * (1 + x * (1 - _sigmoid(x))),
        lambda x: _sigmoid(x) * (1 - _sigmoid(x)) * (2 + x * (1 - 2 * _sigmoid(x))),
    ),
    "softplus": (
        lambda x: max(x, 0.0) + math.log1p(math.exp(-abs(x))),
        _sigmoid,
        lambda x: _sigmoid(x) * (1 - _sigmoid(x)),
    ),
    "elu": (
        lambda x: x if x > 0 else math.expm1(x),
        lambda x: 1.0 if x > 0 else math.exp(x),
        lambda x: 0.0 if x > 0 else math.exp(x),
    ),
}
# Integrand kinds: one dimension (derivative orders a, b of phi^(a) phi^(b)), two dimensions
# (phi^(a)(x1) phi^(b)(x2)); they are the factors of P, its Jacobian and its Hessian.
KINDS_1D = [(0, 0), (1, 1), (0, 2)]
KINDS_2D = [(0, 0), (1, 1), (2, 0), (2, 2)]
VARIANCES = [1e-4, 1e-2, 1.0, 1e2, 1e4]
# SymPy expands the derivatives of silu and softplus into quotients of exponentials that overflow
# to inf/inf beyond |x| ~ 700, reached inside the rule for K >~ 1e3 (an issue of the printed
# expression, not of the rule): these two are checked up to K = 1e2.
MAX_VARIANCE = {"silu": 1e2, "softplus": 1e2}
CORRELATIONS = [-1.0, -0.9999, -0.7, 0.0, 0.3, 0.95, 0.999999, 1.0]
TOL = 1e-9
# Activations whose modules also carry the family helpers eq_<a><b>(k, k12) (K11 = K22 = k) and
# walk_<a><b>(ke, kl) (K12 = K11 = ke), i.e. two-point tables.
FAMILIES = ("tanh", "elu", "silu")


@pytest.fixture(scope="module")
def helpers(tmp_path_factory):
    """name -> generated module with single_<a><b>(k) and pair_<a><b>(k11, k22, k12)."""
    folder = tmp_path_factory.mktemp("generic_path")
    out = {}
    for name, phi in SYMBOLIC.items():
        package = f"generic_path_{name}"
        (folder / package).mkdir()
        (folder / package / "__init__.py").write_text("")
        (folder / package / "quadrature.py").write_text(rule_module_source())
        spec = ModuleSpec("helpers", f"generic-path helpers of {name}", integrity_check=False)
        d = [derivative(phi, X, n) for n in range(3)]
        x1, x2 = variables(2)
        k, k11, k22, k12 = sp.symbols("k k11 k22 k12", real=True)
        for a, b in KINDS_1D:
            spec.functions.append(
                scalar_function(
                    f"single_{a}{b}", (k,), [expect(d[a] * d[b], (k,))], "", spec.library
                )
            )
        for a, b in KINDS_2D:
            body = d[a].xreplace({X: x1}) * d[b].xreplace({X: x2})
            spec.functions.append(
                scalar_function(
                    f"pair_{a}{b}",
                    (k11, k22, k12),
                    [expect(body, (k11, k22, k12))],
                    "",
                    spec.library,
                )
            )
            if name in FAMILIES:
                ke, kl = sp.symbols("ke kl", real=True)
                spec.functions.append(
                    scalar_function(
                        f"eq_{a}{b}", (k, k12), [expect(body, (k, k, k12))], "", spec.library
                    )
                )
                spec.functions.append(
                    scalar_function(
                        f"walk_{a}{b}", (ke, kl), [expect(body, (ke, kl, ke))], "", spec.library
                    )
                )
        (folder / package / "helpers.py").write_text(render(spec))
        sys.path.insert(0, str(folder))
        try:
            out[name] = importlib.import_module(f"{package}.helpers")
        finally:
            sys.path.remove(str(folder))
    return out


def _quad(f, cuts):
    return sum(
        integrate.quad(f, a, b, epsabs=1e-16, epsrel=1e-12, limit=500)[0]
        for a, b in zip(cuts, cuts[1:])
    )


def _density(z):
    return math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)


def _cuts(center, scale, width=14.0):
    """Breakpoints at the feature (center, on scale `scale`) and on both sides of it."""
    pts = {-width, width}
    for d in (0, 1, 4, 16, 64, 256):
        for sign in (-1, 1):
            pts.add(min(max(center + sign * d * scale, -width), width))
    return sorted(pts)


def expect_1d(f, K):
    s = math.sqrt(K)
    return _quad(lambda z: f(s * z) * _density(z), _cuts(0.0, min(1.0, 1.0 / s)))


def expect_2d(f, g, k11, k22, k12):
    """<f(x1) g(x2)> by nested adaptive quadrature, split where x1 and x2 cross zero."""
    s1 = math.sqrt(k11)
    c = k12 / s1
    # |rho| = 1 up to rounding: no conditional variance (sqrt of a rounding residue would smooth)
    s2 = math.sqrt(k22 - c * c) if k22 - c * c > 1e-15 * k22 else 0.0

    def inner(z1):
        m = c * z1
        if s2 < 1e-300:
            return g(m)
        return _quad(lambda z2: g(m + s2 * z2) * _density(z2), _cuts(-m / s2, min(1.0, 1.0 / s2)))

    # breakpoints on the smallest scale in z1: of f, of the inner integral (a function of c z1
    # smoothed over s2, with a kink smoothed over s2 only)
    scale = min(1.0, 1.0 / s1, max(1.0, s2) / abs(c) if c else 1.0, s2 / abs(c) if c else 1.0)
    return _quad(lambda z1: f(s1 * z1) * inner(z1) * _density(z1), _cuts(0.0, max(scale, 1e-9)))


@pytest.mark.parametrize("name", list(SYMBOLIC))
@pytest.mark.parametrize("kind", KINDS_1D)
def test_one_dimensional_tables(helpers, name, kind):
    a, b = kind
    fa, fb = NUMERIC[name][a], NUMERIC[name][b]
    fn = getattr(helpers[name], f"single_{a}{b}")
    top = MAX_VARIANCE.get(name, 3e5)
    for K in [k for k in VARIANCES + [3e-6, 3e5] if k <= top]:  # 3e-6, 3e5: outside the table
        want = expect_1d(lambda x: fa(x) * fb(x), K)
        scale = math.sqrt(expect_1d(lambda x: fa(x) ** 2, K) * expect_1d(lambda x: fb(x) ** 2, K))
        assert abs(fn(K) - want) <= TOL * scale, (name, kind, K, fn(K), want)


def _pair_cases(slow):
    if not slow:
        # a spread over variances, norm ratios and correlations (Mehler, fallback, boundaries)
        return [
            (1e-4, 1.0, 1.0),
            (1e-2, 2.5, -0.7),
            (1.0, 1.0, 0.3),
            (1.0, 2.5, 0.999999),
            (1e2, 1.0, -1.0),
            (1e2, 2.5, 0.95),
            (1e4, 1.0, 0.5),
            (1e4, 2.5, -0.9999),
        ]
    # equal norms (the sensitivity's case) and unequal ones
    return [(k, ratio, rho) for k in VARIANCES for ratio in (1.0, 2.5) for rho in CORRELATIONS]


def _check_pairs(helpers, name, kind, cases):
    a, b = kind
    fa, fb = NUMERIC[name][a], NUMERIC[name][b]
    fn = getattr(helpers[name], f"pair_{a}{b}")
    worst = 0.0
    for K, ratio, rho in cases:
        if MAX_VARIANCE.get(name, math.inf) < K:
            continue
        k11, k22 = K, ratio * K
        k12 = rho * math.sqrt(k11 * k22)
        want = expect_2d(fa, fb, k11, k22, k12)
        scale = math.sqrt(
            expect_1d(lambda x: fa(x) ** 2, k11) * expect_1d(lambda x: fb(x) ** 2, k22)
        )
        err = abs(fn(k11, k22, k12) - want) / scale
        worst = max(worst, err)
        assert err <= TOL, (name, kind, K, ratio, rho, fn(k11, k22, k12), want)
    return worst


@pytest.mark.parametrize("kind", KINDS_2D)
def test_two_dimensional_mehler_and_fallback(helpers, kind):
    _check_pairs(helpers, "tanh", kind, _pair_cases(slow=False))


@pytest.mark.parametrize("kind", KINDS_2D)
def test_two_dimensional_kinked_in_the_mehler_regime(helpers, kind):
    _check_pairs(helpers, "elu", kind, [(1e-2, 2.5, -0.7), (1.0, 1.0, 0.3), (1e4, 1.0, 0.2)])


@pytest.mark.parametrize("kind", KINDS_2D)
def test_two_dimensional_kinked_near_the_diagonal(helpers, kind):
    """The nested rule's outer panels start on the scale s2/|c| of the inner integral's smoothed
    kink (elu's phi'' jumps at 0)."""
    _check_pairs(
        helpers,
        "elu",
        kind,
        [(1.0, 2.5, 0.999999), (1.0, 1.0, -0.9999), (1e-4, 1.0, -0.9999), (1e2, 2.5, 1.0)],
    )


@pytest.mark.slow
@pytest.mark.parametrize("name", ["tanh", "silu", "softplus"])
@pytest.mark.parametrize("kind", KINDS_2D)
def test_two_dimensional_full_grid(helpers, name, kind):
    _check_pairs(helpers, name, kind, _pair_cases(slow=True))


@pytest.mark.parametrize("name", ["silu", "softplus"])
def test_two_dimensional_smooth_activations(helpers, name):
    _check_pairs(helpers, name, (0, 0), _pair_cases(slow=False))
    _check_pairs(helpers, name, (1, 1), [(1.0, 1.0, 0.5), (1e2, 2.5, -0.999999), (1e-4, 1.0, 1.0)])
    _check_pairs(helpers, name, (2, 0), [(1e-2, 1.0, -0.3), (10.0, 2.5, 0.99)])


def test_generated_tanh_modules_use_the_tables():
    """The regenerated tanh modules carry table-backed helpers (and agree with the exact rule)."""
    from fieldgen.generated import module

    gen = module("gauss", "tanh")
    source = Path(gen.__file__).read_text()
    assert "table_value(" in source and "mehler_sum(" in source
    for K in (1e-4, 1.0, 1e4):
        want = expect_1d(lambda x: math.tanh(x) ** 2, K)
        assert gen.expect_single(K) == pytest.approx(want, rel=TOL)
    k11, k22, rho = 0.7, 0.4, 0.6
    k12 = rho * math.sqrt(k11 * k22)
    want = expect_2d(math.tanh, math.tanh, k11, k22, k12)
    assert gen.expect_pair(k11, k22, k12)[2] == pytest.approx(want, rel=TOL)


def test_mehler_tail_bound_rejects_truncation():
    """Negative control: the truncated series alone (no fallback) is wrong near the diagonal at
    large K by far more than the tolerance, so the bound must send those points to quadrature."""
    from fieldgen.generated import gauss_tanh
    from fieldgen.generated import quadrature as q

    tables = [q.stored_table(v) for n, v in vars(gauss_tanh).items() if n.startswith("_HERMITE_")]
    assert tables
    table = tables[0]
    k = 100.0
    assert math.isnan(q.mehler_sum(table, table, k, k, 0.999 * k))
    # and it is accepted where the series converges
    assert not math.isnan(q.mehler_sum(table, table, 0.05, 0.05, 0.5 * 0.05))


# ---- Two-point tables: equal variances and the walk -----------------------------------------

# (K, rho) for eq_<a><b>: the table's corners and |rho| = 1 - 1e-12 (outside its V range: the
# general helper) and exactly 1.
EQUAL_CASES = [
    (1e-4, 0.999),
    (1e-4, -1.0),
    (1.0, 0.5),
    (1.0, -0.999999),
    (1.0, 1.0 - 1e-12),
    (30.0, 0.99),
    (1e4, -0.9999),
    (1e4, 0.999999999),
]
# (Ke, Kl / Ke - 1) for walk_<a><b>: rho = (Kl / Ke)^(-1/2) from 1 down to 1/2.
WALK_CASES = [(1e-4, 1e-3), (1.0, 0.0), (1.0, 1e-12), (1.0, 0.03), (5.0, 3.0), (1e4, 1e-6)]


def _check_family(helpers, name, kind, equal, walk):
    a, b = kind
    fa, fb = NUMERIC[name][a], NUMERIC[name][b]
    module = helpers[name]
    worst = 0.0
    for K, rho in equal:
        want = expect_2d(fa, fb, K, K, rho * K)
        scale = math.sqrt(expect_1d(lambda x: fa(x) ** 2, K) * expect_1d(lambda x: fb(x) ** 2, K))
        got = getattr(module, f"eq_{a}{b}")(K, rho * K)
        worst = max(worst, abs(got - want) / scale)
        assert abs(got - want) <= TOL * scale, (name, kind, K, rho, got, want)
    for ke, dk in walk:
        kl = ke * (1.0 + dk)
        want = expect_2d(fa, fb, ke, kl, ke)
        scale = math.sqrt(expect_1d(lambda x: fa(x) ** 2, ke) * expect_1d(lambda x: fb(x) ** 2, kl))
        got = getattr(module, f"walk_{a}{b}")(ke, kl)
        worst = max(worst, abs(got - want) / scale)
        assert abs(got - want) <= TOL * scale, (name, kind, ke, kl, got, want)
    return worst


@pytest.mark.parametrize("name", ["tanh", "elu"])
@pytest.mark.parametrize("kind", KINDS_2D)
def test_two_point_tables(helpers, name, kind):
    """eq_* and walk_* (tables inside their range, the general helper outside) against adaptive
    quadrature at |rho| -> 1, K from 1e-4 to 1e4; kinds (1, 1), (2, 0), (2, 2) are the
    derivatives of (0, 0) (Price) used by the Jacobians and Hessians."""
    _check_family(helpers, name, kind, EQUAL_CASES, WALK_CASES)


def test_two_point_tables_smooth_growing(helpers):
    _check_family(helpers, "silu", (0, 0), EQUAL_CASES[2:], WALK_CASES)
    _check_family(helpers, "silu", (1, 1), [(30.0, -0.99), (1.0, 0.999999)], [(1.0, 0.03)])


@pytest.mark.slow
@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("kind", KINDS_2D)
def test_two_point_tables_full_grid(helpers, name, kind):
    top = MAX_VARIANCE.get(name, math.inf)
    rhos = [-1.0, -0.999999, -0.99, -0.5, 0.1, 0.7, 0.9999, 1.0 - 1e-9, 1.0]
    equal = [(k, rho) for k in VARIANCES if k <= top for rho in rhos]
    walk = [(k, dk) for k in VARIANCES if k <= top for dk in (0.0, 1e-9, 1e-4, 0.1, 3.0)]
    _check_family(helpers, name, kind, equal, walk)


def test_two_point_tables_are_used_and_checked(helpers):
    """The family helpers read their tables inside the range (they differ from the general
    helper by rounding, not bit for bit), and the check above rejects a wrong table: the
    negative-correlation table used at rho > 0 (negative control)."""
    module = helpers["tanh"]
    q = sys.modules[module.__name__.rsplit(".", 1)[0] + ".quadrature"]
    K, rho = 30.0, 0.99
    table_pos = [q.stored_table(v) for n, v in vars(module).items() if n.startswith("_PAIRS_POS")]
    table_neg = [q.stored_table(v) for n, v in vars(module).items() if n.startswith("_PAIRS_NEG")]
    assert table_pos and table_neg
    want = expect_2d(math.tanh, math.tanh, K, K, rho * K)
    scale = expect_1d(lambda x: math.tanh(x) ** 2, K)
    s, v = rho * K, K - rho * K
    values = [q.pair_value(t, s, v) for t in table_pos]
    assert any(abs(x - want) <= TOL * scale for x in values)
    assert module.eq_00(K, rho * K) != module.pair_00(K, K, rho * K)
    assert all(abs(q.pair_value(t, s, v) - want) > 1e3 * TOL * scale for t in table_neg)


@pytest.mark.parametrize(("name", "kind"), [("tanh", (0, 0)), ("tanh", (1, 1)), ("silu", (0, 0))])
def test_tables_at_large_variances(helpers, name, kind):
    """Relu-like kernels grow like exp(depth) (silu: K ~ 1e28 at depth 1000, r = 0.3); the tables
    reach K = exp(70), the two-point ones on the band of V/S near the diagonal, where the nested
    rule they replace costs ~1 ms a call."""
    a, b = kind
    fa, fb = NUMERIC[name][a], NUMERIC[name][b]
    single = getattr(helpers[name], f"single_{a}{b}")
    for K in (1e8, 1e20, 1e28):
        want = expect_1d(lambda x: fa(x) * fb(x), K)
        scale = math.sqrt(expect_1d(lambda x: fa(x) ** 2, K) * expect_1d(lambda x: fb(x) ** 2, K))
        assert abs(single(K) - want) <= TOL * scale, (name, kind, K, single(K), want)
    if name == "silu":  # relu-like: the kernels that grow this far
        equal, walk = [(1e20, 0.999), (1e28, 0.5), (1e12, -0.99)], [(1e20, 0.1), (1e28, 1e-6)]
    else:  # a step-like factor smoothed over V > 1e12 is not resolved yet (docs/activations.md)
        equal, walk = [(1e12, 0.999), (1e8, -0.99)], [(1e12, 0.1), (1e8, 3.0)]
    _check_family(helpers, name, kind, equal, walk)


# ---- Two-point tables in the general helper: unequal norms (tables in t) ------------------------

# (K11, K22 / K11, rho) for a symmetric pair_00 of a growing activation near the diagonal: equal
# norms (the equal-variance table, chosen at run time), unequal ones inside t = sqrt(K22 / K11) <=
# 2 (either order), large K, and outside the tables (t > 2, rho < 0, rho = 1): Mehler or the rule.
UNEQUAL_CASES = [
    (1.0, 1.0, 0.9999),
    (1e4, 1.0, 0.999),
    (1.0, 1.3, 0.999999),
    (30.0, 1.3, 0.99),
    (1e4, 1.3, 0.9999),
    (1e-2, 2.0, 0.999),
    (1e2, 3.9, 0.95),
    (1e3, 1 / 1.3, 0.9),
    (1e8, 1.3, 0.999),
    (10.0, 9.0, 0.9),
    (10.0, 1.3, -0.99),
    (1e2, 1.3, 1.0),
]


@pytest.mark.parametrize("name", ["silu", "softplus", "elu"])
def test_two_point_tables_unequal_norms(helpers, name):
    """The general helper of <phi(x1) phi(x2)> (the two-input mean field) near |rho| = 1 at
    unequal norms and large K, against adaptive quadrature (elu: kinked, the tables smooth its
    kink at 0 like the equal-variance ones)."""
    f = NUMERIC[name][0]
    fn = helpers[name].pair_00
    for K, ratio, rho in UNEQUAL_CASES:  # phi itself is stable at every K (MAX_VARIANCE: phi'')
        k11, k22 = K, ratio * K
        k12 = rho * math.sqrt(k11 * k22)
        want = expect_2d(f, f, k11, k22, k12)
        scale = math.sqrt(expect_1d(lambda x: f(x) ** 2, k11) * expect_1d(lambda x: f(x) ** 2, k22))
        got = fn(k11, k22, k12)
        assert abs(got - want) <= TOL * scale, (name, K, ratio, rho, got, want)


def test_two_point_tables_in_t_are_used_and_checked(helpers):
    """pair_00 of silu at unequal norms returns the tables in t (bit for bit), and the comparison
    rejects a wrong table: the value at t = 1 (the equal-variance frame without the scaling of
    x2) is far off (negative control)."""
    module = helpers["silu"]
    q = sys.modules[module.__name__.rsplit(".", 1)[0] + ".quadrature"]
    (table,) = [q.stored_table(v) for n, v in vars(module).items() if n.startswith("_PAIRT")]
    f = NUMERIC["silu"][0]
    k11, k22, rho = 30.0, 39.0, 0.99
    k12 = rho * math.sqrt(k11 * k22)
    want = expect_2d(f, f, k11, k22, k12)
    scale = math.sqrt(expect_1d(lambda x: f(x) ** 2, k11) * expect_1d(lambda x: f(x) ** 2, k22))
    t = math.sqrt(k22 / k11)
    s, v = k12 / t, k11 - k12 / t
    assert abs(q.pair_value_t(table, s, v, t) - want) <= TOL * scale
    assert module.pair_00(k11, k22, k12) == q.pair_value_t(table, s, v, t)
    assert abs(q.pair_value_t(table, s, v, 1.0) - want) > 1e3 * TOL * scale


def test_mehler_accepted_for_growing_activations(helpers):
    """The tail bound's round-off allowance is relative to the local <f^2>: with the largest
    <f^2> of the table (silu at K = e^70, ~1e30) it rejected every point of a growing activation,
    which then always paid for the nested rule. Mehler's series is accepted, and right, at
    moderate correlations; near the diagonal at large K it is still rejected (control)."""
    module = helpers["silu"]
    q = sys.modules[module.__name__.rsplit(".", 1)[0] + ".quadrature"]
    f = NUMERIC["silu"][0]
    x1 = variables(1)[0]
    phi = SYMBOLIC["silu"].xreplace({X: x1})
    digest = hashlib.sha256(sp.srepr(sp.Lambda(x1, phi)).encode()).hexdigest()[:12]
    table = q.stored_table(getattr(module, f"_HERMITE_{digest}"))
    for k11, k22, rho in [(1.0, 1.3, 0.5), (1e2, 1.0, -0.3), (1e4, 2.5, 0.6)]:
        k12 = rho * math.sqrt(k11 * k22)
        got = q.mehler_sum(table, table, k11, k22, k12)
        want = expect_2d(f, f, k11, k22, k12)
        scale = math.sqrt(expect_1d(lambda x: f(x) ** 2, k11) * expect_1d(lambda x: f(x) ** 2, k22))
        assert abs(got - want) <= TOL * scale, (k11, k22, rho, got, want)
    assert math.isnan(q.mehler_sum(table, table, 1e2, 1.3e2, 0.99 * math.sqrt(1.3) * 1e2))
