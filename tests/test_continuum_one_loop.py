"""The one loop at infinite depth (tau = r^2 sigma_w^2 L fixed): the discrete one loop converges
to it at rate 1/L with the measured coefficient, and simulated networks of depth 1000 agree
with it (docs/theory, "The one loop at infinite depth")."""

import math

import numpy as np
import pytest
from helpers import extrapolate_in_inverse_width, relu_jr, relu_psi
from scipy.integrate import quad

import fieldgen
from fieldgen.derivations import continuum_one_loop as derivation
from fieldgen.stats import covariance_and_se, variance_and_se

PAIR = [[1.0, 0.5], [0.5, 1.2]]
CASES = {
    "relu": dict(activation="relu", sigma_w2=2.0, K0=1.0),
    "relu-pair": dict(activation="relu", sigma_w2=2.0, K0=PAIR),
    "erf": dict(activation="erf", sigma_w2=1.0, K0=1.0, sigma_b2=0.1),
    "erf-pair": dict(activation="erf", sigma_w2=1.0, K0=PAIR),
}
TAU = 1.0
POINTS = 10


def _continuum(case, correction=False, points=POINTS):
    c = dict(CASES[case])
    return fieldgen.continuum_one_loop(
        c.pop("activation"), tau=TAU, points=points, correction=correction, **c
    )


def _discrete(case, depth, points=POINTS):
    """kernel_covariance and kernel_mean_shift at depth L, r = r_for_tau, on the tau grid."""
    c = dict(CASES[case])
    name = c.pop("activation")
    r = fieldgen.r_for_tau(TAU, depth, c["sigma_w2"])
    C = fieldgen.kernel_covariance(name, r=r, depth=depth, **c)
    s = fieldgen.kernel_mean_shift(name, r=r, depth=depth, **c)
    step = depth // points
    return C[::step, ::step], s[::step]


def test_the_limit_of_every_recursion_is_derived_at_order_g():
    """Each discrete update minus its state is O(g) with an O(1) rate (one input and pairs), and
    the discrete propagator (1 + g J)^((tau - s)/g) tends to exp(J (tau - s))."""
    for d in (1, 3):
        lim = derivation.limits(d)
        assert set(lim) == {"P", "Y", "U", "V", "R", "Delta"}
        # dY/dtau = J Y + A: the rate of Y at Y = 0 is the source A
        zero = {s: 0 for s in lim["Y"].state}
        assert lim["Y"].rhs.xreplace(zero) == derivation._matrix("A", d)
    assert derivation.propagator_scaling() is not None


@pytest.mark.parametrize("tau", [0.4, 1.3, 3.0])
def test_relu_limit_equals_the_limit_of_its_closed_forms(tau):
    """relu, one input, no bias (docs/theory, "relu in closed form") with a = 1 + g/2, L = tau/g,
    g -> 0: K = K0 e^(tau/2), a^(-|m-m'|/2) -> e^(-|s-s'|/4), and
        N Var(Khat)/K^2 = 2 + 4 (1 - e^(-tau/2)) + 2 int_0^tau (tau - u) Jr(e^(-u/4)) du,
        N (E Khat - K)   = (K0 e^(tau/2) / 2) int_0^tau (tau - u) psi(e^(-u/4)) du,
    integrated by adaptive quadrature."""
    K0 = 1.7
    res = fieldgen.continuum_one_loop("relu", tau=tau, sigma_w2=2.0, K0=K0, points=32)
    K = K0 * math.exp(tau / 2)
    double, _ = quad(
        lambda u: (tau - u) * relu_jr(math.exp(-u / 4)), 0, tau, epsabs=0, epsrel=1e-13
    )
    var = (2 + 4 * (1 - math.exp(-tau / 2)) + 2 * double) * K**2
    feed, _ = quad(lambda u: (tau - u) * relu_psi(math.exp(-u / 4)), 0, tau, epsabs=0, epsrel=1e-13)
    shift = K0 * math.exp(tau / 2) / 2 * feed
    assert res.kernel[-1] == pytest.approx(K, rel=1e-10)
    assert res.covariance[-1, -1] == pytest.approx(var, rel=1e-6)
    assert res.mean_shift.total[-1] == pytest.approx(shift, rel=1e-6)


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_continuum_grid_is_converged(case):
    """Richardson-extrapolated trapezoidal steps: at 10 and 20 intervals the results agree to
    1e-5 relative, and the change falls at least 6-fold per halving (order >= 2.6; the plain
    trapezoidal rule alone would give 4-fold)."""
    runs = {n: _continuum(case, points=n) for n in (5, 10, 20)}
    for get in (lambda r: r.covariance, lambda r: r.mean_shift.total):
        change = {
            n: np.abs(get(runs[n]) - get(runs[2 * n])[::2, ::2][: n + 1, : n + 1]).max()
            if get(runs[n]).ndim >= 2 and get(runs[n]).shape[1] == n + 1
            else np.abs(get(runs[n]) - get(runs[2 * n])[::2]).max()
            for n in (5, 10)
        }
        assert change[10] < 1e-5 * np.abs(get(runs[20])).max()
        assert change[5] > 6 * change[10]


