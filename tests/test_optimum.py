"""The optimal residual scale: numeric optimum against an independent optimiser, the continuum
(analytic) r* against the numeric one, exact invariances, the absence of a maximum for relu and
below erf's correlation threshold, and the saturated (sign) limit."""

import functools
import math

import numpy as np
import pytest
import sympy as sp

import fieldgen
from fieldgen import brent, continuum
from fieldgen.derivations import saturated

NUMERIC = dict(sigma_w2=1.0, c0=0.9)


# ---- the numeric optimiser -------------------------------------------------------------------


def test_brent_maximum_and_root_agree_with_scipy():
    optimize = pytest.importorskip("scipy.optimize")
    for f, a, b in [
        (lambda x: -((x - 0.3) ** 2) + math.sin(3 * x) / 10, -1.0, 1.5),
        (lambda x: x * math.exp(-x * x), 0.0, 3.0),
    ]:
        x, fx = brent.maximise(f, a, b, xtol=1e-12)
        ref = optimize.minimize_scalar(
            lambda t: -f(t), bounds=(a, b), method="bounded", options={"xatol": 1e-12}
        )
        assert x == pytest.approx(ref.x, abs=1e-7) and fx == pytest.approx(-ref.fun, rel=1e-14)
    for f, a, b in [
        (math.cos, 0.0, 3.0),
        (lambda x: x**3 - 2 * x - 5, 2.0, 3.0),
        (lambda x: math.expm1(x) - 1e-3, -1.0, 4.0),
    ]:
        assert brent.root(f, a, b) == pytest.approx(optimize.brentq(f, a, b, xtol=1e-15), abs=1e-12)
    with pytest.raises(ValueError, match="opposite signs"):
        brent.root(math.cos, 0.0, 1.0)


def test_numeric_optimum_and_range_against_scipy_on_the_sensitivity():
    optimize = pytest.importorskip("scipy.optimize")
    kw = dict(depth=50, **NUMERIC)
    best = fieldgen.optimal_r("erf", **kw)

    def S(r):
        return fieldgen.sensitivity("erf", r=r, **kw)

    ref = optimize.minimize_scalar(
        lambda r: -S(r), bounds=(0.2, 1.5), method="bounded", options={"xatol": 1e-10}
    )
    assert best.r_star == pytest.approx(ref.x, rel=1e-6)
    assert best.S_max == pytest.approx(S(ref.x), rel=1e-13)
    level = 1 + (best.S_max - 1) / 2
    assert best.r_lo == pytest.approx(
        optimize.brentq(lambda r: S(r) - level, 1e-3, ref.x), rel=1e-8
    )
    assert best.r_hi == pytest.approx(
        optimize.brentq(lambda r: S(r) - level, ref.x, 10.0), rel=1e-8
    )
    assert best.contains(best.r_lo, best.r_hi) and not best.contains(best.r_lo / 2, best.r_hi)


# ---- analytic (continuum) r* ----------------------------------------------------------------


def _analytic_and_numeric(name, depth, c0):
    kw = dict(sigma_w2=1.0, depth=depth, c0=c0)
    return (fieldgen.optimal_r(name, method="analytic", **kw), fieldgen.optimal_r(name, **kw))


@pytest.mark.parametrize("c0", [0.8, 0.9])
def test_analytic_r_star_for_erf_converges_like_one_over_depth_squared(c0):
    errors = {}
    for depth in (100, 300, 1000):
        analytic, numeric = _analytic_and_numeric("erf", depth, c0)
        errors[depth] = analytic.r_star / numeric.r_star - 1
        assert abs(errors[depth]) < 0.03  # the acceptance criterion
        assert 0 < analytic.L0 < 10 and "L0" in analytic.approximation
        # Without L0 (leading order) the error is ~L0/(2 depth): L0 is what makes it small.
        leading = math.sqrt(analytic.tau_star / depth) / numeric.r_star - 1
        assert abs(leading) > 5 * abs(errors[depth])
    assert abs(errors[100]) < 2e-3
    assert abs(errors[300]) < abs(errors[100]) / 5 and abs(errors[1000]) < abs(errors[300]) / 5


@pytest.mark.parametrize("c0", [0.8, 0.9])
def test_analytic_r_star_for_tanh_at_depth_100(c0):
    analytic, numeric = _analytic_and_numeric("tanh", 100, c0)
    assert abs(analytic.r_star / numeric.r_star - 1) < 0.03
    assert abs(analytic.r_star / numeric.r_star - 1) < 2e-3


@pytest.mark.slow
@pytest.mark.parametrize("depth", [300, 1000])
@pytest.mark.parametrize("c0", [0.8, 0.9])
def test_analytic_r_star_for_tanh_at_larger_depths(depth, c0):
    analytic, numeric = _analytic_and_numeric("tanh", depth, c0)
    assert abs(analytic.r_star / numeric.r_star - 1) < 0.03


