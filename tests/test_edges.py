"""Numerical edges of the public API: each documented behaviour (README "Edge cases") is tested.

identical and anti-correlated inputs (c0 = +-1), a zero input variance, r = 0 (the identity
network), kernels that leave the float64 range, correlations on the boundary of [-1, 1]. Nothing
returns NaN: a result is finite, or an OverflowError names the layer, or a ValueError names K0.
"""

import itertools

import numpy as np
import pytest

import fieldgen
from fieldgen.pairs import to_pairs

ALL = ("relu", "erf", "linear", "tanh")


def correlation(K):
    """c^l of a kernel path (..., 2, 2)."""
    return K[..., 0, 1] / np.sqrt(K[..., 0, 0] * K[..., 1, 1])


def isserlis(K0):
    """Cov(h_a h_b, h_g h_d) = K_ag K_bd + K_ad K_bg, indexed [a, b, g, d]."""
    return np.einsum("ag,bd->abgd", K0, K0) + np.einsum("ad,bg->abgd", K0, K0)


# ---- c0 = +-1 and the boundary of [-1, 1] -----------------------------------------------------

# The validation accepts K12^2 <= K11 K22 (1 + 1e-12): the last one is outside [-1, 1] by
# round-off, which the clamped correlation of the generated code must absorb.
BOUNDARY = {
    "identical": [[1.0, 1.0], [1.0, 1.0]],
    "opposite": [[1.0, -1.0], [-1.0, 1.0]],
    "proportional": [[1.0, 2.0], [2.0, 4.0]],
    "over by round-off": [[2.0, 2.0 * (1 + 4e-13)], [2.0 * (1 + 4e-13), 2.0]],
}


@pytest.mark.parametrize(
    "activation,block,sigma_b2", list(itertools.product(ALL, ("full", "reduced"), (0.0, 0.3)))
)
def test_kernel_keeps_correlations_inside_minus_one_one(activation, block, sigma_b2):
    for K0 in BOUNDARY.values():
        K = fieldgen.kernel(
            activation, r=[0.3, 1.5], sigma_w2=2.0, sigma_b2=sigma_b2, depth=12, K0=K0, block=block
        )
        c = correlation(K)
        assert np.all(np.isfinite(K)) and np.all(np.abs(c) <= 1.0), (K0, c)


@pytest.mark.parametrize("activation,block", list(itertools.product(ALL, ("full", "reduced"))))
def test_response_and_sensitivity_are_finite_at_full_correlation(activation, block):
    """relu's arc-cosine kernel has a square-root singularity at rho = 1 in its derivative; the
    response there is the one-sided limit, finite, and for identical inputs S = 1 exactly up to
    round-off (c stays 1)."""
    for K0 in BOUNDARY.values():
        chi = fieldgen.response(activation, r=0.4, sigma_w2=2.0, depth=10, K0=K0, block=block)
        assert np.all(np.isfinite(chi)), K0
    for c0 in (1.0, -1.0):
        S = fieldgen.sensitivity(
            activation, r=[0.1, 0.4, 1.0], sigma_w2=2.0, depth=10, c0=c0, block=block
        )
        assert np.all(np.isfinite(S)), c0
    if activation == "relu" and block == "full":
        assert fieldgen.sensitivity("relu", r=0.4, sigma_w2=2.0, depth=10, c0=1.0) == pytest.approx(
            1.0, abs=1e-6
        )


@pytest.mark.parametrize("activation", ["erf", "linear", "tanh"])
def test_one_loop_of_identical_inputs_is_the_one_input_result_in_every_pair_entry(activation):
    """h_1 = h_2 in every network: Khat_11 = Khat_22 = Khat_12, so all nine covariance entries
    and all three shift entries equal the one-input values, to 1e-9 (tanh's pair moments use
    the trapezoidal rule in 3-D/4-D, collapsed here onto two axes; its one-input ones tables)."""
    kw = dict(r=0.4, sigma_w2=1.5, depth=3)
    one = fieldgen.kernel_covariance(activation, K0=1.3, **kw)
    pair = fieldgen.kernel_covariance(activation, K0=[[1.3, 1.3], [1.3, 1.3]], **kw)
    tol = 1e-9
    np.testing.assert_allclose(
        pair,
        np.broadcast_to(one[..., None, None, None, None], pair.shape),
        rtol=tol,
        atol=tol * np.abs(one).max(),
    )
    one_shift = fieldgen.kernel_mean_shift(activation, K0=1.3, **kw)
    pair_shift = fieldgen.kernel_mean_shift(activation, K0=[[1.3, 1.3], [1.3, 1.3]], **kw)
    np.testing.assert_allclose(
        pair_shift,
        np.broadcast_to(one_shift[:, None, None], pair_shift.shape),
        rtol=tol,
        atol=tol * (np.abs(one_shift).max() + 1),
    )


