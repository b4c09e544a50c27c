"""Statistics helpers shared by the statistical tests."""

import math
import zlib

import numpy as np

# The sample statistics are shared with the report's error bars.
from fieldgen.stats import covariance_and_se, mean_and_se, variance_and_se  # noqa: F401


def max_abs_z(samples: np.ndarray, expected: np.ndarray) -> float:
    """Largest |mean - expected| / standard error over all entries."""
    mean, se = mean_and_se(samples)
    return float(np.max(np.abs(mean - expected) / se))


def seed_of(*parts) -> int:
    """A fixed seed derived from a test's parameters (stable across processes)."""
    return zlib.crc32(repr(parts).encode())


def extrapolate_in_inverse_width(widths, values, errors):
    """Weighted least-squares line a + b/N through (1/N, value); returns (a, standard error of a)."""
    x = 1.0 / np.asarray(widths, dtype=float)
    w = 1.0 / np.asarray(errors, dtype=float) ** 2
    design = np.stack([np.ones_like(x), x], axis=1)
    cov = np.linalg.inv(design.T @ (w[:, None] * design))
    beta = cov @ design.T @ (w * np.asarray(values, dtype=float))
    return float(beta[0]), float(np.sqrt(cov[0, 0]))


def one_loop_by_direct_sums(activation, r, sigma_w2, path, cross_layer=True, self_feedback=True):
    """The one-loop formulas summed term by term (O(L^4)), from the generated coefficients.

    An independent implementation of the accumulation (transfer products, V, U, X, tadpole,
    self-feedback). `cross_layer=False` drops the m != m' terms of sum c A c^T and
    `self_feedback=False` drops the self-feedback: the negative controls.
    """
    from fieldgen.generated import module

    gen = module("oneloop", activation)
    L = path.shape[0] - 1
    D = path.shape[1]
    which = "single" if D == 1 else "pair"
    call = lambda name, *args, shape: (
        getattr(gen, f"{name}_{which}")(*args, out := np.empty(shape)),
        out,
    )[1]
    g = r * r * sigma_w2
    J = [call("jacobian", path[m], shape=(D, D)) for m in range(L + 1)]
    H = [call("hessian", path[m], shape=(D, D, D)) for m in range(L + 1)]
    T = [np.eye(D) + g * J[m] for m in range(L + 1)]

    def c(l, m):
        """c_{l,m} = g T^{l-1} ... T^{m+1}."""
        prod = np.eye(D)
        for n in range(l - 1, m, -1):
            prod = prod @ T[n]
        return g * prod

    def A(m, mp):
        if m == mp:
            a = call("four_point", path[m], path[m], shape=(D, D))
            return (a + a.T) / 2
        if m < mp:
            return call("four_point", path[m], path[mp], shape=(D, D))
        return call("four_point", path[mp], path[m], shape=(D, D)).T

    def B(m, l):
        return call("response_cross", path[min(m, l)], J[m], shape=(D, D))

    V = np.zeros((L + 1, L + 1, D, D))
    cov = np.zeros((L + 1, L + 1, D, D))
    for l in range(L + 1):
        for lp in range(L + 1):
            for m in range(l):
                for mp in range(lp):
                    if cross_layer or m == mp:
                        V[l, lp] += c(l, m) @ A(m, mp) @ c(lp, mp).T
            U1 = sum((c(l, m) @ B(m, lp) for m in range(l)), np.zeros((D, D)))
            U2 = sum((c(lp, mp) @ B(mp, l) for mp in range(lp)), np.zeros((D, D)))
            X = call("sampling_noise", path[min(l, lp)], shape=(D, D))
            cov[l, lp] = V[l, lp] + U1 + U2.T + X
    delta = np.zeros(D)
    shift = [delta.copy()]
    for m in range(L):
        mu = J[m] @ delta + 0.5 * np.einsum("pqs,qs->p", H[m], V[m, m])
        if self_feedback:
            for k in range(m):
                F = call("self_feedback", path[k], path[m], shape=(D, D, D))
                mu = mu + np.einsum("sq,spq->p", c(m, k), F)
        delta = delta + g * mu
        shift.append(delta.copy())
    return cov, np.array(shift)


def relu_jr(rho):
    """relu's normalised four-point function along the walk, Jr(rho) of docs/theory ("relu in
    closed form"): Cov(relu(h)^2, relu(h')^2) / (K K') at correlation rho, minus its rho = 0 part."""
    return (3 * rho * math.sqrt(1 - rho**2) + (math.pi - math.acos(rho)) * (1 + 2 * rho**2)) / (
        2 * math.pi
    ) - 0.25


def relu_psi(rho):
    """psi(rho) of docs/theory ("relu in closed form"): Cov(Theta(h), relu(h')^2) = K' psi / 2."""
    return (math.asin(rho) + rho * math.sqrt(1 - rho**2)) / math.pi
