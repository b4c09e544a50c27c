"""Gram matrices of data sets: equal to the pairwise kernels, positive semi-definite, validated."""

import numpy as np
import pytest

import fieldgen
from fieldgen.generated import ACTIVATIONS, BLOCKS, INPUT_MODES


def data(n=7, d=5, seed=3):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    x[1] = 2.0 * x[0]  # a proportional pair: full correlation
    return x


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("block", BLOCKS)
@pytest.mark.parametrize("input", INPUT_MODES)
def test_gram_equals_pairwise_kernels(activation, block, input):
    x = data()
    G = x @ x.T / x.shape[1]
    kw = dict(r=0.4, sigma_w2=1.3, sigma_b2=0.2, depth=12, block=block, input=input)
    K = fieldgen.kernel(activation, K0=G, **kw)
    assert K.shape == (13, 7, 7)
    scale = np.abs(K).max()
    for a in range(7):
        for b in range(a + 1, 7):
            pair = fieldgen.kernel(activation, K0=G[np.ix_([a, b], [a, b])], **kw)
            np.testing.assert_allclose(K[:, [a, b]][:, :, [a, b]], pair, rtol=0, atol=1e-13 * scale)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("block", BLOCKS)
def test_gram_and_ntk_are_psd_at_every_layer(activation, block):
    x = data(n=12, d=4, seed=5)
    kw = dict(r=0.5, sigma_w2=1.5, sigma_b2=0.1, depth=15, block=block, input="layer")
    for value in (fieldgen.kernel(activation, x=x, **kw), fieldgen.ntk(activation, x=x, **kw)):
        for layer in value:
            assert np.allclose(layer, layer.T)
            eig = np.linalg.eigvalsh(layer)
            assert eig[0] >= -1e-12 * abs(eig[-1]), eig[0]


def test_layers_selects_layers_and_x_gives_the_layer_gram():
    x = data()
    G = x @ x.T / x.shape[1]
    kw = dict(r=[0.2, 0.3], sigma_w2=1.0, depth=30, input="layer")
    full = fieldgen.kernel("erf", K0=G, **kw)
    some = fieldgen.kernel("erf", x=x, layers=[0, 7, 30], **kw)
    assert some.shape == (2, 3, 7, 7)
    np.testing.assert_array_equal(some, full[:, [0, 7, 30]])
    # one and two inputs keep their shapes; layers= selects there too
    assert fieldgen.kernel("erf", K0=1.0, r=0.3, sigma_w2=1.0, depth=5, layers=[5]).shape == (1,)
    two = fieldgen.kernel("erf", K0=G[:2, :2], r=0.3, sigma_w2=1.0, depth=5)
    assert two.shape == (6, 2, 2)


def test_cross_kernel_is_the_block_of_the_stacked_sets():
    x = data()
    x1, x2 = x[:4], x[4:]
    kw = dict(r=0.3, sigma_w2=1.2, sigma_b2=0.1, depth=8, input="layer")
    for fn in (fieldgen.kernel, fieldgen.ntk):
        whole = fn("erf", x=x, **kw)
        cross = fn("erf", x=x1, x2=x2, **kw)
        assert cross.shape == (9, 4, 3)
        np.testing.assert_array_equal(cross, whole[:, :4, 4:])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(x2=np.ones((3, 2)), input="layer"), "needs x"),
        (dict(x=np.ones((3, 2)), x2=np.ones((3, 4)), input="layer"), "dimension"),
        (dict(K0=[[1, 0.9, 0], [0.9, 1, 0.9], [0, 0.9, 1]]), "positive semi-definite"),
        (dict(K0=[[1, 0.2, 0], [0.3, 1, 0], [0, 0, 1]]), "symmetric"),
        (dict(K0=np.ones((3, 2))), "square"),
        (dict(K0=np.eye(3), layers=[3, 1]), "layers"),
        (dict(K0=np.eye(3), layers=[0, 11]), "layers"),
        (dict(x=np.ones((3, 2))), "input='layer'"),
        (dict(K0=np.eye(3), x=np.ones((3, 2)), input="layer"), "either K0 or x"),
        (dict(x=np.full((3, 2), np.nan), input="layer"), "finite"),
    ],
)
def test_bad_gram_arguments_raise(kwargs, match):
    for fn in (fieldgen.kernel, fieldgen.ntk):
        with pytest.raises(ValueError, match=match):
            fn("erf", r=0.3, sigma_w2=1.0, depth=10, **kwargs)


def test_gram_overflow_names_a_layer():
    with pytest.raises(OverflowError, match="layer"):
        fieldgen.kernel("relu", K0=np.eye(3), r=30.0, sigma_w2=2.0, depth=400)
