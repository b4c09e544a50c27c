"""Response and sensitivity against simulated finite networks.

Derivatives of simulated kernels are central differences with common random numbers: the same
seed at K0 +- h gives each network the same random streams, so the difference quotient is the
network's own pathwise derivative and its mean estimates d E[Khat^L]/dK0, which equals the
mean-field response up to O(1/N) (small against the standard error at these widths). Fixed seeds;
tolerances 4 standard errors; every test has a negative control that must be rejected."""

import numpy as np
from helpers import mean_and_se

import fieldgen
from fieldgen.pairs import to_pairs

PAIR_POSITIONS = ((0, 0), (1, 1), (0, 1))


def _pairs(K):
    return np.stack([K[..., a, b] for a, b in PAIR_POSITIONS], axis=-1)


def _z(mean, se, expected):
    """|mean - expected| / se, with entries that are exactly zero in every network (se = 0)
    required to match exactly."""
    exact = se == 0
    assert np.all(mean[exact] == expected[exact])
    return np.abs(mean - expected)[~exact] / se[~exact]


def test_pair_response_matches_pathwise_derivatives_of_simulated_kernels():
    K0 = np.array([[1.0, 0.6], [0.6, 1.5]])
    kw = dict(r=0.6, sigma_w2=1.4, depth=6, sigma_b2=0.1)
    sim = dict(width=2048, samples=150, method="walk", seed=3)
    h = 1e-4
    columns = []
    for a, b in PAIR_POSITIONS:
        step = np.zeros((2, 2))
        step[a, b] = step[b, a] = h
        up = fieldgen.simulate("erf", K0=K0 + step, **sim, **kw)[:, -1]
        down = fieldgen.simulate("erf", K0=K0 - step, **sim, **kw)[:, -1]
        columns.append(_pairs((up - down) / (2 * h)))
    mean, se = mean_and_se(np.stack(columns, axis=-1))
    chi = to_pairs(fieldgen.response("erf", K0=K0, **kw), groups=2)
    assert np.max(_z(mean, se, chi)) < 4
    # Negative control: only the diagonal components (a theory with only chi_{12,12} and
    # chi_{11,11}); the cross terms chi_{12,11}, chi_{12,22} are needed.
    assert np.max(_z(mean, se, np.diag(np.diag(chi)))) > 10


def test_simulation_confirms_the_optimal_residual_scale():
    """erf, sigma_w^2 = 1, depth 30, c0 = 0.9: simulated S = dc^L/dc^0 at 0.6 r*, r*, 1.6 r*."""
    kw = dict(sigma_w2=1.0, depth=30)
    best = fieldgen.optimal_r("erf", c0=0.9, **kw)
    r = best.r_star * np.array([0.6, 1.0, 1.6])
    h = 1e-4

    def c_out(c, r_value):
        K = fieldgen.simulate(
            "erf",
            r=r_value,
            K0=[[1.0, c], [c, 1.0]],
            width=1024,
            samples=150,
            seed=11,
            method="walk",
            **kw,
        )[:, -1]
        return K[:, 0, 1] / np.sqrt(K[:, 0, 0] * K[:, 1, 1])

    S_hat = np.array([(c_out(0.9 + h, x) - c_out(0.9 - h, x)) / (2 * h) for x in r]).T
    mean, se = mean_and_se(S_hat)
    S = fieldgen.sensitivity("erf", r=r, c0=0.9, **kw)
    assert np.max(np.abs(mean - S) / se) < 4
    # The maximum: with common random numbers across r, the differences are sharp.
    for j in (0, 2):
        gain, gain_se = mean_and_se(S_hat[:, 1] - S_hat[:, j])
        assert gain / gain_se > 4
    # Negative control: chi_{12,12} without the normalisation K^0/K^L.
    KL = fieldgen.kernel("erf", r=r, K0=[[1.0, 0.9], [0.9, 1.0]], **kw)[:, -1, 0, 0]
    assert np.min(np.abs(mean - S * KL) / se) > 10