# (Each case takes 0.1-3 s; the discrete pair one loop at depth 1000 is under a second.)
RATE_CASES = ["erf", "relu", "relu-pair", "erf-pair"]


@pytest.mark.parametrize("case", RATE_CASES)
def test_discrete_one_loop_converges_at_rate_one_over_depth(case):
    """L (discrete - continuum) at L = 100 and 1000 tends to the 1/L coefficient measured at
    depths 20 and 40: the error falls like L^-1 (fitted slope) and the corrected continuum is
    more than 100 times closer at L = 1000."""
    cont = _continuum(case, correction=True)
    errors = {}
    for L in (100, 1000):
        C, s = _discrete(case, L)
        errors[L] = (C - cont.covariance, s - cont.mean_shift.total)
    for k, c1 in enumerate((cont.covariance_1, cont.mean_shift_1)):
        e100, e1000 = (np.abs(errors[L][k]).max() for L in (100, 1000))
        slope = np.log(e1000 / e100) / np.log(10.0)
        assert abs(slope + 1.0) < 0.02, (k, slope)
        # O(1/L^2) remainder: L err - C1 shrinks ~10x from L = 100 to 1000
        assert np.abs(1000 * errors[1000][k] - c1).max() < 0.01 * np.abs(c1).max()
        assert np.abs(errors[1000][k] - c1 / 1000).max() < 0.01 * e1000


@pytest.mark.parametrize("case", sorted(CASES))
def test_negative_control_continuum_without_its_correction_at_depth_30_is_rejected(case):
    """At L = 30 the corrected continuum is within 15% of the 1/L term; the bare continuum
    misses by the whole term and must be rejected at that tolerance."""
    cont = _continuum(case, correction=True)
    C, s = _discrete(case, 30)
    for value, c0, c1 in (
        (C, cont.covariance, cont.covariance_1),
        (s, cont.mean_shift.total, cont.mean_shift_1),
    ):
        tol = 0.15 * np.abs(c1).max() / 30
        assert np.abs(value - c0 - c1 / 30).max() < tol
        assert np.abs(value - c0).max() > tol


