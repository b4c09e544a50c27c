"""The one-loop response d E[Khat^L]/dK0 (response_one_loop) against an exact identity and
against finite differences of simulated networks with common random numbers."""

import numpy as np
import pytest
from helpers import extrapolate_in_inverse_width

import fieldgen
from fieldgen.pairs import to_pairs


def test_relu_one_loop_response_follows_from_homogeneity():
    """relu without bias is positively homogeneous of degree one in K0, so
    d E[Khat^L]/dK0 = E[Khat^L]/K0 = chi + (N shift^L / K0) / N exactly."""
    kw = dict(r=0.5, sigma_w2=2.0, depth=10)
    for K0, N in ((1.0, 64), (3.0, 17)):
        shift = fieldgen.kernel_mean_shift("relu", K0=K0, **kw)[-1]
        chi = fieldgen.response("relu", K0=K0, **kw)
        assert fieldgen.response_one_loop("relu", K0=K0, width=N, **kw) == pytest.approx(
            chi + shift / (N * K0), rel=1e-8
        )


def test_pair_one_loop_response_has_the_mean_field_structure_plus_a_small_correction():
    kw = dict(r=0.5, sigma_w2=1.5, depth=5, K0=[[1.0, 0.5], [0.5, 1.2]], sigma_b2=0.1)
    chi = fieldgen.response("erf", **kw)
    for N in (32, 1024):
        corrected = fieldgen.response_one_loop("erf", width=N, **kw)
        assert corrected.shape == (2, 2, 2, 2)
        assert np.max(np.abs(corrected - chi)) < 20 / N
    # the (1/N) term is linear in 1/N
    d1 = fieldgen.response_one_loop("erf", width=100, **kw) - chi
    d2 = fieldgen.response_one_loop("erf", width=200, **kw) - chi
    np.testing.assert_allclose(d1, 2 * d2, rtol=1e-9, atol=1e-15)


def test_one_loop_response_matches_simulated_finite_differences():
    """erf, one input: N (d mean(Khat^L)/dK0 - chi) by common-random-number finite differences at
    three widths, extrapolated in 1/N, against d[N shift]/dK0."""
    kw = dict(r=0.6, sigma_w2=2.0, depth=8)
    K0, eps = 1.0, 0.05
    chi = fieldgen.response("erf", K0=K0, **kw)
    theory = 64 * (fieldgen.response_one_loop("erf", K0=K0, width=64, **kw) - chi)
    widths = [32, 64, 128]
    values, errors = [], []
    for N in widths:
        S = 400 * N
        up = fieldgen.simulate("erf", K0=K0 + eps, width=N, samples=S, method="walk", seed=N, **kw)[
            :, -1
        ]
        down = fieldgen.simulate(
            "erf", K0=K0 - eps, width=N, samples=S, method="walk", seed=N, **kw
        )[:, -1]
        # central difference of the mean-field kernel, to remove its own O(eps^2) curvature
        K = [fieldgen.kernel("erf", K0=k, **kw)[-1] for k in (K0 + eps, K0 - eps)]
        fd = (up - down) / (2 * eps) - (K[0] - K[1]) / (2 * eps)
        values.append(N * fd.mean())
        errors.append(N * fd.std(ddof=1) / np.sqrt(S))
    est, se = extrapolate_in_inverse_width(widths, values, errors)
    assert abs(est - theory) < 4 * se, (est, se, theory)


def test_one_loop_response_at_the_boundary_of_the_cone_is_continuous():
    """At c0 = 1 a central step in K12 leaves the positive semi-definite cone, so the shift's
    derivative is one-sided there; it must join the central value just inside the cone."""
    kw = dict(r=0.3, sigma_w2=1.0, depth=5)
    N = 100

    def one_loop_part(c):
        K0 = [[1.0, c], [c, 1.0]]
        return N * to_pairs(
            fieldgen.response_one_loop("erf", K0=K0, width=N, **kw)
            - fieldgen.response("erf", K0=K0, **kw),
            groups=2,
        )

    edge, inside = one_loop_part(1.0), one_loop_part(0.9999)
    assert np.min(np.abs(edge[2])) > 1e-3  # the correction is resolved, not zero
    np.testing.assert_allclose(edge, inside, rtol=1e-2, atol=1e-6)
    # Far enough inside, the K12 column moves: the check can tell points apart.
    assert abs(one_loop_part(0.99)[2, 2] - edge[2, 2]) > 0.2 * abs(edge[2, 2])
