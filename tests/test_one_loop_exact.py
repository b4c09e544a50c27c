"""Every one-loop coefficient of relu and erf to 1e-9 relative against an independent reference.

The generated moments are path integrals of closed forms (Price's theorem along the
cross-covariance path). The reference (tests/one_loop_reference.py) integrates the walk instead,
y = x + z with an independent step z, by nested composite Gauss-Legendre rules cut at the relu
kinks; it agrees with itself to ~1e-14 when the nodes are doubled (checked below). The
self-feedback is checked as the late-kernel derivative of the four-point moment,
F[s, p, q] = dA[q, p] / dKl_s (Price's theorem on the step: d/dKl_s E[g(x + z)] = E[D_s g]),
by finite differences of the generated A, which is itself checked against the reference; the
Jacobian by finite differences of the reference's P, the Hessian by those of the Jacobian.
"""

import numpy as np
import pytest
from one_loop_reference import PAIRS, Walk

from fieldgen.generated import module

C0 = (-0.9, 0.0, 0.5, 0.99)
STEP = np.array([[0.3, 0.1], [0.1, 0.5]])  # Kl - Ke: a walk step, positive definite
# Nine-point central differences (eighth order) in a step H min(|x|, 1): truncation ~H^8,
# round-off ~1e-16 / H; the step stays within a fortieth of the distance to |c| = 1.
H = 1e-2
_STENCIL = {1: 4 / 5, 2: -1 / 5, 3: 4 / 105, 4: -1 / 280}


def _pair_kernels(c0, scale=1.0):
    """Early kernel with unequal norms (1, 2) and correlation c0, late = early + STEP."""
    Ke = scale * np.array([[1.0, c0 * np.sqrt(2.0)], [c0 * np.sqrt(2.0), 2.0]])
    return Ke, Ke + scale * STEP


def _vec(K):
    K = np.atleast_2d(K)
    return np.array([K[0, 0]]) if len(K) == 1 else np.array([K[0, 0], K[1, 1], K[0, 1]])


def _call(gen, name, *args, shape):
    out = np.empty(shape)
    getattr(gen, name)(*args, out)
    return out


def _close(got, want, rel=1e-9):
    """Entry-wise relative agreement; entries that vanish by symmetry are compared with the
    largest entry's scale."""
    floor = 1e-3 * np.max(np.abs(want))
    assert np.all(np.abs(got - want) <= rel * np.maximum(np.abs(want), floor)), np.max(
        np.abs(got - want) / np.maximum(np.abs(want), floor)
    )


def _derivative(f, x, i):
    """d f / d x_i by nine-point central differences; x a kernel in pair order (or one entry)."""
    size = np.sqrt(x[0] * x[1]) if len(x) == 3 and i == 2 else x[i]
    h = H * min(size, 1.0)  # erf saturates: its moments vary on the scale 1 at large K
    if len(x) == 3:  # keep |c| < 1 and the variances positive at x +- 4h
        room = (
            np.sqrt(x[0] * x[1]) - abs(x[2]) if i == 2 else x[i] * (1 - x[2] ** 2 / (x[0] * x[1]))
        )
        h = min(h, room / 40)

    def at(d):
        y = np.array(x, dtype=float)
        y[i] += d
        return f(y)

    return sum(c * (at(j * h) - at(-j * h)) for j, c in _STENCIL.items()) / h


# ---- the reference itself ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["relu", pytest.param("erf", marks=pytest.mark.slow)])
def test_reference_converges_when_the_nodes_are_doubled(name):
    Ke, Kl = _pair_kernels(0.99)
    coarse = Walk(name, Ke, Kl, n=10).four_point()
    fine = Walk(name, Ke, Kl, n=16).four_point()
    _close(coarse, fine, rel=1e-12)


# ---- four-point moment ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["relu", "erf"])
@pytest.mark.parametrize("ke,kl", [(1.0, 1.0), (0.3, 0.5), (1.0, 3.0), (20.0, 21.0)])
def test_single_four_point_against_the_walk_reference(name, ke, kl):
    gen = module("oneloop", name)
    got = _call(gen, "four_point_single", np.array([ke]), np.array([kl]), shape=(1, 1))
    _close(got, Walk(name, [[ke]], [[kl]], n=16).four_point())


