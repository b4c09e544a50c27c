"""Generated Gaussian expectations and derivatives against independent quadrature, finite
differences and Price's theorem; the vectorisable arcsin/arccos against libm."""

import math

import numpy as np
import pytest

from fieldgen.generated import module

# (K11, K22, rho): ordinary, small and large variances, correlations up to the boundary.
KERNELS = [
    (1.0, 1.0, 0.5),
    (0.3, 2.0, -0.4),
    (1.0, 1.0, 0.99),
    (2.0, 0.5, -0.999),
    (0.05, 0.02, 0.3),
    (10.0, 30.0, 0.9),
    (1.0, 1.0, 1.0),
    (1.5, 0.7, -1.0),
    (100.0, 50.0, 0.8),
]


def pair(k11, k22, rho):
    return k11, k22, rho * math.sqrt(k11 * k22)


@pytest.mark.parametrize("name", ["relu", "erf", "linear", "tanh"])
@pytest.mark.parametrize("kernel", KERNELS)
def test_pair_expectation_against_adaptive_quadrature(name, kernel, reference):
    K = pair(*kernel)
    got = module("gauss", name).expect_pair(*K)
    want = reference.pair_expectation(name, *K)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", ["relu", "erf", "linear", "tanh"])
@pytest.mark.parametrize("K", [1e-3, 0.2, 1.0, 7.0, 100.0, 1e4])
def test_single_expectation_and_mean_against_quadrature(name, K, reference):
    gen = module("gauss", name)
    phi = reference.activation(name)
    assert gen.expect_single(K) == pytest.approx(
        reference.expect_1d(lambda x: phi(x) ** 2, K), rel=1e-9, abs=1e-14
    )
    assert gen.mean_single(K) == pytest.approx(reference.expect_1d(phi, K), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("kernel", KERNELS)
def test_relu_matches_the_arc_cosine_kernel(kernel):
    k11, k22, k12 = pair(*kernel)
    theta = math.acos(max(-1.0, min(1.0, k12 / math.sqrt(k11 * k22))))
    arccos_kernel = (
        math.sqrt(k11 * k22)
        / (2 * math.pi)
        * (math.sin(theta) + (math.pi - theta) * math.cos(theta))
    )
    p11, p22, p12 = module("gauss", "relu").expect_pair(k11, k22, k12)
    assert (p11, p22) == pytest.approx((k11 / 2, k22 / 2), rel=1e-15)
    assert p12 == pytest.approx(arccos_kernel, rel=1e-13, abs=1e-15)


def _fd_jacobian(f, K, h):
    J = np.empty((3, 3))
    for s in range(3):
        up, down = list(K), list(K)
        up[s] += h
        down[s] -= h
        J[:, s] = (np.array(f(*up)) - np.array(f(*down))) / (2 * h)
    return J


INTERIOR = [k for k in KERNELS if abs(k[2]) < 0.995]


@pytest.mark.parametrize("name", ["relu", "erf", "linear", "tanh"])
@pytest.mark.parametrize("kernel", INTERIOR)
def test_jacobian_and_hessian_against_finite_differences(name, kernel):
    gen = module("gauss", name)
    K = pair(*kernel)
    h = 1e-5 * max(1.0, min(K[0], K[1]))
    J = np.empty((3, 3))
    gen.jacobian_pair(*K, J)
    np.testing.assert_allclose(J, _fd_jacobian(gen.expect_pair, K, h), rtol=2e-6, atol=1e-8)

    def jac(*k):
        out = np.empty((3, 3))
        gen.jacobian_pair(*k, out)
        return out

    H = np.empty((3, 3, 3))
    gen.hessian_pair(*K, H)
    for q in range(3):
        up, down = list(K), list(K)
        up[q] += h
        down[q] -= h
        fd = (jac(*up) - jac(*down)) / (2 * h)
        np.testing.assert_allclose(H[:, q, :], fd, rtol=2e-5, atol=1e-6)
    # one input: the diagonal
    k = K[0]
    assert gen.jacobian_single(k) == pytest.approx(
        (gen.expect_single(k + h) - gen.expect_single(k - h)) / (2 * h), rel=1e-7, abs=1e-10
    )
    assert gen.hessian_single(k) == pytest.approx(
        (gen.jacobian_single(k + h) - gen.jacobian_single(k - h)) / (2 * h), rel=1e-5, abs=1e-8
    )


# Price's theorem with derivatives of phi written by hand, independent of the SymPy derivation.
def _price_integrands(name):
    if name == "erf":
        d1 = lambda x: 2 / math.sqrt(math.pi) * math.exp(-x * x)
        d2 = lambda x: -4 * x / math.sqrt(math.pi) * math.exp(-x * x)
        return d1, d2
    if name == "tanh":
        d1 = lambda x: 1 / math.cosh(x) ** 2
        d2 = lambda x: -2 * math.tanh(x) / math.cosh(x) ** 2
        return d1, d2
    raise KeyError(name)


@pytest.mark.parametrize("name", ["erf", "tanh"])
@pytest.mark.parametrize("kernel", INTERIOR[:6])
def test_price_theorem_for_smooth_activations(name, kernel, reference):
    phi = reference.activation(name)
    d1, d2 = _price_integrands(name)
    K = pair(*kernel)
    J = np.empty((3, 3))
    module("gauss", name).jacobian_pair(*K, J)
    # dP12/dK12 = <phi'(h1) phi'(h2)>,  dP12/dK11 = 1/2 <phi''(h1) phi(h2)>
    assert J[2, 2] == pytest.approx(reference.expect_2d(lambda a, b: d1(a) * d1(b), *K), rel=1e-8)
    assert J[2, 0] == pytest.approx(
        0.5 * reference.expect_2d(lambda a, b: d2(a) * phi(b), *K), rel=1e-8, abs=1e-12
    )
    # dP11/dK11 = <phi'^2 + phi phi''>
    assert J[0, 0] == pytest.approx(
        reference.expect_1d(lambda x: d1(x) ** 2 + phi(x) * d2(x), K[0]), rel=1e-8
    )


@pytest.mark.parametrize("kernel", INTERIOR[:6])
def test_price_theorem_for_relu(kernel, reference):
    """phi' = step, phi'' = delta: <phi' phi'> is an orthant probability and
    1/2 <delta(h1) relu(h2)> = N(0; K11)/2 * E[relu(h2) | h1 = 0]."""
    K = pair(*kernel)
    J = np.empty((3, 3))
    module("gauss", "relu").jacobian_pair(*K, J)
    step = lambda x: 1.0 if x > 0 else 0.0
    assert J[2, 2] == pytest.approx(
        reference.expect_2d(lambda a, b: step(a) * step(b), *K), rel=1e-8
    )
    conditional_var = K[1] - K[2] ** 2 / K[0]
    half_delta = (
        0.5
        / math.sqrt(2 * math.pi * K[0])
        * reference.expect_1d(lambda x: max(x, 0.0), conditional_var)
    )
    assert J[2, 0] == pytest.approx(half_delta, rel=1e-8)
    assert J[0, 0] == pytest.approx(0.5, rel=1e-15)


def test_vectorisable_arcsin_matches_libm_to_3_ulp():
    from fieldgen.generated.shared import _asin as asin

    xs = np.concatenate(
        [
            np.linspace(-1, 1, 20001),
            np.geomspace(1e-300, 1, 2000),
            [0.5, -0.5, np.nextafter(0.5, 1), np.nextafter(0.5, 0), 1.0, -1.0, 0.0],
        ]
    )
    worst = max(abs(asin(x) - math.asin(x)) / max(abs(math.asin(x)), 1e-300) for x in xs)
    assert worst < 3 * np.finfo(float).eps


@pytest.mark.parametrize("order", [1, 2])
def test_delta_derivative_expectation_by_parts(order):
    """<delta^(n)(x1) g(x2)> (n = 1, 2) against -d/dx1 (n = 1) or d2/dx1^2 (n = 2) of the density,
    integrated against g by adaptive quadrature (finite differences in x1 at step 1e-4)."""
    import sympy as sp
    from scipy import integrate

    from fieldgen.derivations import closed_forms
    from fieldgen.derivations.expectation import expect, variables

    x1, x2 = variables(2)
    entries = (sp.Rational(13, 10), sp.Rational(7, 10), sp.Rational(4, 10))
    C = np.array([[1.3, 0.4], [0.4, 0.7]])
    Ci, det = np.linalg.inv(C), np.linalg.det(C)

    def p(a, b):
        v = np.array([a, b])
        return np.exp(-v @ Ci @ v / 2) / (2 * np.pi * np.sqrt(det))

    h = 1e-4
    e = closed_forms.close(
        expect(sp.DiracDelta(x1, order) * sp.exp(x2) * sp.Heaviside(x2), entries)
    )
    value = float(sp.N(e, 30))
    if order == 1:
        ref = -integrate.quad(lambda b: np.exp(b) * (p(h, b) - p(-h, b)) / (2 * h), 0, 30)[0]
    else:
        ref = integrate.quad(
            lambda b: np.exp(b) * (p(h, b) - 2 * p(0, b) + p(-h, b)) / h**2, 0, 30
        )[0]
    assert value == pytest.approx(ref, rel=1e-6)
    # the negative control: the sign of the integration by parts matters
    assert -value != pytest.approx(ref, rel=1e-2)
