"""Mean-field kernel against simulations of finite networks, and the two simulators against
each other. Fixed seeds; tolerances are 4 standard errors at widths where the O(1/N) shift of
the mean is a small fraction of one standard error."""

import subprocess
import sys

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


@pytest.mark.parametrize(
    "name,block", [("relu", "full"), ("erf", "reduced"), ("tanh", "full"), ("relu", "reduced")]
)
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
    kw = dict(
        r=0.8, sigma_w2=1.5, depth=5, K0=K0_PAIR, sigma_b2=0.1, block=block, width=32, samples=1500
    )
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


# ---- seeds, blocks and chunks, the results folder (in process; Dask: test_distributed.py) -----

TINY = dict(
    r=0.5,
    sigma_w2=1.5,
    depth=3,
    K0=K0_PAIR,
    width=8,
    samples=23,
    method="walk",
    networks_per_stream=4,
)


def test_seed_accepts_what_default_rng_accepts():
    reference = fieldgen.simulate("erf", seed=7, **TINY)
    assert np.array_equal(
        fieldgen.simulate("erf", seed=np.random.SeedSequence(7), **TINY), reference
    )
    assert np.array_equal(fieldgen.simulate("erf", seed=np.int64(7), **TINY), reference)
    for seed in ([1, 2], np.array([3, 4], dtype=np.uint32), np.random.PCG64(1), None):
        assert fieldgen.simulate("erf", seed=seed, **TINY).shape == reference.shape
    # A Generator is drawn from: its state fixes the result, and it moves on like any use of it.
    rng = np.random.default_rng(5)
    first = fieldgen.simulate("erf", seed=rng, **TINY)
    assert np.array_equal(fieldgen.simulate("erf", seed=np.random.default_rng(5), **TINY), first)
    assert not np.array_equal(fieldgen.simulate("erf", seed=rng, **TINY), first)


@pytest.mark.parametrize(
    "seed",
    [-1, 1.5, True, "7", [1, -2], [[1]], [], np.random.RandomState(1)],
    ids=["-1", "1.5", "True", "'7'", "[1,-2]", "[[1]]", "[]", "RandomState"],
)
def test_a_bad_seed_is_a_value_error_naming_seed(seed):
    with pytest.raises(ValueError, match=r"^seed must be .*; got "):
        fieldgen.simulate("erf", seed=seed, **TINY)


@pytest.mark.parametrize("streams_per_chunk", [1, 2, 7])
def test_the_result_does_not_depend_on_the_chunk_size(tmp_path, streams_per_chunk):
    reference = fieldgen.simulate("relu", seed=2, **TINY)
    chunked = fieldgen.simulate(
        "relu", seed=2, results=tmp_path, streams_per_chunk=streams_per_chunk, **TINY
    )
    assert np.array_equal(chunked, reference)
    # The first blocks' streams do not depend on how many networks follow them.
    more = fieldgen.simulate("relu", seed=2, **dict(TINY, samples=40))
    assert np.array_equal(more[:20], reference[:20])


def test_a_rerun_reads_finished_chunks_and_never_uses_a_damaged_or_foreign_file(
    tmp_path, monkeypatch
):
    from fieldgen import chunks

    reference = fieldgen.simulate("erf", seed=9, **TINY)
    fieldgen.simulate("erf", seed=9, results=tmp_path, **TINY)
    files = sorted(tmp_path.rglob("chunk-*.npz"))
    assert len(files) == 6  # 23 networks, 4 per stream
    files[0].write_bytes(files[0].read_bytes()[:100])  # truncated
    other = tmp_path / "elsewhere"
    fieldgen.simulate("erf", seed=10, results=other, **TINY)  # same names, another run's content
    files[1].write_bytes(sorted(other.rglob(files[1].name))[0].read_bytes())
    files[2].unlink()  # missing
    computed = []
    original = chunks.run
    monkeypatch.setattr(
        chunks,
        "run",
        lambda compute, todo, **kw: (computed.extend(todo), original(compute, todo, **kw))[1],
    )
    with pytest.warns(RuntimeWarning) as caught:
        rerun = fieldgen.simulate("erf", seed=9, results=tmp_path, **TINY)
    assert np.array_equal(rerun, reference)
    assert computed == [(0, 1), (1, 2), (2, 3)]  # the three bad or missing blocks only
    assert any("damaged" in str(w.message) for w in caught)
    assert any("another run" in str(w.message) for w in caught)


def test_the_in_process_default_never_imports_dask(tmp_path):
    code = (
        "import sys, fieldgen\n"
        f"fieldgen.simulate('erf', r=0.5, sigma_w2=1.0, depth=2, K0=1.0, width=4, samples=3, seed=1)\n"
        f"fieldgen.simulate('erf', r=0.5, sigma_w2=1.0, depth=2, K0=1.0, width=4, samples=3, seed=1,"
        f" results={str(tmp_path)!r})\n"
        "assert not {'dask', 'distributed'} & set(sys.modules), 'dask imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
