"""One-loop corrections: exact closed forms, an independent term-by-term summation, quadrature of
the coefficients, and simulations of finite networks extrapolated in 1/N, with negative controls."""

import math

import numpy as np
import pytest
import sympy as sp
from helpers import (
    covariance_and_se,
    extrapolate_in_inverse_width,
    mean_and_se,
    one_loop_by_direct_sums,
    relu_jr,
    relu_psi,
    variance_and_se,
)

import fieldgen
from fieldgen.derivations import one_loop
from fieldgen.generated import module
from fieldgen.oneloop import kernel_covariance, kernel_mean_shift
from fieldgen.pairs import to_pairs


@pytest.mark.parametrize("r,sigma_w2,depth", [(0.5, 2.0, 10), (0.1, 1.0, 40), (1.0, 1.5, 6)])
def test_relu_one_input_equals_the_closed_forms(r, sigma_w2, depth):
    """docs/theory, "relu in closed form":
    N Var(Khat^L)/(K^L)^2 = 2 + (4/a)(1 - a^-L) + 4((a-1)/a)^2 sum Jr(a^(-|m-m'|/2));
    the mean shift composed from Cov(Theta(h^m), relu(h^k)^2) = K^k psi(sqrt(K^k/K^m)) / 2."""
    K0 = 1.7
    a = 1 + r * r * sigma_w2 / 2
    g = r * r * sigma_w2
    K = K0 * a ** np.arange(depth + 1)
    cov = kernel_covariance("relu", r=r, sigma_w2=sigma_w2, depth=depth, K0=K0)
    for L in range(depth + 1):
        s = sum(relu_jr(a ** (-abs(m - mp) / 2)) for m in range(L) for mp in range(L))
        closed = (2 + (4 / a) * (1 - a**-L) + 4 * ((a - 1) / a) ** 2 * s) * K[L] ** 2
        assert cov[L, L] == pytest.approx(closed, rel=1e-10)
    delta, closed_shift = 0.0, [0.0]
    for m in range(depth):
        feedback = sum(
            g * a ** (m - 1 - k) * K[k] * relu_psi(math.sqrt(K[k] / K[m])) / 2 for k in range(m)
        )
        delta += g * (delta / 2 + feedback)
        closed_shift.append(delta)
    np.testing.assert_allclose(
        kernel_mean_shift("relu", r=r, sigma_w2=sigma_w2, depth=depth, K0=K0),
        closed_shift,
        rtol=1e-10,
        atol=1e-300,
    )
    terms = fieldgen.mean_shift_terms("relu", r=r, sigma_w2=sigma_w2, depth=depth, K0=K0)
    assert np.all(terms.tadpole == 0) and np.all(terms.self_feedback[2:] > 0)


