"""Mean-field kernel against simulations of finite networks, and the two simulators against
each other. Fixed seeds; tolerances are 4 standard errors at widths where the O(1/N) shift of
the mean is a small fraction of one standard error."""
import numpy as np
import pytest
from helpers import max_abs_z, mean_and_se, seed_of

import fieldgen

K0_PAIR = np.array([[1.0, 0.5], [0.5, 1.2]])
WIDE = dict(width=4096, samples=300, method="walk")
CASE = dict(r=0.5, sigma_w2=1.5, depth=6)


@pytest.mark.parametrize("name", ["relu", "erf", "tanh"])
@pytest.mark.parametrize("block", ["full", "reduced"])
@pytest.mark.parametrize("sigma_b2", [0.0, 0.1])
@pytest.mark.parametrize("K0", [K0_PAIR, 1.2], ids=["two-inputs", "one-input"])
def test_kernel_matches_mean_of_wide_simulated_networks(name, block, sigma_b2, K0):
    kw = dict(CASE, K0=K0, sigma_b2=sigma_b2, block=block)
    seed = seed_of(name, block, sigma_b2, np.ndim(K0))
    Khat = fieldgen.simulate(name, seed=seed, **WIDE, **kw)
    K = fieldgen.kernel(name, **kw)
    assert Khat.shape == (300,) + K.shape
    assert max_abs_z(Khat, K) < 4


def test_negative_control_reduced_block_without_the_mean_term_is_rejected():
    """The usual statement writes the reduced block as K <- K + r^2 P(sigma_w^2 K + sigma_b^2);
    for relu the pre-activations acquire a common mean and that recursion is wrong."""
    kw = dict(CASE, K0=1.2, sigma_b2=0.1, block="reduced")
    Khat = fieldgen.simulate("relu", seed=11, **WIDE, **kw)
    no_mean = [1.2]
    for _ in range(CASE["depth"]):
        C = CASE["sigma_w2"] * no_mean[-1] + 0.1
        no_mean.append(no_mean[-1] + CASE["r"] ** 2 * C / 2)
    assert max_abs_z(Khat, np.array(no_mean)) > 10
    assert max_abs_z(Khat, fieldgen.kernel("relu", **kw)) < 4


@pytest.mark.parametrize("name,block", [("relu", "full"), ("erf", "reduced"), ("tanh", "full"),
                                        ("relu", "reduced")])
def test_real_weight_matrices_match_the_kernel(name, block):
    kw = dict(r=0.6, sigma_w2=1.2, depth=4, K0=K0_PAIR, sigma_b2=0.1, block=block)
    Khat = fieldgen.simulate(name, width=512, samples=150, method="weights", seed=5, **kw)
    assert max_abs_z(Khat, fieldgen.kernel(name, **kw)) < 4


def _variance_and_se(x):
    n = x.shape[0]
    m = x.mean(0)
    var = x.var(0, ddof=1)
    fourth = ((x - m) ** 4).mean(0)
    return var, np.sqrt(np.maximum(fourth - var**2, 0) / n)


@pytest.mark.parametrize("name,block", [("relu", "full"), ("tanh", "reduced"), ("erf", "full")])
def test_walk_and_weights_simulations_agree_at_small_width(name, block):
    """Both simulators are exact at any width: means and variances of Khat must agree."""
    kw = dict(r=0.8, sigma_w2=1.5, depth=5, K0=K0_PAIR, sigma_b2=0.1, block=block, width=32, samples=1500)
    a = fieldgen.simulate(name, method="walk", seed=1, **kw)
    b = fieldgen.simulate(name, method="weights", seed=2, **kw)
    (ma, sa), (mb, sb) = mean_and_se(a), mean_and_se(b)
    assert np.max(np.abs(ma - mb) / np.hypot(sa, sb)) < 4
    (va, sva), (vb, svb) = _variance_and_se(a), _variance_and_se(b)
    assert np.max(np.abs(va - vb) / np.hypot(sva, svb)) < 4
    # At this width the finite-size effects are large: the mean-field kernel is not enough.
    assert np.max(np.abs(va)) > 0


@pytest.mark.parametrize("method", ["walk", "weights"])
def test_input_layer_simulation(method):
    G = np.array([[0.9, 0.2], [0.2, 1.1]])
    kw = dict(r=0.5, sigma_w2=1.5, depth=3, K0=G, sigma_b2=0.2, input="layer")
    width, samples = (4096, 300) if method == "walk" else (512, 150)
    Khat = fieldgen.simulate("erf", width=width, samples=samples, method=method, seed=3, **kw)
    assert max_abs_z(Khat, fieldgen.kernel("erf", **kw)) < 4


def test_seed_reproduces_and_common_random_numbers_are_shared():
    kw = dict(r=0.5, sigma_w2=1.0, depth=3, width=64, samples=10, method="walk")
    a = fieldgen.simulate("tanh", K0=1.0, seed=42, **kw)
    np.testing.assert_array_equal(a, fieldgen.simulate("tanh", K0=1.0, seed=42, **kw))
    assert not np.array_equal(a, fieldgen.simulate("tanh", K0=1.0, seed=43, **kw))
    # relu without bias is positively homogeneous: with common random numbers Khat scales exactly.
    b = fieldgen.simulate("relu", K0=1.0, seed=7, **kw)
    c = fieldgen.simulate("relu", K0=4.0, seed=7, **kw)
    np.testing.assert_allclose(c, 4 * b, rtol=1e-12)