def test_continuum_optimum_does_not_move_when_the_steps_are_halved():
    a = continuum.optimum("erf", "full", sigma_w2=1.0, sigma_b2=0.1, k0=1.3, k12=1.1)
    b = continuum.optimum(
        "erf", "full", sigma_w2=1.0, sigma_b2=0.1, k0=1.3, k12=1.1, growth=continuum.GROWTH / 2
    )
    assert a.tau_star == pytest.approx(b.tau_star, rel=2e-5)
    assert a.l0 == pytest.approx(b.l0, rel=2e-5)
    assert a.log_s_max == pytest.approx(b.log_s_max, rel=2e-5)


@pytest.mark.parametrize("block", ["full", "reduced"])
def test_continuum_rate_changes_sign_once_over_the_whole_range(block):
    """The solver stops past the first maximum; over the full tau range there is no other."""
    flow = continuum._Flow("erf", block, 1.0, 0.0)
    grid = continuum.tau_grid(2.0, continuum.GROWTH)
    path, values = flow.run([1.0, 0.9, 0, 0, 0, 0], grid)
    usable = np.abs(path[:, 0]) < continuum.HUGE
    rate = values["rate"][usable]
    assert np.count_nonzero(np.diff(np.sign(rate)) != 0) == 1


def test_analytic_range_brackets_the_numeric_optimum():
    analytic, numeric = _analytic_and_numeric("erf", 300, 0.9)
    assert analytic.r_lo < numeric.r_star < analytic.r_hi
    assert analytic.r_lo == pytest.approx(numeric.r_lo, rel=0.02)
    assert analytic.S_max == pytest.approx(numeric.S_max, rel=0.01)


def test_depth_window_of_the_typical_range_against_full_optima():
    from fieldgen.scan import depth_window

    first, last = depth_window("erf", sigma_w2=2.0, c0=0.9)
    inside = {
        L: fieldgen.optimal_r("erf", sigma_w2=2.0, depth=L, c0=0.9).contains(0.1, 0.3)
        for L in (first - 1, first, last, last + 1)
    }
    assert inside == {first - 1: False, first: True, last: True, last + 1: False}
    assert depth_window("relu", sigma_w2=1.0, c0=0.9) is None


# ---- invariances ----------------------------------------------------------------------------


def test_r_star_sigma_w_is_exactly_invariant_without_bias_and_with_a_fixed_input_kernel():
    results = [
        fieldgen.optimal_r("erf", sigma_w2=s, depth=60, c0=0.9) for s in (0.5, 1.0, 2.0, 4.0)
    ]
    scaled = [res.r_star * math.sqrt(s) for res, s in zip(results, (0.5, 1.0, 2.0, 4.0))]
    np.testing.assert_allclose(scaled, scaled[0], rtol=1e-6)
    np.testing.assert_allclose([res.S_max for res in results], results[0].S_max, rtol=1e-12)
    from fieldgen.scan import exponent

    assert exponent((0.5, 1.0, 2.0, 4.0), [res.r_star for res in results]) == pytest.approx(
        -0.5, abs=1e-6
    )


@pytest.mark.parametrize(
    "setting", [dict(sigma_b2=0.2), dict(input="layer"), dict(block="reduced")]
)
def test_r_star_sigma_w_is_not_invariant_with_bias_input_layer_or_reduced_erf_block(setting):
    a = fieldgen.optimal_r("erf", sigma_w2=1.0, depth=60, c0=0.9, **setting)
    b = fieldgen.optimal_r("erf", sigma_w2=2.0, depth=60, c0=0.9, **setting)
    assert abs(b.r_star * math.sqrt(2.0) / a.r_star - 1) > 0.01


def test_reduced_block_is_invariant_only_for_positively_homogeneous_activations():
    r = np.linspace(0.05, 1.0, 6)
    for name, invariant in (("relu", True), ("linear", True), ("erf", False), ("tanh", False)):
        a = fieldgen.sensitivity(name, r=r, sigma_w2=1.0, depth=15, c0=0.9, block="reduced")
        b = fieldgen.sensitivity(
            name, r=r / math.sqrt(3.0), sigma_w2=3.0, depth=15, c0=0.9, block="reduced"
        )
        if invariant:
            np.testing.assert_allclose(a, b, rtol=1e-12)
        else:
            assert np.max(np.abs(a / b - 1)) > 1e-3


# ---- no interior maximum --------------------------------------------------------------------


@pytest.mark.parametrize("block", ["full", "reduced"])
@pytest.mark.parametrize("sigma_b2", [0.0, 0.3])
@pytest.mark.parametrize("method", ["numeric", "analytic"])
def test_relu_has_no_interior_maximum(block, sigma_b2, method):
    for c0 in (0.5, 0.99):
        res = fieldgen.optimal_r(
            "relu", sigma_w2=1.5, depth=100, c0=c0, sigma_b2=sigma_b2, block=block, method=method
        )
        assert not res and res.r_star is None and res.r_lo is None
        assert "no interior maximum" in res.message or "no continuum limit" in res.message


