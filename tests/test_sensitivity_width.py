"""The sensitivity at finite width, S_N = d E[chat^L]/dc^0 to O(1/N), and r* at finite width.

Independent checks: the exact small-sample bias of a Gaussian sample correlation at r = 0
(Fisher: E[chat] = c - c (1 - c^2)/(2N) + O(1/N^2)); the correlation's gradient and Hessian
against SymPy; the infinite-width limit; and (slow) simulated finite networks with common random
numbers, where the mean-field S without its 1/N term must be rejected."""

import numpy as np
import pytest
import sympy as sp
from helpers import mean_and_se

import fieldgen
from fieldgen.response import _correlation_derivatives

KW = dict(sigma_w2=2.0, depth=30, c0=0.9)


@pytest.mark.parametrize("c0", [-0.7, 0.0, 0.5, 0.9])
def test_identity_network_has_the_sample_correlation_bias(c0):
    # r = 0: chat^L is the sample correlation of N Gaussian pairs; d/dc of Fisher's bias.
    N = 10
    S = fieldgen.sensitivity("erf", r=0.0, sigma_w2=2.0, depth=5, c0=c0, width=N)
    exact = 1.0 - (1.0 - 3.0 * c0**2) / (2 * N)
    assert pytest.approx(exact, abs=1e-6) == S  # central difference: ~h^2/(2N) = 5e-8
    assert abs(fieldgen.sensitivity("erf", r=0.0, sigma_w2=2.0, depth=5, c0=c0) - exact) > 1e-3


def test_correlation_derivatives_match_sympy():
    k11, k22, k12 = sp.symbols("k11 k22 k12", positive=True)
    x = (k11, k22, k12)
    g = k12 / sp.sqrt(k11 * k22)
    point = {k11: 1.3, k22: 0.7, k12: 0.4}
    grad, hess = _correlation_derivatives(1.3, 0.7, 0.4)
    for i in range(3):
        assert grad[i] == pytest.approx(float(sp.diff(g, x[i]).subs(point)), rel=1e-13)
        for j in range(3):
            expected = float(sp.diff(g, x[i], x[j]).subs(point))
            assert hess[i, j] == pytest.approx(expected, rel=1e-13, abs=1e-15)


def test_infinite_width_limit_is_the_mean_field_sensitivity():
    r = np.array([0.1, 0.3, 0.6])
    S = fieldgen.sensitivity("erf", r=r, **KW)
    widths = [10**3, 10**6, 10**9]
    scaled = [N * (fieldgen.sensitivity("erf", r=r, width=N, **KW) - S) for N in widths]
    # N (S_N - S) is the width-independent 1/N coefficient, finite and non-zero.
    assert np.all(np.abs(scaled[0]) > 1e-2)
    for other in scaled[1:]:
        np.testing.assert_allclose(other, scaled[0], rtol=1e-5)


def test_width_validation():
    with pytest.raises(ValueError, match="width must be an integer >= 1"):
        fieldgen.sensitivity("erf", r=0.3, width=0, **KW)
    with pytest.raises(ValueError, match="width must be an integer >= 1"):
        fieldgen.sensitivity("erf", r=0.3, width=16.0, **KW)
    with pytest.raises(ValueError, match="block must be 'full' with width"):
        fieldgen.sensitivity("erf", r=0.3, width=16, block="reduced", **KW)
    with pytest.raises(ValueError, match="method must be 'numeric' with width"):
        fieldgen.optimal_r("erf", width=16, method="analytic", **KW)
    with pytest.raises(ValueError, match="block must be 'full' with width"):
        fieldgen.optimal_r("erf", width=16, block="reduced", **KW)


def test_optimal_r_at_finite_width_maximises_S_N():
    best = fieldgen.optimal_r("erf", width=16, **KW)
    S = lambda r: fieldgen.sensitivity("erf", r=r, width=16, **KW)  # noqa: E731
    assert best.S_max == pytest.approx(S(best.r_star), rel=1e-12)
    for factor in (0.99, 1.01):
        assert S(best.r_star * factor) < best.S_max
    # The mean-field r* is not the maximum of S_N (the 1/N term moves it).
    r_inf = fieldgen.optimal_r("erf", **KW).r_star
    assert abs(r_inf / best.r_star - 1) > 1e-4
    assert S(r_inf) < best.S_max


@pytest.mark.slow
def test_simulated_finite_networks_confirm_S_N():
    # ~1 min: erf at r*, depth 30, width 32; the 1/N term (~0.023) is ~7 s.e.
    r, N, h = 0.6221706642973213, 32, 0.01

    def c_out(c):
        Kh = fieldgen.simulate(
            "erf",
            r=r,
            sigma_w2=2.0,
            depth=30,
            K0=[[1.0, c], [c, 1.0]],
            width=N,
            samples=120_000,
            method="walk",
            seed=11,
        )[:, -1]
        return Kh[:, 0, 1] / np.sqrt(Kh[:, 0, 0] * Kh[:, 1, 1])

    mean, se = mean_and_se((c_out(0.9 + h) - c_out(0.9 - h)) / (2 * h))
    S_N = fieldgen.sensitivity("erf", r=r, width=N, **KW)
    S_inf = fieldgen.sensitivity("erf", r=r, **KW)
    assert abs(mean - S_N) < 4 * se
    assert abs(mean - S_inf) > 4 * se  # negative control: the mean-field S