@pytest.mark.parametrize("name", ["relu", "erf", "tanh"])
@pytest.mark.parametrize("K0", [np.array([[1.0, 0.5], [0.5, 1.4]]), 0.9], ids=["pair", "single"])
def test_accumulation_equals_term_by_term_sums(name, K0):
    kw = dict(r=0.7, sigma_w2=1.6, depth=4, K0=K0, sigma_b2=0.2)
    cov = kernel_covariance(name, **kw)
    shift = kernel_mean_shift(name, **kw)
    if np.ndim(K0) == 2:  # the reference sums work over pairs (11, 22, 12)
        cov, shift = to_pairs(cov, groups=2), to_pairs(shift)
    K = fieldgen.kernel(name, **kw)
    path = K[:, None] if K.ndim == 1 else np.stack([K[:, 0, 0], K[:, 1, 1], K[:, 0, 1]], -1)
    cov_ref, shift_ref = one_loop_by_direct_sums(name, 0.7, 1.6, np.ascontiguousarray(path))
    if K.ndim == 1:
        cov_ref, shift_ref = cov_ref[:, :, 0, 0], shift_ref[:, 0]
    np.testing.assert_allclose(cov, cov_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(shift, shift_ref, rtol=1e-10, atol=1e-12)
    # symmetry under exchanging the layers (with transposition in pair space)
    if K.ndim == 1:
        np.testing.assert_allclose(cov, cov.T, rtol=1e-12)
    else:
        np.testing.assert_allclose(cov, cov.transpose(1, 0, 3, 2), rtol=1e-12)


# Hand-written phi, and D[phi^2] = (phi^2)''/2, independent of the SymPy derivation.
def _d_phi2(name):
    if name == "relu":
        return lambda x: 1.0 if x > 0 else 0.0
    if name == "erf":
        return lambda x: (
            4 / math.pi * math.exp(-2 * x * x)
            - 4 * x / math.sqrt(math.pi) * math.exp(-x * x) * math.erf(x)
        )
    return lambda x: (1 - math.tanh(x) ** 2) ** 2 - 2 * math.tanh(x) ** 2 * (1 - math.tanh(x) ** 2)


@pytest.mark.parametrize("name", ["relu", "erf", "tanh"])
@pytest.mark.parametrize("ke,kl", [(0.3, 0.5), (1.0, 1.01), (1.0, 3.0), (4.0, 9.0), (20.0, 25.0)])
def test_one_input_coefficients_against_adaptive_quadrature(name, ke, kl, reference):
    gen = module("oneloop", name)
    phi = reference.activation(name)
    sq = lambda x: float(phi(x)) ** 2
    A = np.empty((1, 1))
    gen.four_point_single(np.array([ke]), np.array([kl]), A)
    want = reference.expect_2d(lambda a, b: sq(a) * sq(b), ke, kl, ke) - reference.expect_1d(
        sq, ke
    ) * reference.expect_1d(sq, kl)
    assert A[0, 0] == pytest.approx(want, rel=1e-7, abs=1e-12)
    F = np.empty((1, 1, 1))
    gen.self_feedback_single(np.array([ke]), np.array([kl]), F)
    d = _d_phi2(name)
    want = reference.expect_2d(lambda a, b: sq(a) * d(b), ke, kl, ke) - reference.expect_1d(
        sq, ke
    ) * reference.expect_1d(d, kl)
    assert F[0, 0, 0] == pytest.approx(want, rel=1e-7, abs=1e-12)


@pytest.mark.parametrize("name", ["relu", "erf", "tanh"])
def test_pair_four_point_against_monte_carlo(name, reference):
    """Two inputs: the 3- and 4-dimensional moments (closed form, path integral or Gauss-Hermite)."""
    ke = np.array([1.0, 1.3, 0.6])
    kl = np.array([1.6, 2.1, 0.9])
    A = np.empty((3, 3))
    module("oneloop", name).four_point_pair(ke, kl, A)
    Ke = np.array([[ke[0], ke[2]], [ke[2], ke[1]]])
    Kl = np.array([[kl[0], kl[2]], [kl[2], kl[1]]])
    cov = np.block([[Ke, Ke], [Ke, Kl]])
    rng = np.random.default_rng(0)
    phi = reference.activation(name)
    pairs = [(0, 0), (1, 1), (0, 1)]
    n, chunks = 2_000_000, 5
    sums = np.zeros((3, 3))
    sq = np.zeros((3, 3))
    means_e = np.zeros(3)
    means_l = np.zeros(3)
    for _ in range(chunks):
        h = phi(rng.multivariate_normal(np.zeros(4), cov, size=n))
        e = np.stack([h[:, a] * h[:, b] for a, b in pairs], 1)
        l = np.stack([h[:, 2 + a] * h[:, 2 + b] for a, b in pairs], 1)
        prod = e[:, :, None] * l[:, None, :]
        sums += prod.mean(0)
        sq += (prod**2).mean(0)
        means_e += e.mean(0)
        means_l += l.mean(0)
    sums /= chunks
    sq /= chunks
    means_e /= chunks
    means_l /= chunks
    mc = sums - np.outer(means_e, means_l)
    se = np.sqrt((sq - sums**2) / (n * chunks))
    assert np.max(np.abs(A - mc) / se) < 5


def _simulated(name, widths, samples, kw, seed, entry=(0, 0)):
    """N Var(Khat^L), N Cov(Khat^L, Khat^{L/2}) and N (mean Khat^L - K^L), extrapolated to
    N -> infinity; for two inputs of the kernel entry `entry`."""
    out = {"var": [], "cov": [], "shift": []}
    L = kw["depth"]
    K = fieldgen.kernel(name, **kw)
    if K.ndim > 1:
        K = K[(slice(None),) + entry]
    for N, S in zip(widths, samples):
        Kh = fieldgen.simulate(name, width=N, samples=S, method="walk", seed=seed + N, **kw)
        if Kh.ndim > 2:
            Kh = Kh[(slice(None), slice(None)) + entry]
        x, y = Kh[:, L], Kh[:, L // 2]
        var, se = variance_and_se(x)
        out["var"].append((N * var, N * se))
        cov, se = covariance_and_se(x, y)
        out["cov"].append((N * cov, N * se))
        mean, se = mean_and_se(x)
        out["shift"].append((N * (mean - K[L]), N * se))
    return {
        k: extrapolate_in_inverse_width(widths, [v for v, _ in vals], [e for _, e in vals])
        for k, vals in out.items()
    }


@pytest.mark.parametrize(
    "name,K0",
    [
        ("relu", 1.0),
        ("erf", 1.0),
        ("tanh", 1.0),
        ("relu", np.array([[1.0, 0.5], [0.5, 1.0]])),
        ("erf", np.array([[1.0, 0.5], [0.5, 1.0]])),
    ],
    ids=["relu-1", "erf-1", "tanh-1", "relu-2", "erf-2"],
)
def test_covariance_matches_simulations_extrapolated_in_inverse_width(name, K0):
    kw = dict(r=0.5, sigma_w2=1.5, depth=8, K0=K0, sigma_b2=0.1)
    L = kw["depth"]
    theory = kernel_covariance(name, **kw)
    widths = [64, 128, 256, 512]
    # one input: the kernel; two inputs: K11 and K12 (pair indices 0 and 2)
    cases = [((0, 0), 0)] if np.ndim(K0) == 0 else [((0, 0), 0), ((0, 1), 2)]
    for entry, p in cases:
        sim = _simulated(name, widths, [3000] * 4, kw, seed=1000 + p, entry=entry)
        for key, th in (("var", theory[L, L]), ("cov", theory[L, L // 2])):
            est, se = sim[key]
            value = th if np.ndim(K0) == 0 else th[entry + entry]
            assert abs(est - value) < 4 * se, (key, entry, est, se, value)


def test_negative_control_covariance_without_cross_layer_terms_is_rejected():
    kw = dict(r=0.5, sigma_w2=1.5, depth=8, K0=1.0, sigma_b2=0.1)
    L = kw["depth"]
    K = fieldgen.kernel("relu", **kw)
    diag_only, _ = one_loop_by_direct_sums(
        "relu", 0.5, 1.5, np.ascontiguousarray(K[:, None]), cross_layer=False
    )
    full = kernel_covariance("relu", **kw)
    est, se = _simulated("relu", [64, 128, 256, 512], [3000] * 4, kw, seed=1000)["var"]
    assert abs(est - full[L, L]) < 4 * se
    assert abs(est - diag_only[L, L, 0, 0]) > 6 * se


def test_mean_shift_matches_simulations_and_needs_the_self_feedback():
    """relu, one input: the whole shift is self-feedback (J = 1/2, H = 0); a feed-forward-style
    theory predicts zero and must be rejected."""
    kw = dict(r=0.5, sigma_w2=2.0, depth=10, K0=1.0)
    L = kw["depth"]
    theory = kernel_mean_shift("relu", **kw)[L]
    K = fieldgen.kernel("relu", **kw)
    _, no_feedback = one_loop_by_direct_sums(
        "relu", 0.5, 2.0, np.ascontiguousarray(K[:, None]), self_feedback=False
    )
    widths = [32, 64, 128]
    est, se = _simulated("relu", widths, [800 * N for N in widths], kw, seed=7)["shift"]
    assert abs(est - theory) < 4 * se, (est, se, theory)
    assert abs(est - no_feedback[L, 0]) > 6 * se


def test_first_layer_is_unshifted_exactly_and_the_observable_kernel_tadpole_is_rejected():
    """E[Khat^1] = K^1 exactly (h^0 is i.i.d. N(0, K^0)), so the one-loop shift at l = 1 is 0.
    The observable-kernel tadpole 1/2 H : N Cov(Khat^m) would give g H^0 (K^0)^2 there (erf: H != 0)."""
    kw = dict(r=1.0, sigma_w2=2.0, depth=1, K0=1.0)
    shift = kernel_mean_shift("erf", **kw)
    assert shift[1] == 0.0
    observable_tadpole = 2.0 * module("gauss", "erf").hessian_single(1.0) * 1.0**2
    N, S = 64, 400_000
    Kh = fieldgen.simulate("erf", width=N, samples=S, method="walk", seed=3, **kw)
    mean, se = mean_and_se(Kh[:, 1])
    K1 = fieldgen.kernel("erf", **kw)[1]
    z_ours = N * (mean - K1) / (N * se)
    z_theirs = (N * (mean - K1) - observable_tadpole) / (N * se)
    assert abs(z_ours) < 4 and abs(z_theirs) > 6


def test_inverting_the_action_hessian_gives_the_fluctuation_recursion():
    """Three layers, abstract J^n and A^{mm'}: M^{-1} Sigma M^{-T} from the quadratic action equals
    sum c A c^T of the recursion (the LaTeX export shows both)."""
    check = one_loop.hessian_covariance(3)
    assert check.from_action.shape == (3, 3)
    assert (check.from_action - check.from_recursion).applyfunc(sp.expand) == sp.zeros(3, 3)
    assert check.from_action[2, 2] != 0


def test_reduced_block_is_not_implemented_with_a_clear_message():
    with pytest.raises(NotImplementedError, match="full block"):
        kernel_covariance("relu", r=0.5, sigma_w2=1.0, depth=3, K0=1.0, block="reduced")
