"""The kernel response and the sensitivity against finite differences of the mean-field kernel
(fieldgen.kernel, checked elsewhere against an independent quadrature recursion) and exact
identities."""

import numpy as np
import pytest

import fieldgen
from fieldgen.pairs import to_pairs

K0_PAIR = np.array([[1.0, 0.6], [0.6, 1.5]])
PAIR_POSITIONS = ((0, 0), (1, 1), (0, 1))


def _kernel_pairs(name, K0, **kw):
    K = fieldgen.kernel(name, K0=K0, **kw)[..., -1, :, :]
    return np.stack([K[..., a, b] for a, b in PAIR_POSITIONS], axis=-1)


def _finite_difference_response(name, K0, h, **kw):
    """d K^L_p / d K0_s by central differences; K0_12 = K0_21 moves as one variable."""
    cols = []
    for a, b in PAIR_POSITIONS:
        step = np.zeros((2, 2))
        step[a, b] = step[b, a] = h
        cols.append(
            (_kernel_pairs(name, K0 + step, **kw) - _kernel_pairs(name, K0 - step, **kw)) / (2 * h)
        )
    return np.stack(cols, axis=-1)


CASES = [
    (name, block, sb2, inp)
    for name in ("relu", "erf", "tanh")
    for block in ("full", "reduced")
    for sb2 in (0.0, 0.2)
    for inp in ("kernel", "layer")
]


@pytest.mark.parametrize("name,block,sigma_b2,input", CASES)
def test_pair_response_equals_finite_differences_of_the_kernel(name, block, sigma_b2, input):
    kw = dict(r=0.6, sigma_w2=1.4, depth=6, sigma_b2=sigma_b2, block=block, input=input)
    chi = to_pairs(fieldgen.response(name, K0=K0_PAIR, **kw), groups=2)
    # Closed forms: differences are exact to O(h^2); quadrature (tanh) is smooth to ~1e-10.
    h, rtol = (1e-5, 1e-7) if name != "tanh" else (1e-3, 2e-6)
    fd = _finite_difference_response(name, K0_PAIR, h, **kw)
    np.testing.assert_allclose(chi, fd, rtol=rtol, atol=rtol * np.abs(fd).max())


@pytest.mark.parametrize("name", ["relu", "erf", "tanh"])
@pytest.mark.parametrize("block", ["full", "reduced"])
def test_single_input_response_equals_finite_differences(name, block):
    kw = dict(r=0.5, sigma_w2=1.2, depth=8, sigma_b2=0.1, block=block)
    h = 1e-5 if name != "tanh" else 1e-3
    fd = (
        fieldgen.kernel(name, K0=0.8 + h, **kw)[-1] - fieldgen.kernel(name, K0=0.8 - h, **kw)[-1]
    ) / (2 * h)
    assert fieldgen.response(name, K0=0.8, **kw) == pytest.approx(
        fd, rel=1e-7 if name != "tanh" else 2e-6
    )


@pytest.mark.parametrize("r,sigma_w2,depth", [(0.1, 1.0, 100), (0.5, 2.0, 40), (1.0, 1.5, 25)])
def test_relu_chi_11_11_is_a_to_the_L(r, sigma_w2, depth):
    a = 1 + r * r * sigma_w2 / 2
    assert fieldgen.response("relu", r=r, sigma_w2=sigma_w2, depth=depth, K0=0.7) == pytest.approx(
        a**depth, rel=1e-13
    )
    chi = fieldgen.response("relu", r=r, sigma_w2=sigma_w2, depth=depth, K0=K0_PAIR)
    assert chi[0, 0, 0, 0] == pytest.approx(a**depth, rel=1e-13)
    assert chi[1, 1, 1, 1] == pytest.approx(a**depth, rel=1e-13)
    # No diagonal entry depends on the cross kernel.
    assert chi[0, 0, 0, 1] == chi[1, 1, 0, 1] == 0.0


def test_response_is_the_identity_at_r_zero_and_broadcasts():
    r = np.array([0.0, 0.2, 0.4])
    sw2 = np.array([[1.0], [2.0]])
    chi = fieldgen.response("erf", r=r, sigma_w2=sw2, depth=12, K0=K0_PAIR, sigma_b2=0.1)
    assert chi.shape == (2, 3, 2, 2, 2, 2)
    np.testing.assert_array_equal(
        to_pairs(chi[:, 0], groups=2), np.broadcast_to(np.eye(3), (2, 3, 3))
    )
    one = fieldgen.response("erf", r=0.4, sigma_w2=2.0, depth=12, K0=K0_PAIR, sigma_b2=0.1)
    np.testing.assert_array_equal(chi[1, 2], one)


def test_input_layer_response_is_the_kernel_response_times_sigma_w2():
    """dK^L/dG = chi^{L,0} dK^0/dG and K^0 = sigma_w^2 G + sigma_b^2."""
    G, sw2, sb2 = np.array([[0.8, 0.3], [0.3, 1.1]]), 1.7, 0.2
    kw = dict(r=0.5, sigma_w2=sw2, sigma_b2=sb2, depth=9)
    via_layer = fieldgen.response("tanh", K0=G, input="layer", **kw)
    via_kernel = fieldgen.response("tanh", K0=sw2 * G + sb2, **kw)
    np.testing.assert_allclose(via_layer, sw2 * via_kernel, rtol=1e-13)


