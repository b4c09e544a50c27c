"""Depth-scaled networks: every public function that takes the residual scale r also takes
tau = r^2 sigma_w^2 L instead, with r = sqrt(tau / (sigma_w2 depth)) (fieldgen.r_for_tau).
Checked against the relu kernel's exact solution, against the same call with r, and for the
errors of a call that gives both, neither, or a tau that fixes no r."""

import inspect

import numpy as np
import pytest

import fieldgen

PAIR = [[1.0, 0.4], [0.4, 1.3]]
# Every public function with an r parameter, with the arguments of a small call.
CALLS = {
    "kernel": dict(K0=PAIR),
    "ntk": dict(K0=PAIR),
    "kernel_covariance": dict(K0=PAIR),
    "kernel_mean_shift": dict(K0=1.0),
    "mean_shift_terms": dict(K0=1.0),
    "response": dict(K0=PAIR),
    "response_one_loop": dict(K0=PAIR, width=64),
    "sensitivity": dict(c0=0.5),
    "simulate": dict(K0=PAIR, width=8, samples=3, seed=0),
}


def test_every_public_function_with_r_takes_tau():
    with_r = {
        name
        for name in fieldgen.__all__
        if inspect.isfunction(getattr(fieldgen, name))
        and "r" in inspect.signature(getattr(fieldgen, name)).parameters
    }
    assert with_r == set(CALLS)
    for name in with_r:
        params = inspect.signature(getattr(fieldgen, name)).parameters
        assert params["tau"].default is None and params["r"].default is None, name


def test_relu_kernel_with_tau_is_the_exact_solution():
    """Full-block relu without bias: K^l = K^0 (1 + r^2 sigma_w2 / 2)^l exactly, so with tau
    K^L = K^0 (1 + tau / (2L))^L, which tends to K^0 e^(tau/2) at rate 1/L."""
    tau, sigma_w2, K0 = 1.5, 2.0, 0.7
    for depth in (1, 10, 1000):
        K = fieldgen.kernel("relu", tau=tau, sigma_w2=sigma_w2, depth=depth, K0=K0)
        exact = K0 * (1.0 + tau / (2.0 * depth)) ** np.arange(depth + 1)
        np.testing.assert_allclose(K, exact, rtol=1e-13)
    # Negative control: r = sqrt(tau / sigma_w2), the depth left out, misses it.
    wrong = fieldgen.kernel("relu", r=np.sqrt(tau / sigma_w2), sigma_w2=sigma_w2, depth=10, K0=K0)
    assert abs(wrong[-1] / (K0 * (1.0 + tau / 20.0) ** 10) - 1) > 1.0


@pytest.mark.parametrize("name", sorted(CALLS))
def test_tau_gives_the_network_of_r_for_tau(name):
    fn = getattr(fieldgen, name)
    depth, sigma_w2, tau = 4, 1.5, 0.8
    r = fieldgen.r_for_tau(tau, depth=depth, sigma_w2=sigma_w2)
    a = fn("erf", tau=tau, sigma_w2=sigma_w2, depth=depth, **CALLS[name])
    b = fn("erf", r=r, sigma_w2=sigma_w2, depth=depth, **CALLS[name])
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))  # MeanShiftTerms: (3, L+1)
    # Negative control: the network at another r differs.
    c = fn("erf", r=1.01 * r, sigma_w2=sigma_w2, depth=depth, **CALLS[name])
    assert not np.array_equal(np.asarray(a), np.asarray(c))


def test_tau_broadcasts_like_r():
    tau = np.array([0.5, 1.0, 2.0])
    sigma_w2 = np.array([[1.0], [2.0]])
    K = fieldgen.kernel("erf", tau=tau, sigma_w2=sigma_w2, depth=5, K0=1.0)
    r = np.sqrt(tau / (sigma_w2 * 5))
    np.testing.assert_array_equal(
        K, fieldgen.kernel("erf", r=r, sigma_w2=sigma_w2, depth=5, K0=1.0)
    )
    assert K.shape == (2, 3, 6)


@pytest.mark.parametrize(
    "kw, names",
    [
        (dict(r=0.3, tau=1.0, sigma_w2=1.0, depth=5), "r, tau"),  # both
        (dict(sigma_w2=1.0, depth=5), "r, tau"),  # neither
        (dict(tau=-1.0, sigma_w2=1.0, depth=5), "tau"),
        (dict(tau=1.0, sigma_w2=0.0, depth=5), "sigma_w2"),  # tau fixes no r
        (dict(tau=1.0, sigma_w2=1.0, depth=0), "depth"),
        (dict(tau=float("nan"), sigma_w2=1.0, depth=5), "tau"),
    ],
)
def test_bad_scale_arguments_name_the_parameter(kw, names):
    for name in ("kernel", "kernel_covariance", "sensitivity"):
        extra = dict(c0=0.5) if name == "sensitivity" else dict(K0=1.0)
        with pytest.raises(ValueError, match=f"^{names}"):
            getattr(fieldgen, name)("erf", **kw, **extra)