@pytest.mark.parametrize("K0", [BOUNDARY["identical"], BOUNDARY["opposite"]])
def test_one_loop_relu_mean_shift_at_full_correlation_is_a_value_error_naming_K0(K0):
    """The mean shift evaluates relu's pair Hessian at K^0; it has 1/sqrt(1 - c^2) terms."""
    with pytest.raises(ValueError, match=r"K0 is outside the domain .*\|c\| = 1"):
        fieldgen.kernel_mean_shift("relu", r=0.3, sigma_w2=2.0, depth=3, K0=K0)


@pytest.mark.parametrize("K0", [BOUNDARY["identical"], BOUNDARY["opposite"]])
def test_one_loop_relu_covariance_at_full_correlation_is_the_limit_from_inside(K0):
    """The covariance needs no Hessian: at |c| = 1 it is finite and the limit from inside."""
    K0 = np.asarray(K0, dtype=float)
    edge = fieldgen.kernel_covariance("relu", r=0.3, sigma_w2=2.0, depth=3, K0=K0)
    inside = fieldgen.kernel_covariance(
        "relu", r=0.3, sigma_w2=2.0, depth=3, K0=K0 * [[1, 1 - 1e-9], [1 - 1e-9, 1]]
    )
    assert np.isfinite(edge).all()
    np.testing.assert_allclose(edge, inside, rtol=0, atol=1e-7 * np.abs(edge).max())


# ---- a zero variance ------------------------------------------------------------------------


@pytest.mark.parametrize("activation", ALL)
def test_zero_input_kernel_stays_zero_and_has_no_fluctuations(activation):
    """K0 = 0 without bias: h = 0 in every layer (every phi here has phi(0) = 0, and the reduced
    block's relu mean is sqrt(sigma_w2 K)... = 0), so K^l = 0, Cov = 0 and the shift is 0."""
    for block in ("full", "reduced"):
        assert np.all(
            fieldgen.kernel(activation, r=0.5, sigma_w2=2.0, depth=6, K0=0.0, block=block) == 0.0
        )
        assert np.all(
            fieldgen.kernel(
                activation, r=0.5, sigma_w2=2.0, depth=6, K0=np.zeros((2, 2)), block=block
            )
            == 0.0
        )
    kw = dict(r=0.5, sigma_w2=2.0, depth=4, K0=0.0)
    assert np.all(fieldgen.kernel_covariance(activation, **kw) == 0.0)
    assert np.all(fieldgen.kernel_mean_shift(activation, **kw) == 0.0)


def test_zero_variance_response_is_finite_or_a_value_error_naming_K0():
    # One input, full block: relu's P(K) = K/2 is linear, chi = (1 + r^2 sigma_w2 / 2)^L.
    assert fieldgen.response("relu", r=0.5, sigma_w2=2.0, depth=6, K0=0.0) == pytest.approx(1.25**6)
    # Reduced block: the mean sqrt(2 sigma_w2 K / pi)/2 has an infinite derivative at K = 0 ...
    with pytest.raises(
        ValueError, match=r"K0 is outside the domain of the kernel response .* zero variance"
    ):
        fieldgen.response("relu", r=0.5, sigma_w2=2.0, depth=6, K0=0.0, block="reduced")
    # ... which a bias removes.
    assert np.isfinite(
        fieldgen.response(
            "relu", r=0.5, sigma_w2=2.0, sigma_b2=0.1, depth=6, K0=0.0, block="reduced"
        )
    )
    # Two inputs, one of them zero: relu's pair Jacobian has 1/sqrt(K11 K22) terms.
    for fn in (fieldgen.response, fieldgen.kernel_covariance, fieldgen.kernel_mean_shift):
        with pytest.raises(ValueError, match=r"K0 is outside the domain .* zero variance"):
            fn("relu", r=0.5, sigma_w2=2.0, depth=3, K0=[[0.0, 0.0], [0.0, 1.0]])
    # Smooth activations are differentiable there.
    for activation in ("erf", "linear"):
        for fn in (fieldgen.response, fieldgen.kernel_covariance, fieldgen.kernel_mean_shift):
            assert np.all(
                np.isfinite(
                    fn(activation, r=0.5, sigma_w2=2.0, depth=3, K0=[[0.0, 0.0], [0.0, 1.0]])
                )
            )


