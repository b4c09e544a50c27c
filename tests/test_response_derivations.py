"""The symbolic layer of the response: per-layer Jacobian, tangent sparsity, continuum flow,
optimum condition, first-order correction and the saturated limit, against the formulas of docs/theory
and textbook results."""

import math

import pytest
import sympy as sp

from fieldgen.derivations import continuum, gauss, model, response, saturated
from fieldgen.derivations.expectation import explicit_correlation, variables

K11, K22, K12 = model.K
x1, x2 = variables(2)


def _same(a, b, points=3):
    """Equal as functions: exact simplification, else agreement at random kernels (closed forms
    contain clamped correlations that simplify poorly)."""
    diff = explicit_correlation(sp.sympify(a) - sp.sympify(b))
    if sp.simplify(diff) == 0:
        return True
    import random

    rng = random.Random(1)
    for _ in range(points):
        k = rng.uniform(0.3, 2.0)
        vals = {
            K11: k,
            K22: k * rng.uniform(0.5, 1.5),
            model.r: 0.7,
            model.sigma_w2: 1.3,
            model.sigma_b2: 0.2,
        }
        vals[K12] = rng.uniform(-0.9, 0.9) * math.sqrt(vals[K11] * vals[K22])
        if abs(complex(diff.subs(vals).evalf())) > 1e-12:
            return False
    return True


@pytest.mark.parametrize("name", ["relu", "erf", "tanh"])
def test_full_block_layer_jacobian_is_one_plus_r2_sigma_w2_dP_dK(name):
    """docs/theory, "Response and sensitivity": T = 1 + r^2 sigma_w^2 J(K) in pair space."""
    T = response.layer_jacobian("full", name, 2).matrix
    J = sp.Matrix(gauss.pair(name)).jacobian(model.K)
    expected = sp.eye(3) + model.r**2 * model.sigma_w2 * J
    assert all(_same(T[i, j], expected[i, j]) for i in range(3) for j in range(3))


@pytest.mark.parametrize("name", ["erf", "tanh"])
def test_reduced_block_jacobian_evaluates_dP_dK_at_the_preactivation_kernel(name):
    """Odd activations: T = 1 + r^2 sigma_w^2 J(sigma_w^2 K + sigma_b^2) (chain rule)."""
    T = response.layer_jacobian("reduced", name, 2).matrix
    C = [model.sigma_w2 * k + model.sigma_b2 for k in model.K]
    J = sp.Matrix(gauss.pair(name)).jacobian(model.K).xreplace(dict(zip(model.K, C)))
    expected = sp.eye(3) + model.r**2 * model.sigma_w2 * J
    assert all(_same(T[i, j], expected[i, j]) for i in range(3) for j in range(3))


def test_reduced_relu_jacobian_includes_the_mean():
    lj = response.layer_jacobian("reduced", "relu", 2)
    assert len(lj.layer.state) == 5 and lj.matrix.shape == (5, 5)
    assert lj.matrix[0, 3] != 0  # dK11'/dm1: the mean enters the kernel


@pytest.mark.parametrize("name", ["relu", "erf", "tanh", "linear"])
@pytest.mark.parametrize("block", ["full", "reduced"])
def test_the_K12_column_of_chi_has_only_its_12_entry(block, name):
    """No diagonal entry or mean depends on K12, hence S = chi_{12,12} K^0 / K^L."""
    tr = response.correlation_response(block, name)
    assert tr.entries == ((1, 0),)
    assert response.sensitivity(block, name) == tr.tangent[0] / K11


def test_kernel_response_seeds_are_the_input_jacobians_pattern():
    assert response.input_jacobian("kernel", 2) == sp.eye(3)
    assert response.input_jacobian("layer", 2) == model.sigma_w2 * sp.eye(3)
    assert response.input_seeds(2) == ((0, 0), (1, 1), (2, 2))


def test_full_block_flow_is_the_continuum_limit():
    """dK/dtau = P(K) + rho_b, dK12/dtau = P12 + rho_b, d ln chi_12/dtau = <phi'_1 phi'_2>."""
    rho_b = model.sigma_b2 / model.sigma_w2
    for name in ("erf", "tanh", "relu"):
        fl = continuum.flow("full", name)
        K, k12 = fl.state
        p11, _, p12 = gauss.pair(name, (K, K, k12))
        assert _same(fl.rhs[0], p11 + rho_b) and _same(fl.rhs[1], p12 + rho_b)
        dphi = sp.diff(p12, k12)
        assert _same(fl.chi_rate, dphi)
    # erf: <phi' phi'> = (4/pi) [(1 + 2K)^2 - 4 K12^2]^{-1/2} (docs/theory, "Gaussian expectations")
    fl = continuum.flow("full", "erf")
    K, k12 = fl.state
    assert sp.simplify(fl.chi_rate - 4 / sp.pi / sp.sqrt((1 + 2 * K) ** 2 - 4 * k12**2)) == 0


