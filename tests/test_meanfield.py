"""The generated mean-field recursion against exact solutions and an independent recursion."""

import math

import numpy as np
import pytest

import fieldgen

K0_PAIR = np.array([[1.0, 0.6], [0.6, 1.5]])


@pytest.mark.parametrize("r,sigma_w2", [(0.1, 1.0), (0.5, 2.0), (1.0, 1.5), (0.0, 3.0)])
def test_relu_without_bias_is_geometric(r, sigma_w2):
    """K^l = a^l K^0, a = 1 + r^2 sigma_w^2 / 2, for the diagonal (and one input)."""
    a = 1 + r * r * sigma_w2 / 2
    layers = np.arange(31)
    K = fieldgen.kernel("relu", r=r, sigma_w2=sigma_w2, depth=30, K0=0.7)
    np.testing.assert_allclose(K, 0.7 * a**layers, rtol=1e-13)
    Kp = fieldgen.kernel("relu", r=r, sigma_w2=sigma_w2, depth=30, K0=K0_PAIR)
    np.testing.assert_allclose(Kp[:, 0, 0], 1.0 * a**layers, rtol=1e-13)
    np.testing.assert_allclose(Kp[:, 1, 1], 1.5 * a**layers, rtol=1e-13)


def test_relu_at_coincident_inputs_stays_coincident():
    K = fieldgen.kernel("relu", r=0.4, sigma_w2=2.0, depth=50, K0=np.ones((2, 2)))
    np.testing.assert_allclose(K[:, 0, 1], K[:, 0, 0], rtol=1e-14)


def test_linear_network_solves_the_affine_recursion_exactly():
    r, sw2, sb2, L = 0.3, 1.7, 0.2, 40
    g = 1 + r * r * sw2
    exact = g ** np.arange(L + 1) * 0.8 + sb2 * (g ** np.arange(L + 1) - 1) / sw2
    K = fieldgen.kernel("linear", r=r, sigma_w2=sw2, sigma_b2=sb2, depth=L, K0=0.8)
    np.testing.assert_allclose(K, exact, rtol=1e-12)


@pytest.mark.parametrize("name", ["relu", "erf", "tanh"])
@pytest.mark.parametrize("block", ["full", "reduced"])
@pytest.mark.parametrize("sigma_b2", [0.0, 0.3])
def test_kernel_against_an_independent_quadrature_recursion(name, block, sigma_b2, reference):
    kw = dict(r=0.7, sigma_w2=1.8, depth=4, K0=K0_PAIR, sigma_b2=sigma_b2, block=block)
    got = fieldgen.kernel(name, **kw)
    want = reference.kernel_recursion(name, **kw)
    np.testing.assert_allclose(got, want, rtol=1e-9)
    single = fieldgen.kernel(name, **{**kw, "K0": K0_PAIR[1, 1]})
    np.testing.assert_allclose(single, want[:, 1, 1], rtol=1e-9)


def test_broadcasting_over_r_and_sigma_w2_equals_pointwise_calls():
    r = np.array([0.1, 0.3, 0.9])
    sw2 = np.array([[1.0], [2.5]])
    K = fieldgen.kernel("erf", r=r, sigma_w2=sw2, depth=7, K0=K0_PAIR, sigma_b2=0.1)
    assert K.shape == (2, 3, 8, 2, 2)
    for a in range(2):
        for b in range(3):
            one = fieldgen.kernel(
                "erf", r=r[b], sigma_w2=sw2[a, 0], depth=7, K0=K0_PAIR, sigma_b2=0.1
            )
            np.testing.assert_array_equal(K[a, b], one)
    assert fieldgen.kernel("erf", r=r, sigma_w2=1.0, depth=3, K0=1.0).shape == (3, 4)


def test_large_grids_are_split_across_threads_without_changing_results():
    r = np.linspace(0.01, 1.0, 20000)
    K = fieldgen.kernel("erf", r=r, sigma_w2=1.3, depth=5, K0=K0_PAIR)
    for idx in (0, 7777, 19999):
        np.testing.assert_array_equal(
            K[idx], fieldgen.kernel("erf", r=r[idx], sigma_w2=1.3, depth=5, K0=K0_PAIR)
        )