def test_sensitivity_of_an_input_layer_without_weights_or_bias_names_the_parameters():
    with pytest.raises(ValueError, match=r"sigma_w2 and sigma_b2: with input='layer'"):
        fieldgen.sensitivity("erf", r=0.3, sigma_w2=0.0, depth=3, c0=0.5, input="layer")


# ---- r = 0: the identity network --------------------------------------------------------------


@pytest.mark.parametrize("activation", ALL)
def test_identity_network_r_zero(activation):
    """r = 0: K^l = K^0, N Cov(Khat^l, Khat^l') = the sampling noise of h^0 h^0 (2 K0^2; pairs:
    Isserlis) at every (l, l'), no mean shift, chi = identity, S = 1."""
    K0 = np.array([[1.5, 0.4], [0.4, 0.8]])
    kw = dict(r=0.0, sigma_w2=2.0, sigma_b2=0.3, depth=5)
    for block in ("full", "reduced"):
        assert np.all(fieldgen.kernel(activation, K0=K0, block=block, **kw) == K0)
        assert np.all(fieldgen.kernel(activation, K0=1.5, block=block, **kw) == 1.5)
        chi = fieldgen.response(activation, K0=K0, block=block, **kw)
        np.testing.assert_array_equal(to_pairs(chi, groups=2), np.eye(3))
        assert fieldgen.sensitivity(activation, c0=0.3, block=block, **kw) == 1.0
    np.testing.assert_allclose(
        fieldgen.kernel_covariance(activation, K0=1.5, **kw), 2 * 1.5**2, rtol=1e-15
    )
    C = fieldgen.kernel_covariance(activation, K0=K0, **kw)
    np.testing.assert_allclose(C, np.broadcast_to(isserlis(K0), C.shape), rtol=1e-15)
    assert np.all(fieldgen.kernel_mean_shift(activation, K0=K0, **kw) == 0.0)
    assert np.all(fieldgen.kernel_mean_shift(activation, K0=1.5, **kw) == 0.0)


# ---- overflow: an OverflowError naming the layer, never inf or NaN ----------------------------

HUGE = dict(r=10.0, sigma_w2=100.0, depth=200)


@pytest.mark.parametrize("activation", ["relu", "linear"])
def test_every_function_raises_overflow_error_where_the_kernel_overflows(activation):
    calls = {
        "kernel": lambda: fieldgen.kernel(activation, K0=1.0, **HUGE),
        "kernel (grid)": lambda: fieldgen.kernel(activation, K0=1.0, **{**HUGE, "r": [0.1, 10.0]}),
        "response": lambda: fieldgen.response(activation, K0=[[1, 0.5], [0.5, 1]], **HUGE),
        "sensitivity": lambda: fieldgen.sensitivity(
            activation, c0=0.5, **{**HUGE, "r": [0.1, 10.0]}
        ),
        "kernel_covariance": lambda: fieldgen.kernel_covariance(activation, K0=1.0, **HUGE),
        "kernel_mean_shift": lambda: fieldgen.kernel_mean_shift(activation, K0=1.0, **HUGE),
        # width 32: a narrow relu network can switch every unit off and freeze
        "simulate (walk)": lambda: fieldgen.simulate(
            activation, K0=1.0, width=32, samples=2, method="walk", seed=0, **HUGE
        ),
        "simulate (weights)": lambda: fieldgen.simulate(
            activation, K0=1.0, width=32, samples=2, seed=0, **HUGE
        ),
    }
    for name, call in calls.items():
        with pytest.raises(OverflowError, match=r"float64 range (at layer \d+|within)"):
            call()
            pytest.fail(f"{name} returned instead of raising")


