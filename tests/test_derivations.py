"""The symbolic layer: saddle point, Price's theorem, closed forms, increments."""

import random

import pytest
import sympy as sp

from fieldgen.derivations import action, closed_forms, gauss, meanfield, model
from fieldgen.derivations.expectation import (
    Correlation,
    GaussianExpectation,
    explicit_correlation,
    integrate_gaussian,
    variables,
)

x1, x2 = variables(2)
K11, K22, K12 = model.K


def _numeric_points(n=5, seed=0):
    rng = random.Random(seed)
    for _ in range(n):
        a, b = rng.uniform(0.2, 3), rng.uniform(0.2, 3)
        rho = rng.uniform(-0.95, 0.95)
        yield {K11: a, K22: b, K12: rho * (a * b) ** 0.5}


def test_saddle_point_of_the_full_block_action():
    phi = sp.Function("phi")
    saddle = action.saddle_point(2, action.phi_source(phi, model.K, 2))
    C11, C22, C12 = model.C
    expect12 = GaussianExpectation(sp.Lambda((x1, x2), phi(x1) * phi(x2)), K11, K22, K12)
    assert sp.simplify(saddle.fields[C12] - (model.sigma_w2 * expect12 + model.sigma_b2)) == 0
    assert all(v == 0 for v in saddle.conjugates.values())


def test_conjugate_fields_vanish_on_a_multilayer_action():
    result = action.conjugate_vanishes_on_multilayer_action(3)
    assert all(v == 0 for v in result["conjugates"].values())
    C1 = sp.Symbol("C1", positive=True)
    phi = result["phi"]
    expected = (
        model.sigma_w2 * GaussianExpectation(sp.Lambda(variables(1), phi(x1) ** 2), result["K0"])
        + model.sigma_b2
    )
    assert sp.simplify(result["fields"][C1] - expected) == 0


def test_full_block_increment_has_covariance_r2_C():
    inc = action.full_block_increment(model.C, 2)
    assert inc.mean == (0, 0)
    assert [sp.simplify(s - model.r**2 * c) for s, c in zip(inc.second, model.C)] == [0, 0, 0]


def test_input_layer_kernel_is_sigma_w2_G_plus_sigma_b2():
    K0 = meanfield.input_kernel("layer", 2)
    assert [
        sp.simplify(k - (model.sigma_w2 * g + model.sigma_b2)) for k, g in zip(K0, model.G)
    ] == [0, 0, 0]


def test_price_theorem_is_the_derivative_of_an_expectation():
    f = sp.Function("f")
    node = GaussianExpectation(sp.Lambda((x1, x2), f(x1, x2)), K11, K22, K12)
    lam = lambda body: sp.Lambda((x1, x2), body)
    assert sp.diff(node, K12) == GaussianExpectation(lam(sp.diff(f(x1, x2), x1, x2)), K11, K22, K12)
    assert (
        sp.diff(node, K11) == GaussianExpectation(lam(sp.diff(f(x1, x2), x1, 2)), K11, K22, K12) / 2
    )
    odd = GaussianExpectation(sp.Lambda((x1, x2), sp.tanh(x1) * x2**2), K11, K22, K12)
    assert odd == 0


def test_gaussian_integral_by_completing_the_square():
    z = sp.Symbol("z", real=True)
    a, b = sp.symbols("a b", positive=True)
    expr = 3 * sp.exp(-a * z**2 + b * z - 1)
    ours, sympys = integrate_gaussian(expr, z), sp.integrate(expr, (z, -sp.oo, sp.oo))
    for point in ({a: 0.7, b: 0.3}, {a: 2.5, b: 1.9}):
        assert float(ours.subs(point)) == pytest.approx(float(sympys.subs(point)), rel=1e-13)


def test_correlation_node_differentiates_like_the_quotient():
    rho = Correlation(K11, K22, K12)
    explicit = K12 / sp.sqrt(K11 * K22)
    for k in model.K:
        for point in _numeric_points(3):
            assert float(
                sp.diff(rho, k)
                .subs(point)
                .replace(Correlation, lambda a, b, c: c / sp.sqrt(a * b))
                .subs(point)
            ) == pytest.approx(float(sp.diff(explicit, k).subs(point)), rel=1e-12)


@pytest.mark.parametrize("name", ["relu", "erf", "linear"])
def test_closed_form_chain_obeys_price_theorem(name):
    """d/dK12 <phi^(j) phi^(j)> = <phi^(j+1) phi^(j+1)> for every level of the derived chain."""
    chain = [explicit_correlation(c) for c in closed_forms.pair_chain(name).chain]
    for lower, upper in zip(chain, chain[1:]):
        for point in _numeric_points():
            assert float(sp.diff(lower, K12).subs(point)) == pytest.approx(
                float(upper.subs(point)), rel=1e-11
            )


def test_expectation_nodes_reduce_deltas_and_unused_variables():
    relu = sp.Max(0, x2)
    node = GaussianExpectation(sp.Lambda((x1, x2), sp.DiracDelta(x1) * relu), K11, K22, K12)
    conditional = K22 - K12**2 / K11
    by_hand = 1 / sp.sqrt(2 * sp.pi * K11) * sp.sqrt(conditional / (2 * sp.pi))
    for point in _numeric_points(3):
        assert float(closed_forms.close(node).subs(point)) == pytest.approx(
            float(by_hand.subs(point)), rel=1e-12
        )
    marginal = GaussianExpectation(sp.Lambda((x1, x2), sp.tanh(x2) ** 2), K11, K22, K12)
    assert marginal == GaussianExpectation(sp.Lambda(variables(1), sp.tanh(x1) ** 2), K22)


def test_four_point_moment_of_relu_matches_its_closed_form():
    """<relu(u)^2 relu(v)^2> = K11 K22 / (2 pi) [3 rho sqrt(1 - rho^2) + (pi - arccos rho)(1 + 2 rho^2)]."""
    (x,) = variables(1)
    relu2 = sp.Lambda(x, sp.Max(0, x) ** 2)
    ours = explicit_correlation(closed_forms.price_chain(relu2, relu2)[0])
    rho = K12 / sp.sqrt(K11 * K22)
    theirs = (
        K11
        * K22
        / (2 * sp.pi)
        * (3 * rho * sp.sqrt(1 - rho**2) + (sp.pi - sp.acos(rho)) * (1 + 2 * rho**2))
    )
    for point in _numeric_points():
        assert float(ours.subs(point)) == pytest.approx(float(theirs.subs(point)), rel=1e-12)


def test_only_singular_closed_forms_use_the_clamped_correlation():
    assert closed_forms.pair_chain("relu").phiphi.has(Correlation)
    assert not closed_forms.pair_chain("erf").phiphi.has(Correlation)
    assert not closed_forms.pair_chain("linear").phiphi.has(Correlation)


def test_relu_full_block_layer_map():
    lm = meanfield.layer_map("full", "relu", 2)
    r, sw2, sb2 = model.r, model.sigma_w2, model.sigma_b2
    assert sp.simplify(lm.update[0] - (K11 * (1 + r**2 * sw2 / 2) + r**2 * sb2)) == 0
    assert lm.state == model.K


def test_reduced_block_tracks_a_mean_only_for_non_odd_activations():
    assert meanfield.layer_map("reduced", "relu", 2).state == model.K + model.m
    assert meanfield.layer_map("reduced", "tanh", 2).state == model.K
    assert gauss.mean("tanh", model.K1) == 0
