"""The built-in activations beyond the package's four: derived closed forms against adaptive
quadrature, their derivatives against finite differences, and the mean-field kernel against
simulations of wide networks (one and two inputs, with bias).

Every closed form here was found by the derivation rules (Price chains, the Gaussian tilt,
Stein's lemma, the Cameron-Martin shift), none typed in; the references are numeric.
"""

import math

import mpmath
import numpy as np
import pytest
import sympy as sp
from helpers import max_abs_z, seed_of
from scipy import integrate

import fieldgen
from fieldgen.derivations import activations, closed_forms, model
from fieldgen.derivations.expectation import explicit_correlation, variables

CLOSED = [
    "gelu",
    "leaky_relu",
    "abrelu",
    "abs",
    "sign",
    "step",
    "sin",
    "cos",
    "exp",
    "gaussian",
    "quadratic",
    "cubic",
    "quartic",
    "erf2",
]
GENERIC = ["silu", "softplus", "sigmoid", "elu", "mish"]
# (K11, K22, c): unequal norms, every sign of the correlation, full correlation
POINTS = [
    (1.0, 1.0, 0.0),
    (0.7, 1.9, 0.5),
    (2.5, 0.4, -0.9),
    (1.3, 1.3, 1.0),
    (0.2, 3.0, 0.99),
    (1.1, 0.6, -1.0),
]


def test_presets_are_classified_as_derived():
    assert [n for n in CLOSED if closed_forms.pair_chain(n) is None] == []
    assert [n for n in GENERIC if closed_forms.pair_chain(n) is not None] == []


def _phi(name):
    (x,) = variables(1)
    expr = activations.get(name).expr.rewrite(sp.log)
    return sp.lambdify(
        x,
        expr,
        modules=[
            "math",
            {
                "Heaviside": lambda u, h0=0.5: 1.0 if u > 0 else (h0 if u == 0 else 0.0),
                "sign": lambda u: math.copysign(1.0, u) if u else 0.0,
            },
        ],
    )


def _kinks(name):
    return (
        [0.0]
        if activations.get(name).expr.has(sp.Max, sp.Min, sp.Abs, sp.sign, sp.Heaviside)
        else None
    )


def _quad(f, points=None):
    """int f(z) N(z) dz over the line, adaptively, split at the given points."""
    edges = [-40.0] + sorted(p for p in points or [] if -40.0 < p < 40.0) + [40.0]
    total = 0.0
    for a, b in zip(edges[:-1], edges[1:]):
        total += integrate.quad(
            lambda z: f(z) * math.exp(-z * z / 2) / math.sqrt(2 * math.pi),
            a,
            b,
            epsabs=1e-15,
            epsrel=1e-13,
            limit=400,
        )[0]
    return total


def pair_by_quadrature(name, k11, k22, k12):
    f = _phi(name)
    kinks = _kinks(name)
    s1 = math.sqrt(k11)
    c = k12 / s1
    s2 = math.sqrt(max(k22 - c * c, 0.0))

    def inner(z):
        m = c * z
        if s2 < 1e-12:
            return f(m)
        return _quad(lambda w: f(m + s2 * w), None if kinks is None else [-m / s2])

    return _quad(lambda z: f(s1 * z) * inner(z), kinks)


def _closed(name):
    forms = closed_forms.pair_chain(name)
    expr = explicit_correlation(forms.phiphi)
    return sp.lambdify(model.K, expr, modules="mpmath"), expr


@pytest.mark.parametrize("name", CLOSED)
def test_closed_form_pair_expectation_against_adaptive_quadrature(name):
    value, _ = _closed(name)
    for k11, k22, c in POINTS:
        k12 = c * math.sqrt(k11 * k22)
        with mpmath.workdps(30):
            exact = float(
                mpmath.re(
                    value(
                        mpmath.mpf(k11),
                        mpmath.mpf(k22),
                        mpmath.mpf(c) * mpmath.sqrt(mpmath.mpf(k11) * k22),
                    )
                )
            )
        numeric = pair_by_quadrature(name, k11, k22, k12)
        f, kinks = _phi(name), _kinks(name)
        scale = math.sqrt(
            _quad(lambda z: f(math.sqrt(k11) * z) ** 2, kinks)
            * _quad(lambda z: f(math.sqrt(k22) * z) ** 2, kinks)
        )
        assert abs(exact - numeric) <= 1e-10 * scale, (k11, k22, c, exact, numeric)