def test_simulation_names_the_first_layer_that_overflows():
    # h^1 ~ 1e160 h^0: its square leaves the float64 range in the first layer.
    for method in fieldgen.METHODS:
        with pytest.raises(
            OverflowError, match="simulated kernel leaves the float64 range at layer 1"
        ):
            fieldgen.simulate(
                "linear",
                r=1e160,
                sigma_w2=1.0,
                depth=3,
                K0=1.0,
                width=8,
                samples=2,
                seed=1,
                method=method,
            )


def test_bounded_activations_do_not_overflow():
    """erf and tanh are bounded: K^l grows at most linearly in l, so huge depth x r is finite."""
    for activation in ("erf", "tanh"):
        K = fieldgen.kernel(activation, r=10.0, sigma_w2=100.0, depth=2000, K0=1.0)
        assert np.all(np.isfinite(K)) and K[-1] < 1.0 + 2000 * 100 * 100


def test_optimal_r_skips_overflowing_r_and_raises_when_every_r_overflows():
    best = fieldgen.optimal_r("relu", sigma_w2=2.0, depth=2000, c0=0.9)  # large r overflow
    assert not best and "no interior maximum" in best.message
    best = fieldgen.optimal_r("erf", sigma_w2=2.0, depth=300, c0=0.9)
    assert all(np.isfinite(v) for v in (best.r_star, best.S_max, best.r_lo, best.r_hi))
    with pytest.raises(OverflowError, match="every r scanned"):
        fieldgen.optimal_r("linear", sigma_w2=1.0, depth=100, c0=0.5, K0=1e306)


@pytest.mark.parametrize("c0", [1.0, -1.0])
@pytest.mark.parametrize("activation", ["relu", "erf", "linear"])
def test_optimal_r_at_full_correlation_has_no_nan(activation, c0):
    """relu at c0 = +-1: S = 1 for every r and the continuum rate is round-off, which must not
    count as a maximum (it did: tau* = 448 with L0 = NaN)."""
    for method in ("numeric", "analytic"):
        best = fieldgen.optimal_r(activation, sigma_w2=2.0, depth=50, c0=c0, method=method)
        fields = [best.r_star, best.S_max, best.r_lo, best.r_hi, best.L0, best.tau_star]
        assert all(v is None or np.isfinite(v) for v in fields), (method, best)
        assert "nan" not in best.message
        if activation == "relu":
            assert not best, best.message


def test_relu_pair_mean_shift_below_float64_resolution_is_its_small_step_limit():
    """r^2 sigma_w2 = 1e-32: every layer step is below the kernel's float64 resolution (K^l equals
    K^(l-1) bitwise), where relu's pair self-feedback takes its stalled branch. The shift is
    O(g^2) in g = r^2 sigma_w2 at fixed depth: divided by g^2 it equals the same call at
    g = 1e-10 (steps resolved, the general branch) to O(g). Control: the g^1 scaling is rejected."""
    K0 = np.array([[1.0, 0.5], [0.5, 1.2]])
    g_tiny, g_small = 0.01 * 1e-30, 0.01 * 1e-8
    tiny = fieldgen.kernel_mean_shift("relu", r=0.1, sigma_w2=1e-30, depth=3, K0=K0)
    path = fieldgen.kernel("relu", r=0.1, sigma_w2=1e-30, depth=3, K0=K0)
    assert np.all(path == path[0])  # the walk takes no step in float64
    small = fieldgen.kernel_mean_shift("relu", r=0.1, sigma_w2=1e-8, depth=3, K0=K0)
    assert np.all(np.isfinite(tiny)) and np.all(tiny[-1] != 0)
    np.testing.assert_allclose(tiny / g_tiny**2, small / g_small**2, rtol=1e-8, atol=0)
    assert not np.allclose(tiny / g_tiny, small / g_small, rtol=1e-2, atol=0)