@pytest.mark.parametrize("block", ["full", "reduced"])
def test_input_layer_equals_kernel_input_with_sigma_w2_G_plus_sigma_b2(block):
    G = np.array([[0.8, 0.3], [0.3, 1.1]])
    sw2, sb2 = np.array([0.5, 1.0, 2.0]), 0.2
    K = fieldgen.kernel(
        "tanh", r=0.5, sigma_w2=sw2, sigma_b2=sb2, depth=5, K0=G, input="layer", block=block
    )
    for i, s in enumerate(sw2):
        Kk = fieldgen.kernel(
            "tanh", r=0.5, sigma_w2=s, sigma_b2=sb2, depth=5, K0=s * G + sb2, block=block
        )
        np.testing.assert_allclose(K[i], Kk, rtol=1e-14)


def test_kernel_is_symmetric_and_positive_semidefinite():
    K = fieldgen.kernel(
        "tanh",
        r=np.linspace(0.1, 1, 5),
        sigma_w2=2.0,
        depth=20,
        K0=[[1, -0.95], [-0.95, 2]],
        sigma_b2=0.1,
        block="reduced",
    )
    np.testing.assert_array_equal(K[..., 0, 1], K[..., 1, 0])
    assert np.all(np.linalg.eigvalsh(K) > -1e-12)


def _relu_pair_path(r, sigma_w2, K0, depth):
    """The relu recursion in plain Python (libm arccos), one grid point."""
    k11, k22, k12 = K0[0, 0], K0[1, 1], K0[0, 1]
    path = [(k11, k22, k12)]
    for _ in range(depth):
        s = math.sqrt(k11 * k22)
        c = max(-1.0, min(1.0, k12 / s))
        p12 = s / (2 * math.pi) * (math.sqrt(1 - c * c) + (math.pi - math.acos(c)) * c)
        a = r * r * sigma_w2
        k11, k22, k12 = k11 + a * k11 / 2, k22 + a * k22 / 2, k12 + a * p12
        path.append((k11, k22, k12))
    return np.array(path)


@pytest.mark.parametrize("points", [1, 15, 16, 17, 33])
@pytest.mark.parametrize("depth", [0, 1, 15, 16, 17, 40])
def test_every_point_and_layer_lands_in_its_place(points, depth):
    """The generated loop computes blocks of grid points and chunks of layers into a buffer and
    writes the previous chunk while computing the next: grid sizes and depths on both sides of
    the block and chunk sizes (16) must still put every K^l_i at out[i, l]."""
    r = np.linspace(0.05, 0.9, points)
    K = fieldgen.kernel("relu", r=r, sigma_w2=1.7, depth=depth, K0=K0_PAIR)
    single = fieldgen.kernel("relu", r=r, sigma_w2=1.7, depth=depth, K0=0.9)
    assert K.shape == (points, depth + 1, 2, 2) and single.shape == (points, depth + 1)
    for i, x in enumerate(r):
        want = _relu_pair_path(x, 1.7, K0_PAIR, depth)
        np.testing.assert_allclose(K[i, :, 0, 0], want[:, 0], rtol=1e-13)
        np.testing.assert_allclose(K[i, :, 1, 1], want[:, 1], rtol=1e-13)
        np.testing.assert_allclose(K[i, :, 0, 1], want[:, 2], rtol=1e-13)
        np.testing.assert_array_equal(K[i, :, 1, 0], K[i, :, 0, 1])
        np.testing.assert_allclose(
            single[i], 0.9 * (1 + x * x * 1.7 / 2) ** np.arange(depth + 1), rtol=1e-13
        )


@pytest.mark.parametrize("offset", [0, 1, 2, 3])
def test_generated_path_does_not_depend_on_the_alignment_of_out(offset):
    """Two-input paths go out as one 32-byte streaming store per 2x2 kernel where out is 32-byte
    aligned and element by element where it is not (kernel() allocates it aligned): an out that
    starts 8, 16 or 24 bytes past a boundary must get the same path."""
    from fieldgen.generated import module
    from fieldgen.meanfield import aligned_empty

    r = np.linspace(0.05, 0.9, 21)
    sw2, sb2 = np.full_like(r, 1.3), np.full_like(r, 0.1)
    k0 = np.tile([1.0, 1.5, 0.6], (r.size, 1))
    want = fieldgen.kernel("erf", r=r, sigma_w2=1.3, sigma_b2=0.1, depth=37, K0=K0_PAIR)
    raw = aligned_empty((want.size + 4,))
    out = raw[offset : offset + want.size].reshape(want.shape)
    assert out.ctypes.data % 32 == 8 * offset
    module("meanfield", "erf").kernel_pair_full(r, sw2, sb2, k0, out)
    np.testing.assert_array_equal(out, want)