@pytest.mark.parametrize("name", CLOSED)
def test_closed_form_single_and_mean_against_adaptive_quadrature(name):
    (x,) = variables(1)
    P = closed_forms.single_expectation(name, model.K1)
    m = closed_forms.mean(name, model.K1)
    f, kinks = _phi(name), _kinks(name)
    for K in (1e-2, 0.3, 1.0, 4.0, 25.0):
        s = math.sqrt(K)
        P_num = _quad(lambda z: f(s * z) ** 2, kinks)
        m_num = _quad(lambda z: f(s * z), kinks)
        P_val = float(sp.N(P.subs(model.K1, K), 30))
        m_val = float(sp.N(m.subs(model.K1, K), 30))
        assert abs(P_val - P_num) <= 1e-10 * abs(P_num), (K, P_val, P_num)
        assert abs(m_val - m_num) <= 1e-10 * max(abs(m_num), math.sqrt(P_num)), (K, m_val, m_num)


@pytest.mark.parametrize("name", CLOSED)
def test_first_and_second_derivatives_against_finite_differences(name):
    """dP12/dK_s and d2P12/dK_s dK_t of the closed form (what response and one loop use) against
    central differences of its values, in 40-digit arithmetic."""
    _, expr = _closed(name)
    grad = [sp.diff(expr, k) for k in model.K]
    f = sp.lambdify(model.K, expr, modules="mpmath")
    g = [sp.lambdify(model.K, d, modules="mpmath") for d in grad]
    h = sp.lambdify(model.K, sp.diff(grad[2], model.K[2]), modules="mpmath")
    with mpmath.workdps(40):
        for k11, k22, c in POINTS:
            if abs(c) == 1.0:
                continue  # the boundary: one-sided; checked inside the cone
            p = [mpmath.mpf(k11), mpmath.mpf(k22), mpmath.mpf(c) * mpmath.sqrt(k11 * k22)]
            step = mpmath.mpf(10) ** -12
            for s in range(3):
                up, down = list(p), list(p)
                up[s] += step
                down[s] -= step
                fd = (f(*up) - f(*down)) / (2 * step)
                assert abs(g[s](*p) - fd) <= mpmath.mpf(10) ** -12 * (1 + abs(fd)), (name, s)
            up, down = list(p), list(p)
            up[2] += step
            down[2] -= step
            fd2 = (g[2](*up) - g[2](*down)) / (2 * step)
            assert abs(h(*p) - fd2) <= mpmath.mpf(10) ** -12 * (1 + abs(fd2))


@pytest.mark.parametrize("name", ["gelu", "sin", "gaussian"])
def test_price_derivative_equals_the_expectation_of_derivatives(name):
    """dP12/dK12 = <phi'(h1) phi'(h2)> (Price's theorem), the derivative against quadrature."""
    _, expr = _closed(name)
    d = sp.lambdify(model.K, sp.diff(expr, model.K[2]), modules="mpmath")
    (x,) = variables(1)
    dphi = sp.lambdify(x, sp.diff(activations.get(name).expr, x), modules="math")
    for k11, k22, c in POINTS[:3]:
        k12 = c * math.sqrt(k11 * k22)
        s1 = math.sqrt(k11)
        cc = k12 / s1
        s2 = math.sqrt(k22 - cc * cc)
        numeric = _quad(lambda z: dphi(s1 * z) * _quad(lambda w: dphi(cc * z + s2 * w)))
        with mpmath.workdps(30):
            exact = float(d(mpmath.mpf(k11), mpmath.mpf(k22), mpmath.mpf(k12)))
        assert abs(exact - numeric) <= 1e-10 * (1 + abs(numeric))


# ---- generated code against the simulation of wide networks ---------------------------------

WIDE = dict(width=2048, samples=200, method="walk")
CASE = dict(r=0.5, sigma_w2=1.2, depth=5, sigma_b2=0.1)
K0_PAIR = np.array([[1.0, 0.4], [0.4, 1.5]])
FAST = ["gelu", "leaky_relu", "sin", "silu"]


# Polynomials and exp grow the kernel like a power or an exponential of itself: at CASE the
# finite-width fluctuations are heavy-tailed and the O(1/N) shift is several standard errors (x^4
# overflows). A shallower, smaller-r case keeps them in the regime the 4 s.e. test assumes.
MILD = dict(r=0.2, sigma_w2=1.0, depth=3, sigma_b2=0.05)
GROWING = {"quadratic", "cubic", "quartic", "exp"}


