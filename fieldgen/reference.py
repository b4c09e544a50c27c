"""Independent numeric references: adaptive quadrature (SciPy's QUADPACK) and plain NumPy
recursions. Slow, simple and separate from the generated code, they are what the tests trust.

Needs SciPy (``pip install fieldgen[test]``).
"""

from __future__ import annotations

import math

import numpy as np

SQRT_2PI = math.sqrt(2 * math.pi)


def activation(name: str):
    """phi as a NumPy function, written independently of the SymPy definitions."""
    from scipy import special

    return {
        "relu": lambda x: np.maximum(x, 0.0),
        "erf": special.erf,
        "tanh": np.tanh,
        "linear": lambda x: np.asarray(x, dtype=float),
    }[name]


def _quad(f, a, b):
    from scipy import integrate

    value, _ = integrate.quad(f, a, b, epsabs=1e-13, epsrel=1e-12, limit=400)
    return value


def _density(z):
    return math.exp(-0.5 * z * z) / SQRT_2PI


def expect_1d(f, variance: float, points=(0.0,)) -> float:
    """<f(h)> for h ~ N(0, variance), split at the given points of h (kinks)."""
    s = math.sqrt(variance)
    if s == 0:
        return float(f(0.0))
    cuts = sorted({p / s for p in points} | {-12.0, 12.0})
    cuts = [c for c in cuts if -12.0 <= c <= 12.0]
    return sum(_quad(lambda z: float(f(s * z)) * _density(z), a, b) for a, b in zip(cuts, cuts[1:]))


def expect_2d(f, k11: float, k22: float, k12: float) -> float:
    """<f(h1, h2)> for (h1, h2) ~ N(0, K), nested adaptive quadrature split at h1 = 0, h2 = 0."""
    s1 = math.sqrt(k11)
    c = k12 / s1 if s1 > 0 else 0.0
    s2 = math.sqrt(max(k22 - c * c, 0.0))

    def inner(z1):
        h1 = s1 * z1
        m = c * z1
        if s2 == 0:
            return float(f(h1, m))
        zc = -m / s2
        cuts = sorted({-12.0, 12.0, min(max(zc, -12.0), 12.0)})
        return sum(
            _quad(lambda z2: float(f(h1, m + s2 * z2)) * _density(z2), a, b)
            for a, b in zip(cuts, cuts[1:])
        )

    return _quad(lambda z1: inner(z1) * _density(z1), -12.0, 0.0) + _quad(
        lambda z1: inner(z1) * _density(z1), 0.0, 12.0
    )


def pair_expectation(name: str, k11: float, k22: float, k12: float):
    phi = activation(name)
    return (
        expect_1d(lambda x: phi(x) ** 2, k11),
        expect_1d(lambda x: phi(x) ** 2, k22),
        expect_2d(lambda a, b: phi(a) * phi(b), k11, k22, k12),
    )


def kernel_recursion(name: str, *, r, sigma_w2, depth, K0, sigma_b2=0.0, block="full"):
    """Mean-field kernel by a plain loop over layers with quadrature expectations (two inputs,
    K0 a 2x2 matrix), written from the model definition: full block K += r^2 (sw2 P(K) + sb2);
    reduced block with the pre-activations' common mean m tracked explicitly."""
    phi = activation(name)
    K = np.array(K0, dtype=float)
    m = np.zeros(2)
    out = [K.copy()]
    for _ in range(depth):
        if block == "full":
            p11, p22, p12 = pair_expectation(name, K[0, 0], K[1, 1], K[0, 1])
            P = np.array([[p11, p12], [p12, p22]])
            K = K + r**2 * (sigma_w2 * P + sigma_b2)
        else:
            C = sigma_w2 * K + sigma_b2
            p11, p22, p12 = pair_expectation(name, C[0, 0], C[1, 1], C[0, 1])
            P = np.array([[p11, p12], [p12, p22]])
            mu = np.array([expect_1d(phi, C[0, 0]), expect_1d(phi, C[1, 1])])
            K = K + r * (np.outer(m, mu) + np.outer(mu, m)) + r**2 * P
            m = m + r * mu
        out.append(K.copy())
    return np.array(out)