@pytest.mark.slow
def test_mean_shift_at_depth_ten_thousand_is_within_the_corrected_continuum():
    """relu at L = 10^4 (mean shift only: the covariance would need 800 MB)."""
    cont = _continuum("relu", correction=True, points=40)
    c = dict(CASES["relu"])
    c.pop("activation")
    L = 10_000
    s = fieldgen.kernel_mean_shift("relu", r=fieldgen.r_for_tau(TAU, L, 2.0), depth=L, **c)
    err = s[:: L // 40] - cont.mean_shift.total
    assert np.abs(L * err - cont.mean_shift_1).max() < 1e-3 * np.abs(cont.mean_shift_1).max()


def _simulated(name, sigma_w2, widths, samples, seed, L=1000):
    """N Var(Khat^L) and N Cov(Khat^L, Khat^{L/2}) at depth L, extrapolated to N -> infinity."""
    out = {"var": [], "cov": []}
    r = fieldgen.r_for_tau(TAU, L, sigma_w2)
    for N in widths:
        Kh = fieldgen.simulate(
            name,
            r=r,
            sigma_w2=sigma_w2,
            depth=L,
            K0=1.0,
            width=N,
            samples=samples,
            seed=seed + N,
            method="walk",
        )
        x, y = Kh[:, L], Kh[:, L // 2]
        var, se = variance_and_se(x)
        out["var"].append((N * var, N * se))
        cov, se = covariance_and_se(x, y)
        out["cov"].append((N * cov, N * se))
    return {
        k: extrapolate_in_inverse_width(widths, [v for v, _ in vals], [e for _, e in vals])
        for k, vals in out.items()
    }


@pytest.mark.parametrize("name,sigma_w2,samples", [("relu", 2.0, 2000), ("erf", 1.0, 1500)])
def test_simulations_at_depth_1000_agree_with_the_continuum(name, sigma_w2, samples):
    """Walk simulations at depth 1000 (widths 32 and 64, extrapolated in 1/N) agree with the
    continuum N Var(Khat(tau)) and N Cov(Khat(tau), Khat(tau/2)) within 4 s.e. For relu the
    negative control, the sampling noise X = 2 K(min)^2 alone (layers as independent draws, no
    propagated fluctuations), is rejected: by more than 5 s.e. in each."""
    cont = fieldgen.continuum_one_loop(name, tau=TAU, sigma_w2=sigma_w2, K0=1.0, points=2)
    sim = _simulated(name, sigma_w2, [32, 64], samples, seed=11)
    z_control = []
    for key, theory, control in (
        ("var", cont.covariance[-1, -1], 2.0 * cont.kernel[-1] ** 2),
        ("cov", cont.covariance[-1, 1], 2.0 * cont.kernel[1] ** 2),
    ):
        est, se = sim[key]
        assert abs(est - theory) < 4 * se, (key, est, se, theory)
        z_control.append((est - control) / se)
    if name == "relu":
        assert min(z_control) > 5, z_control


def test_pairs_follow_the_kernel_covariance_convention_and_inputs_are_checked():
    res = _continuum("erf-pair")
    n = POINTS + 1
    assert res.kernel.shape == (n, 2, 2) and res.covariance.shape == (n, n, 2, 2, 2, 2)
    assert res.mean_shift.total.shape == (n, 2, 2)
    np.testing.assert_array_equal(res.covariance, np.swapaxes(res.covariance, 2, 3))
    for bad, param in (
        (dict(tau=0.0), "tau"),
        (dict(sigma_w2=0.0), "sigma_w2"),
        (dict(points=1), "points"),
    ):
        kw = dict(tau=1.0, sigma_w2=1.0, K0=1.0, points=4) | bad
        with pytest.raises(ValueError, match=f"^{param}"):
            fieldgen.continuum_one_loop("erf", **kw)
    with pytest.raises(ValueError, match="^K0 is outside the domain"):  # relu's Hessian at |c| = 1
        fieldgen.continuum_one_loop("relu", tau=1.0, sigma_w2=2.0, K0=[[1, 1], [1, 1]], points=2)
    with pytest.raises(ValueError, match="^depth"):
        fieldgen.r_for_tau(1.0, 0, 1.0)


def test_relu_pairs_mean_shift_diagonal_equals_the_one_input_continuum():
    """relu's pair self-feedback at s = tau (the walk takes no step) is its derived limit (it was
    0/0): the continuum of two inputs is finite, and its diagonal is the one-input continuum of
    each input alone (separate derivations and evaluators). The off-diagonal: the 1/L rate test."""
    K0 = np.array(PAIR)
    kw = dict(tau=0.5, sigma_w2=1.0, points=8)
    pair = fieldgen.continuum_one_loop("relu", K0=K0, **kw)
    assert np.isfinite(pair.mean_shift.total).all() and np.isfinite(pair.covariance).all()
    for i in range(2):
        one = fieldgen.continuum_one_loop("relu", K0=K0[i, i], **kw)
        np.testing.assert_allclose(pair.mean_shift.total[:, i, i], one.mean_shift.total, rtol=1e-10)
    # control: the two diagonals differ (K0_11 != K0_22), so the comparison is not vacuous
    assert not np.allclose(pair.mean_shift.total[:, 0, 0], pair.mean_shift.total[:, 1, 1])


@pytest.mark.slow
def test_sign_pairs_mean_shift_is_a_clear_error_not_an_overflow():
    """sign's pair self-feedback diverges where the walk takes no step (like the step^(-1/2)):
    the continuum of two inputs, and the discrete one loop whose steps fall below the float64
    resolution, say so instead of reporting an overflow; the discrete one with resolved steps
    is finite (generates sign into the user cache: slow)."""
    pair = np.array(PAIR)
    with pytest.raises(ValueError, match="self-feedback.*not finite.*sign"):
        fieldgen.continuum_one_loop("sign", tau=0.5, sigma_w2=1.0, K0=pair, points=8)
    with pytest.raises(ValueError, match="float64 resolution.*'sign' is not finite"):
        fieldgen.kernel_mean_shift("sign", r=0.1, sigma_w2=1e-30, depth=3, K0=pair)
    assert np.isfinite(
        fieldgen.kernel_mean_shift("sign", r=0.1, sigma_w2=1.0, depth=3, K0=pair)
    ).all()