def _kernel_against_simulation(name, K0):
    a = fieldgen.activation(name)
    kw = dict(
        MILD if name in GROWING else CASE, K0=K0 if name not in GROWING else 0.5 * np.asarray(K0)
    )
    Khat = fieldgen.simulate(a, seed=seed_of(name, np.ndim(K0)), **WIDE, **kw)
    return max_abs_z(Khat, fieldgen.kernel(a, **kw)), Khat


@pytest.mark.parametrize("K0", [1.2, K0_PAIR], ids=["one-input", "two-inputs"])
@pytest.mark.parametrize("name", FAST)
def test_kernel_against_simulation(name, K0):
    z, _ = _kernel_against_simulation(name, K0)
    assert z < 4


def test_negative_control_wrong_activation_is_rejected():
    """The same simulation against the kernel of a nearby activation (relu instead of GELU)."""
    kw = dict(CASE, K0=K0_PAIR)
    Khat = fieldgen.simulate(fieldgen.activation("gelu"), seed=seed_of("gelu", 2), **WIDE, **kw)
    assert max_abs_z(Khat, fieldgen.kernel("relu", **kw)) > 10


@pytest.mark.slow
@pytest.mark.parametrize("K0", [1.2, K0_PAIR], ids=["one-input", "two-inputs"])
@pytest.mark.parametrize("name", sorted(set(CLOSED + GENERIC) - set(FAST)))
def test_kernel_against_simulation_every_preset(name, K0):
    z, _ = _kernel_against_simulation(name, K0)
    assert z < 4


# ---- one loop against simulation: the two modern activations ---------------------------------