def test_erf_correlation_threshold():
    """An interior maximum exists iff d ln S/dtau > 0 at the input: c0 > c_th(K0)."""
    from fieldgen.derivations import continuum as derived
    from fieldgen.derivations import model

    fl = derived.flow("full", "erf")
    K, K12 = fl.state
    rate = fl.rate.subs({model.sigma_b2: 0, K: 1})
    c_th = float(sp.nsolve(rate, K12, 0.6))
    assert c_th == pytest.approx(0.61, abs=0.005)  # docs/theory: about 0.61 at K0 = 1
    for depth in (30, 300):
        assert not fieldgen.optimal_r("erf", sigma_w2=1.0, depth=depth, c0=c_th - 0.01)
        assert fieldgen.optimal_r("erf", sigma_w2=1.0, depth=depth, c0=c_th + 0.01)
    assert not fieldgen.optimal_r("erf", sigma_w2=1.0, depth=100, c0=c_th - 0.01, method="analytic")


# ---- the saturated (sign) limit ------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _log_growth(c0):
    return float(saturated.log_growth().subs(saturated.c0, c0).evalf(20))


def _sign_limit(block, mode, *, scale, sigma_w2, depth, c0):
    u = _log_growth(c0)
    expr = saturated.optimal_r(block, mode)
    values = {"K0": scale, "G": scale, "sigma_w2": sigma_w2, "L": depth, "u": u}
    return float(expr.subs({s: values[s.name] for s in expr.free_symbols}))


SATURATED = dict(K0=1e6, depth=1000, c0=0.9)


@pytest.mark.parametrize(
    "block,input", [("reduced", "kernel"), ("full", "layer"), ("full", "kernel")]
)
@pytest.mark.parametrize("sigma_w2", [1.0, 2.0])
def test_sign_limit_formula_against_erf_at_large_scale(block, input, sigma_w2):
    """erf at pre-activation scale 1e6 is sign to O(1e-3): r* = sqrt(q (e^u - 1)/L)."""
    got = fieldgen.optimal_r("erf", sigma_w2=sigma_w2, block=block, input=input, **SATURATED)
    want = _sign_limit(
        block,
        input,
        scale=SATURATED["K0"],
        sigma_w2=sigma_w2,
        depth=SATURATED["depth"],
        c0=SATURATED["c0"],
    )
    assert got.r_star == pytest.approx(want, rel=0.01)


def test_sign_limit_is_sigma_independent_only_in_two_settings():
    """The usual claim 'reduced block or input layer ... independent of sigma_w and sigma_b'
    holds in two of the four settings (docs/theory, "The sign limit")."""
    # Reduced block with an input layer: K^0 = sigma_w^2 G, so r* grows like sigma_w.
    a, b = (
        fieldgen.optimal_r("erf", sigma_w2=s, block="reduced", input="layer", **SATURATED)
        for s in (1.0, 2.0)
    )
    assert b.r_star / a.r_star == pytest.approx(math.sqrt(2.0), rel=0.01)
    # A bias comparable with sigma_w^2 K^0 moves r* away from the formula.
    biased = fieldgen.optimal_r(
        "erf", sigma_w2=1.0, block="reduced", sigma_b2=0.2 * SATURATED["K0"], **SATURATED
    )
    plain = _sign_limit(
        "reduced",
        "kernel",
        scale=SATURATED["K0"],
        sigma_w2=1.0,
        depth=SATURATED["depth"],
        c0=SATURATED["c0"],
    )
    assert abs(biased.r_star / plain - 1) > 0.03
    # Away from saturation (K0 = 1) the formula does not describe erf at all.
    unsaturated = fieldgen.optimal_r(
        "erf", sigma_w2=1.0, block="reduced", K0=1.0, depth=1000, c0=0.9
    )
    assert (
        unsaturated.r_star
        / _sign_limit("reduced", "kernel", scale=1.0, sigma_w2=1.0, depth=1000, c0=0.9)
        > 2
    )


def test_sign_limit_has_no_maximum_below_c_x():
    """In the sign limit the correlation flows down to 0: below c_x = sqrt(1 - 4/pi^2) S only falls."""
    c_x = float(saturated.optimal_correlation())
    assert c_x == pytest.approx(math.sqrt(1 - 4 / math.pi**2), rel=1e-15)
    assert not fieldgen.optimal_r(
        "erf", sigma_w2=1.0, block="reduced", K0=1e6, depth=300, c0=c_x - 0.03
    )
    assert fieldgen.optimal_r(
        "erf", sigma_w2=1.0, block="reduced", K0=1e6, depth=300, c0=c_x + 0.03
    )