def test_reduced_block_flow_has_its_own_continuum_limit():
    """Reduced block: dK/dtau = P(sigma_w^2 K + sigma_b^2)/sigma_w^2, not P(K) + rho_b."""
    fl = continuum.flow("reduced", "erf")
    K, k12 = fl.state
    C = model.sigma_w2 * K + model.sigma_b2
    assert _same(fl.rhs[0], gauss.single("erf", C) / model.sigma_w2)
    vals = {K: 1.0, k12: 0.5, model.sigma_w2: 2.0, model.sigma_b2: 0.0}
    theory = gauss.single("erf", K)
    assert abs(float((fl.rhs[0] - theory).subs(vals))) > 0.1
    assert continuum.flow("reduced", "relu") is None  # mean drift: no continuum in tau


@pytest.mark.parametrize("name", ["erf", "tanh", "relu"])
def test_optimum_condition_is_the_local_edge_of_chaos_condition(name):
    """sigma_w^2 <phi'_1 phi'_2>_{K^L} = (sigma_w^2 <phi^2>_{K^L} + sigma_b^2) / K^L."""
    fl = continuum.flow("full", name)
    K, k12 = fl.state
    cond = continuum.optimum_condition(fl)
    p11, _, p12 = gauss.pair(name, (K, K, k12))
    lhs = model.sigma_w2 * sp.diff(p12, k12)
    rhs = (model.sigma_w2 * p11 + model.sigma_b2) / K
    assert _same(cond.lhs, lhs) and _same(cond.rhs, rhs)
    # and it is d ln S/dtau = 0
    assert _same(fl.rate * model.sigma_w2, cond.lhs - cond.rhs)


def test_first_order_correction_pieces():
    G, F, DF = continuum.modified_flow_correction(2)
    # Backward error analysis of Euler's method: y' = F - (eps/2) DF F + O(eps^2).
    expected = -(DF * sp.Matrix(F)) / 2
    assert [sp.simplify(g - e) for g, e in zip(G, expected)] == [0, 0]
    assert continuum.euler_maclaurin_endpoint() == -sp.Rational(1, 2)
    t, curvature, shift = sp.symbols("t curvature shift")
    assert sp.simplify(continuum.l0_formula()(t, curvature, shift) + shift / (t * curvature)) == 0


def test_saturated_limit_of_erf_is_sign():
    c = saturated.c
    p11, p12 = saturated.saturated_pair()
    assert p11 == 1 and sp.simplify(p12 - 2 * sp.asin(c) / sp.pi) == 0
    assert sp.simplify(saturated.correlation_flow() - (2 * sp.asin(c) / sp.pi - c)) == 0
    assert sp.simplify(saturated.optimal_correlation() - sp.sqrt(1 - 4 / sp.pi**2)) == 0


def test_saturated_log_growth_is_the_correlation_flow_integral():
    quad = pytest.importorskip("scipy.integrate").quad
    c_x = math.sqrt(1 - 4 / math.pi**2)
    ref, _ = quad(lambda c: 1 / (c - 2 / math.pi * math.asin(c)), c_x, 0.9, epsabs=1e-13)
    assert float(saturated.log_growth().subs(saturated.c0, 0.9).evalf(20)) == pytest.approx(
        ref, rel=1e-10
    )


def test_saturated_r_star_scales():
    """q = K^0 (reduced block, fixed kernel), q = G (full block, input layer); the full block with a
    fixed kernel has r* sigma_w fixed and the reduced block with an input layer r*/sigma_w fixed."""
    u, L, sw2 = saturated.u, saturated.depth, model.sigma_w2
    K0, G = sp.Symbol("K0", positive=True), sp.Symbol("G", positive=True)
    base = sp.sqrt(sp.exp(u) - 1) / sp.sqrt(L)
    assert sp.simplify(saturated.optimal_r("reduced", "kernel") - sp.sqrt(K0) * base) == 0
    assert sp.simplify(saturated.optimal_r("full", "layer") - sp.sqrt(G) * base) == 0
    assert sp.simplify(saturated.optimal_r("full", "kernel") - sp.sqrt(K0 / sw2) * base) == 0
    assert sp.simplify(saturated.optimal_r("reduced", "layer") - sp.sqrt(G * sw2) * base) == 0