@pytest.mark.parametrize(
    "c0", [pytest.param(c, marks=() if c == 0.5 else pytest.mark.slow) for c in C0]
)
@pytest.mark.parametrize("name", ["relu", "erf"])
def test_pair_four_point_against_the_walk_reference(name, c0):
    """All nine entries, the 4-D (12, 12) one included (relu: was tensor Gauss-Hermite, 1e-3)."""
    Ke, Kl = _pair_kernels(c0)
    gen = module("oneloop", name)
    got = _call(gen, "four_point_pair", _vec(Ke), _vec(Kl), shape=(3, 3))
    _close(got, Walk(name, Ke, Kl, n=10).four_point())


@pytest.mark.parametrize("scale", [1e-2, 30.0, 1e3])
def test_erf_four_point_at_small_and_large_kernels(scale):
    """erf's path integrands approach a branch point at s = 1 as K grows (the rule's hard case)."""
    gen = module("oneloop", "erf")
    got = _call(gen, "four_point_single", np.array([scale]), np.array([1.01 * scale]), shape=(1, 1))
    _close(got, Walk("erf", [[scale]], [[1.01 * scale]], n=16).four_point())


@pytest.mark.parametrize("c0", C0)
@pytest.mark.parametrize("name", ["relu", "erf", "tanh"])
def test_joint_four_point_and_self_feedback_body_equals_the_separate_ones(name, c0):
    """The mean shift evaluates each layer pair by one body for both moments (one CSE, one
    path-integral loop); it must give what the separately checked functions give."""
    gen = module("oneloop", name)
    for ke, kl, d, which in (
        (*map(_vec, _pair_kernels(c0)), 3, "pair"),
        (np.array([1.0 + c0]), np.array([1.5 + c0]), 1, "single"),
    ):
        a, f = np.empty((d, d)), np.empty((d, d, d))
        getattr(gen, f"four_point_self_feedback_{which}")(ke, kl, a, f)
        _close(a, _call(gen, f"four_point_{which}", ke, kl, shape=(d, d)), rel=1e-12)
        _close(f, _call(gen, f"self_feedback_{which}", ke, kl, shape=(d, d, d)), rel=1e-12)


def test_negative_control_joint_body_with_the_moments_swapped_in_layer_is_rejected():
    """The same comparison rejects the moments of the pair taken the other way round (early and
    late kernels exchanged), as a swap of the arguments in the accumulation would give."""
    gen = module("oneloop", "relu")
    ke, kl = map(_vec, _pair_kernels(0.5))
    a, f = np.empty((3, 3)), np.empty((3, 3, 3))
    gen.four_point_self_feedback_pair(kl, ke, a, f)
    with pytest.raises(AssertionError):
        _close(a, _call(gen, "four_point_pair", ke, kl, shape=(3, 3)), rel=1e-12)


# ---- self-feedback, Jacobian, Hessian: derivatives ----------------------------------------


@pytest.mark.parametrize("name", ["relu", "erf"])
@pytest.mark.parametrize("c0", C0)
def test_pair_self_feedback_is_the_late_derivative_of_the_four_point_moment(name, c0):
    Ke, Kl = _pair_kernels(c0)
    ke, kl = _vec(Ke), _vec(Kl)
    gen = module("oneloop", name)
    F = _call(gen, "self_feedback_pair", ke, kl, shape=(3, 3, 3))
    for s in range(3):
        dA = _derivative(lambda k: _call(gen, "four_point_pair", ke, k, shape=(3, 3)), kl, s)
        _close(F[s], dA.T, rel=1e-8)


@pytest.mark.parametrize("name", ["relu", "erf"])
@pytest.mark.parametrize("ke,kl", [(1.0, 1.3), (0.3, 0.5), (20.0, 21.0)])
def test_single_self_feedback_is_the_late_derivative_of_the_four_point_moment(name, ke, kl):
    gen = module("oneloop", name)
    F = _call(gen, "self_feedback_single", np.array([ke]), np.array([kl]), shape=(1, 1, 1))
    dA = _derivative(
        lambda k: _call(gen, "four_point_single", np.array([ke]), k, shape=(1, 1)),
        np.array([kl]),
        0,
    )
    _close(F[0], dA.T, rel=1e-8)