@pytest.mark.parametrize("name", ["relu", "erf", "tanh"])
@pytest.mark.parametrize(
    "block,sigma_b2,input",
    [("full", 0.0, "kernel"), ("reduced", 0.3, "kernel"), ("full", 0.3, "layer")],
)
def test_sensitivity_equals_finite_differences_of_the_output_correlation(
    name, block, sigma_b2, input
):
    r = np.array([0.2, 0.7, 1.3])
    kw = dict(r=r, sigma_w2=1.3, depth=10, sigma_b2=sigma_b2, block=block, input=input)
    c0, K0 = 0.8, 1.4
    h = 1e-6 if name != "tanh" else 1e-4

    def c_out(c):
        K = fieldgen.kernel(name, K0=K0 * np.array([[1, c], [c, 1]]), **kw)[:, -1]
        return K[:, 0, 1] / np.sqrt(K[:, 0, 0] * K[:, 1, 1])

    fd = (c_out(c0 + h) - c_out(c0 - h)) / (2 * h)
    S = fieldgen.sensitivity(name, c0=c0, K0=K0, **kw)
    np.testing.assert_allclose(S, fd, rtol=1e-7 if name != "tanh" else 1e-6)


def test_sensitivity_is_chi_12_12_times_K0_over_KL():
    kw = dict(r=0.45, sigma_w2=1.6, depth=30, sigma_b2=0.05)
    K0 = np.array([[1.2, 1.08], [1.08, 1.2]])
    chi = fieldgen.response("erf", K0=K0, **kw)
    KL = fieldgen.kernel("erf", K0=K0, **kw)[-1, 0, 0]
    assert fieldgen.sensitivity("erf", c0=0.9, K0=1.2, **kw) == pytest.approx(
        chi[0, 1, 0, 1] * 1.2 / KL, rel=1e-13
    )


def test_relu_at_coincident_inputs_is_marginal():
    """docs/theory, "Response and sensitivity": the normalised response of relu at c0 = 1 is
    exactly 1 for every r."""
    r = np.linspace(0.0, 2.0, 9)
    # <phi'phi'> = (pi - arccos rho)/(2 pi) has a square-root singularity at rho = 1, so a round-off
    # of K12 below K11 (1e-16) costs ~1e-8 per layer: the identity holds to sqrt(eps) times depth.
    np.testing.assert_allclose(
        fieldgen.sensitivity("relu", r=r, sigma_w2=1.3, depth=50, c0=1.0), 1.0, rtol=1e-6
    )
    # The negative control: away from c0 = 1 the response is not marginal.
    assert np.all(fieldgen.sensitivity("relu", r=r[1:], sigma_w2=1.3, depth=50, c0=0.9) < 1 - 1e-6)


def test_sensitivity_depends_on_r_and_sigma_w_only_through_r_sigma_w():
    """Full block, no bias, fixed input kernel: W = sigma_w What, so only r sigma_w enters."""
    r = np.linspace(0.05, 1.0, 7)
    for name in ("erf", "tanh", "relu"):
        a = fieldgen.sensitivity(name, r=r, sigma_w2=1.0, depth=20, c0=0.9)
        b = fieldgen.sensitivity(name, r=r / np.sqrt(2.5), sigma_w2=2.5, depth=20, c0=0.9)
        np.testing.assert_allclose(a, b, rtol=1e-12)
    # Not so with a bias: the control that the check can fail.
    a = fieldgen.sensitivity("erf", r=r, sigma_w2=1.0, depth=20, c0=0.9, sigma_b2=0.1)
    b = fieldgen.sensitivity(
        "erf", r=r / np.sqrt(2.5), sigma_w2=2.5, depth=20, c0=0.9, sigma_b2=0.1
    )
    assert np.max(np.abs(a / b - 1)) > 1e-3


def test_one_loop_response_rejects_a_bad_width():
    with pytest.raises(ValueError, match="width must be an integer >= 1"):
        fieldgen.response_one_loop("erf", r=0.3, sigma_w2=1.0, depth=5, K0=1.0, width=0)


def test_response_that_overflows_raises():
    with pytest.raises(OverflowError, match="kernel response"):
        fieldgen.response("linear", r=10.0, sigma_w2=100.0, depth=200, K0=1.0)


@pytest.mark.parametrize("name", ["erf", "tanh"])
def test_reduced_block_with_a_kernel_is_the_full_block_with_an_input_layer(name):
    """Without bias, Ktilde = sigma_w^2 K maps K <- K + r^2 P(sigma_w^2 K) onto the full block
    Ktilde <- Ktilde + r^2 sigma_w^2 P(Ktilde) with Ktilde^0 = sigma_w^2 K^0: S is the same."""
    r = np.linspace(0.05, 1.0, 5)
    kw = dict(r=r, sigma_w2=np.array([[0.7], [2.0]]), depth=12, c0=0.85, K0=1.3)
    reduced = fieldgen.sensitivity(name, block="reduced", **kw)
    layer = fieldgen.sensitivity(name, block="full", input="layer", **kw)
    np.testing.assert_allclose(reduced, layer, rtol=1e-12)
    with_bias = fieldgen.sensitivity(name, block="reduced", sigma_b2=0.2, **kw)
    assert (
        np.max(
            np.abs(
                with_bias
                / fieldgen.sensitivity(name, block="full", input="layer", sigma_b2=0.2, **kw)
                - 1
            )
        )
        > 1e-3
    )