@pytest.mark.parametrize("K0", [1.0, np.array([[1.0, 0.5], [0.5, 1.0]])], ids=["single", "pair"])
@pytest.mark.parametrize("name", ["gelu", "silu"])
def test_one_loop_covariance_against_simulation(name, K0):
    """N Var(Khat^L) and N Cov(Khat^L, Khat^{L/2}) from simulations at widths 64-512 extrapolated
    in 1/N, against kernel_covariance (4 standard errors), as test_one_loop does for relu/erf."""
    from test_one_loop import _simulated

    a = fieldgen.activation(name)
    kw = dict(r=0.5, sigma_w2=1.5, depth=8, K0=K0, sigma_b2=0.1)
    L = kw["depth"]
    theory = fieldgen.kernel_covariance(a, **kw)
    if np.ndim(K0):
        from fieldgen.pairs import to_pairs

        theory = to_pairs(theory, groups=2)  # (L+1, L+1, 3, 3) over (layer, pair)
    cases = [((0, 0), 0)] if np.ndim(K0) == 0 else [((0, 0), 0), ((0, 1), 2)]
    for entry, p in cases:
        sim = _simulated(a, [64, 128, 256, 512], [3000] * 4, kw, seed=seed_of(name, p), entry=entry)
        for key, th in (("var", theory[L, L]), ("cov", theory[L, L // 2])):
            est, se = sim[key]
            value = th if np.ndim(K0) == 0 else th[p, p]
            assert abs(est - value) < 4 * se, (key, entry, est, se, value)


# ---- every public function takes a preset ---------------------------------------------------


def _every_public_function(name):
    """Each public function once, on the preset; finite results of the documented shapes, and
    the identities that hold for any activation: S(r = 0) = 1 and kernel_covariance symmetric."""
    a = fieldgen.activation(name)
    # Growing activations (exp, polynomials) leave float64 within a few layers at K ~ 1: the
    # kernel raises OverflowError there (tests/test_edges.py); they get small inputs.
    k0 = 0.2 if name in GROWING else 1.0
    pair = np.array([[1.0, 0.3], [0.3, 1.4]]) * k0
    r_hi, r_mid = (0.2, 0.1) if name in GROWING else (0.4, 0.3)
    K = fieldgen.kernel(a, r=[0.1, r_hi], sigma_w2=1.2, depth=6, K0=pair, sigma_b2=0.05)
    assert K.shape == (2, 7, 2, 2) and np.isfinite(K).all()
    Kr = fieldgen.kernel(a, r=r_mid, sigma_w2=1.2, depth=6, K0=k0, block="reduced")
    assert Kr.shape == (7,) and np.isfinite(Kr).all()
    sim = fieldgen.simulate(a, r=r_mid, sigma_w2=1.2, depth=3, K0=pair, width=32, samples=4, seed=1)
    assert sim.shape == (4, 4, 2, 2) and np.isfinite(sim).all()
    chi = fieldgen.response(a, r=r_mid, sigma_w2=1.2, depth=6, K0=pair)
    assert np.isfinite(chi).all()
    S = fieldgen.sensitivity(a, r=[0.0, r_mid], sigma_w2=1.2, depth=6, c0=0.5, K0=k0)
    assert S[0] == pytest.approx(1.0, abs=1e-12) and np.isfinite(S).all()
    best = fieldgen.optimal_r(a, sigma_w2=1.2, depth=20, c0=0.9, K0=k0)
    assert best.message or np.isfinite(best.r_star)
    if name == "step":
        # step' = delta: the one loop's self-feedback needs step(0) delta(0), which is undefined
        # (docs/activations.md, "Limits"); the derivation says so instead of printing nonsense.
        with pytest.raises(ValueError, match="not defined"):
            fieldgen.kernel_covariance(a, r=r_mid, sigma_w2=1.2, depth=4, K0=k0)
        return
    C = fieldgen.kernel_covariance(a, r=r_mid, sigma_w2=1.2, depth=4, K0=k0)
    assert C.shape[:2] == (5, 5) and np.isfinite(C).all()
    np.testing.assert_allclose(C, np.swapaxes(C, 0, 1), rtol=1e-12, atol=1e-14)
    shift = fieldgen.kernel_mean_shift(a, r=r_mid, sigma_w2=1.2, depth=4, K0=k0)
    assert np.isfinite(shift).all()
    if name in ("sign", "step"):
        # Their derivative is a point mass: the reduced block's NTK needs <delta(z)^2>, infinite.
        with pytest.raises(OverflowError, match="layer 1"):
            fieldgen.ntk(a, r=r_mid, sigma_w2=1.2, depth=3, K0=pair, block="reduced")
    else:
        theta = fieldgen.ntk(a, r=r_mid, sigma_w2=1.2, depth=3, K0=pair, block="reduced")
        assert theta.shape == (4, 2, 2) and np.isfinite(theta).all()
    assert "\\begin{align*}" in fieldgen.latex(a)


@pytest.mark.parametrize("name", ["leaky_relu", "silu"])
def test_every_public_function_takes_a_preset(name):
    _every_public_function(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(set(CLOSED + GENERIC) - {"leaky_relu", "silu"}))
def test_every_public_function_takes_every_preset(name):
    _every_public_function(name)


def _sensitivity_and_differences(name, r, c0, **kw):
    a = fieldgen.activation(name)
    sens = fieldgen.sensitivity(a, r=[r], c0=c0, **kw)[0]

    def c_out(c):
        K = fieldgen.kernel(a, r=r, K0=np.array([[1.0, c], [c, 1.0]]), **kw)[-1]
        return K[0, 1] / np.sqrt(K[0, 0] * K[1, 1])

    h = 1e-5
    return sens, (c_out(c0 + h) - c_out(c0 - h)) / (2 * h)


@pytest.mark.parametrize("name", ["abrelu", "elu"])
def test_sensitivity_of_kinked_presets_against_finite_differences(name):
    """S = dc^L/dc^0 against central differences of the mean-field kernel. Kinks make the
    sensitivity's Price derivatives expectations of delta'(x1) g(x2) (integrated by parts)."""
    sens, differences = _sensitivity_and_differences(
        name, 0.4, 0.5, sigma_w2=1.3, depth=8, sigma_b2=0.1
    )
    assert sens == pytest.approx(differences, rel=1e-8)


def test_elu_sensitivity_at_larger_kernels():
    """ELU at K ~ 15 (depth 20): its derivatives' expectations, written term by term, cancel
    from exp(2K) ~ 1e13 (the sensitivity came out as 1e34); folded back into one integrand per
    expectation (fieldgen/codegen/folding.py) they stay of order one. Negative control: the
    differences at a neighbouring r differ by far more than the tolerance."""
    kw = dict(sigma_w2=1.2, depth=20)
    sens, differences = _sensitivity_and_differences("elu", 0.45, 0.9, **kw)
    K = fieldgen.kernel("elu", r=0.45, K0=1.0, **kw)[-1]
    assert K > 12
    assert sens == pytest.approx(differences, rel=1e-8)
    _, elsewhere = _sensitivity_and_differences("elu", 0.4, 0.9, **kw)
    assert sens != pytest.approx(elsewhere, rel=1e-6)