def test_negative_control_self_feedback_transposed_is_rejected():
    """The check can fail: F[s] against dA/dKl_s without the transposition (p and q swapped)."""
    Ke, Kl = _pair_kernels(0.5)
    ke, kl = _vec(Ke), _vec(Kl)
    gen = module("oneloop", "relu")
    F = _call(gen, "self_feedback_pair", ke, kl, shape=(3, 3, 3))
    dA = _derivative(lambda k: _call(gen, "four_point_pair", ke, k, shape=(3, 3)), kl, 2)
    with pytest.raises(AssertionError):
        _close(F[2], dA, rel=1e-8)


@pytest.mark.parametrize("name", ["relu", "erf"])
@pytest.mark.parametrize("c0", C0)
def test_pair_jacobian_and_hessian_against_derivatives_of_the_reference(name, c0):
    K, _ = _pair_kernels(c0)
    k = _vec(K)
    gen = module("oneloop", name)

    def P(v):
        Kv = np.array([[v[0], v[2]], [v[2], v[1]]])
        walk = Walk(name, Kv, Kv, n=10)
        return np.array([walk.expect(p, lambda x1, x2, p=p: walk._early(p, x1, x2)) for p in PAIRS])

    J = _call(gen, "jacobian_pair", k, shape=(3, 3))
    for s in range(3):
        _close(J[:, s], _derivative(P, k, s), rel=1e-9)
    Hs = _call(gen, "hessian_pair", k, shape=(3, 3, 3))  # [p, q, s] = d2 P_p / dK_q dK_s
    for q in range(3):
        dJ = _derivative(lambda v: _call(gen, "jacobian_pair", v, shape=(3, 3)), k, q)
        _close(Hs[:, q, :], dJ, rel=1e-8)


# ---- response cross term and sampling noise -----------------------------------------------


@pytest.mark.parametrize("name", ["relu", "erf"])
@pytest.mark.parametrize("c0", C0)
def test_pair_response_cross_and_sampling_noise_against_the_reference(name, c0):
    """B[p, (a,b)] = E[phi phi_p(x) x_a x_b] - P_p Kc_ab and X[(c,d), (a,b)] = E[x_c x_d x_a x_b]
    - Kc_cd Kc_ab (the step z is independent of x and has mean 0)."""
    K, _ = _pair_kernels(c0)
    k = _vec(K)
    gen = module("oneloop", name)
    J = _call(gen, "jacobian_pair", k, shape=(3, 3))
    B = _call(gen, "response_cross_pair", k, J, shape=(3, 3))
    X = _call(gen, "sampling_noise_pair", k, shape=(3, 3))
    walk = Walk(name, K, K, n=10)
    smooth = Walk("erf", K, K, n=10)  # no kinks: a rule over the whole plane
    want_B, want_X = np.empty((3, 3)), np.empty((3, 3))
    for i, p in enumerate(PAIRS):
        P_p = walk.expect(p, lambda x1, x2, p=p: walk._early(p, x1, x2))
        for j, (a, b) in enumerate(PAIRS):
            want_B[i, j] = (
                walk.expect(
                    p,
                    lambda x1, x2, p=p, a=a, b=b: (
                        walk._early(p, x1, x2) * (x1, x2)[a] * (x1, x2)[b]
                    ),
                )
                - P_p * K[a, b]
            )
            c, d = p
            want_X[i, j] = (
                smooth.expect(
                    (),
                    lambda x1, x2, a=a, b=b, c=c, d=d: (
                        (x1, x2)[c] * (x1, x2)[d] * (x1, x2)[a] * (x1, x2)[b]
                    ),
                )
                - K[c, d] * K[a, b]
            )
    _close(B, want_B, rel=1e-9)
    _close(X, want_X, rel=1e-9)
