"""Property-based tests of the public API (hypothesis, the derandomised "ci" profile of conftest).

Random valid parameters give finite results of the documented shape with the symmetries of the
theory; random invalid ones raise a ValueError that names the parameter. One-loop examples use
small depths (they are O(depth^2) with expensive coefficients for tanh and for two inputs).
"""

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import fieldgen
from fieldgen.pairs import to_pairs

CLOSED = ("relu", "erf", "linear")
ALL = CLOSED + ("tanh",)

activations = st.sampled_from(ALL)
blocks = st.sampled_from(fieldgen.BLOCKS)
inputs = st.sampled_from(fieldgen.INPUT_MODES)
rs = st.floats(0.0, 1.5)
sigma_w2s = st.floats(0.0, 3.0)
sigma_b2s = st.floats(0.0, 1.0)
variances = st.floats(0.0, 5.0)


@st.composite
def kernels(draw, lo=0.0, c_max=1.0):
    """K0: a variance, or a PSD 2x2 matrix built from two variances and a correlation."""
    if draw(st.booleans()):
        return draw(st.floats(lo, 5.0))
    k11, k22 = draw(st.floats(lo, 5.0)), draw(st.floats(lo, 5.0))
    c = draw(st.floats(-c_max, c_max))
    k12 = c * math.sqrt(k11 * k22)
    return [[k11, k12], [k12, k22]]


def _chi_pairs(chi):
    """The response as a matrix over pairs (11, 22, 12): (1, 1) for one input, (3, 3) for two."""
    return np.atleast_2d(chi) if np.ndim(chi) == 0 else to_pairs(chi, groups=2)


def pairs_of(K):
    """(..., 2, 2) -> pair entries (..., 3) in the order 11, 22, 12."""
    return np.stack([K[..., 0, 0], K[..., 1, 1], K[..., 0, 1]], axis=-1)


# ---- mean field -------------------------------------------------------------------------------


@settings(max_examples=60)
@given(activations, blocks, inputs, rs, sigma_w2s, sigma_b2s, st.integers(0, 25), kernels())
def test_kernel_is_finite_symmetric_psd_and_its_diagonal_is_the_one_input_kernel(
    activation, block, input, r, sigma_w2, sigma_b2, depth, K0
):
    kw = dict(r=r, sigma_w2=sigma_w2, sigma_b2=sigma_b2, depth=depth, block=block, input=input)
    K = fieldgen.kernel(activation, K0=K0, **kw)
    two = np.ndim(K0) == 2
    assert K.shape == ((depth + 1, 2, 2) if two else (depth + 1,))
    assert np.all(np.isfinite(K))
    if not two:
        assert np.all(K >= 0)
        return
    assert np.array_equal(K[:, 0, 1], K[:, 1, 0])
    assert np.all(K[:, 0, 0] >= 0) and np.all(K[:, 1, 1] >= 0)
    assert np.all(np.abs(K[:, 0, 1]) <= np.sqrt(K[:, 0, 0] * K[:, 1, 1]))
    for a in (0, 1):  # each input alone follows the one-input recursion
        alone = fieldgen.kernel(activation, K0=K0[a][a], **kw)
        np.testing.assert_allclose(K[:, a, a], alone, rtol=1e-12, atol=1e-300)


@settings(max_examples=20)
@given(
    st.sampled_from(CLOSED),
    blocks,
    st.lists(rs, min_size=1, max_size=4),
    st.lists(sigma_w2s, min_size=1, max_size=3),
    st.integers(1, 15),
    kernels(),
)
def test_parameter_grids_broadcast_like_independent_calls(
    activation, block, r, sigma_w2, depth, K0
):
    grid = fieldgen.kernel(
        activation,
        r=np.array(r)[None, :],
        sigma_w2=np.array(sigma_w2)[:, None],
        depth=depth,
        K0=K0,
        block=block,
    )
    assert grid.shape[:2] == (len(sigma_w2), len(r))
    for i, s in enumerate(sigma_w2):
        for j, x in enumerate(r):
            one = fieldgen.kernel(activation, r=x, sigma_w2=s, depth=depth, K0=K0, block=block)
            np.testing.assert_array_equal(grid[i, j], one)


# ---- response: chi against finite differences of the kernel -----------------------------------


def _shifted(K0, s, h):
    """K0 with pair entry s moved by h (K0_12 = K0_21 is one variable)."""
    if np.ndim(K0) == 0:
        return K0 + h
    K = np.array(K0, dtype=float)
    a, b = ((0, 0), (1, 1), (0, 1))[s]
    K[a, b] += h
    if a != b:
        K[b, a] += h
    return K


@settings(max_examples=40)
@given(
    activations,
    blocks,
    inputs,
    st.floats(0.05, 1.0),
    st.floats(0.2, 3.0),
    sigma_b2s,
    st.integers(1, 12),
    kernels(lo=0.3, c_max=0.9),
)
def test_response_equals_finite_differences_of_the_kernel(
    activation, block, input, r, sigma_w2, sigma_b2, depth, K0
):
    kw = dict(r=r, sigma_w2=sigma_w2, sigma_b2=sigma_b2, depth=depth, block=block, input=input)
    chi = _chi_pairs(fieldgen.response(activation, K0=K0, **kw))
    assert np.all(np.isfinite(chi))
    p = chi.shape[0]
    h = 1e-5
    for s in range(p):
        up = fieldgen.kernel(activation, K0=_shifted(K0, s, h), **kw)[-1]
        down = fieldgen.kernel(activation, K0=_shifted(K0, s, -h), **kw)[-1]
        fd = (
            (pairs_of(up) - pairs_of(down)) / (2 * h)
            if p == 3
            else np.array([(up - down) / (2 * h)])
        )
        # Central differences: error ~ h^2 K''' plus round-off ~ eps |K^L| / h.
        scale = 1e-6 * (
            np.abs(chi).max() + np.abs(fieldgen.kernel(activation, K0=K0, **kw)[-1]).max()
        )
        np.testing.assert_allclose(chi[:, s], fd, rtol=1e-5, atol=scale)


@settings(max_examples=25)
@given(
    activations,
    blocks,
    st.floats(0.05, 1.0),
    st.floats(0.2, 3.0),
    sigma_b2s,
    st.integers(1, 12),
    st.floats(0.3, 3.0),
    st.floats(-0.9, 0.9),
)
def test_sensitivity_is_the_derivative_of_the_output_correlation(
    activation, block, r, sigma_w2, sigma_b2, depth, K0, c0
):
    kw = dict(r=r, sigma_w2=sigma_w2, sigma_b2=sigma_b2, depth=depth, block=block)

    def c_out(c):
        K = fieldgen.kernel(activation, K0=[[K0, c * K0], [c * K0, K0]], **kw)[-1]
        return K[0, 1] / math.sqrt(K[0, 0] * K[1, 1])

    S = fieldgen.sensitivity(activation, c0=c0, K0=K0, **kw)
    h = 1e-5
    assert pytest.approx((c_out(c0 + h) - c_out(c0 - h)) / (2 * h), rel=1e-5, abs=1e-7) == S


# ---- one loop: symmetric, positive semi-definite covariance; the shift's parts -----------------


def _psd_violation(C):
    """Smallest eigenvalue of N Cov over (l, pair) relative to the largest |eigenvalue|."""
    L = C.shape[0]
    M = C.reshape(L, L) if C.ndim == 2 else C.transpose(0, 2, 1, 3).reshape(3 * L, 3 * L)
    w = np.linalg.eigvalsh(0.5 * (M + M.T))
    return w.min() / max(abs(w).max(), 1e-300)


def _check_covariance(C, tolerance):
    if C.ndim == 6:  # two inputs: (L, L, 2, 2, 2, 2) -> over pairs (L, L, 3, 3)
        C = to_pairs(C, groups=2)
    L = C.shape[0]
    assert np.all(np.isfinite(C))
    if C.ndim == 2:
        np.testing.assert_allclose(C, C.T, rtol=1e-12, atol=1e-12 * np.abs(C).max())
    else:
        assert C.shape == (L, L, 3, 3)
        np.testing.assert_allclose(
            C, C.transpose(1, 0, 3, 2), rtol=1e-12, atol=1e-12 * np.abs(C).max()
        )
    assert _psd_violation(C) >= -tolerance


@settings(max_examples=30)
@given(st.sampled_from(CLOSED), rs, sigma_w2s, sigma_b2s, st.integers(0, 6), st.floats(0.0, 5.0))
def test_one_input_covariance_is_symmetric_and_positive_semi_definite(
    activation, r, sigma_w2, sigma_b2, depth, K0
):
    C = fieldgen.kernel_covariance(
        activation, r=r, sigma_w2=sigma_w2, sigma_b2=sigma_b2, depth=depth, K0=K0
    )
    assert C.shape == (depth + 1, depth + 1)
    _check_covariance(C, 1e-9)  # closed forms: round-off only


@settings(max_examples=8)
@given(
    st.sampled_from(("erf", "linear", "relu", "tanh")),
    st.floats(0.05, 1.0),
    st.floats(0.2, 3.0),
    sigma_b2s,
    st.integers(1, 3),
    kernels(lo=0.3, c_max=0.95),
)
def test_pair_and_tanh_covariance_is_symmetric_and_positive_semi_definite(
    activation, r, sigma_w2, sigma_b2, depth, K0
):
    C = fieldgen.kernel_covariance(
        activation, r=r, sigma_w2=sigma_w2, sigma_b2=sigma_b2, depth=depth, K0=K0
    )
    # erf and linear are closed forms (plus an exact-to-round-off path integral for erf); relu's
    # pair moments and every tanh moment use 3-/4-D and graded quadrature with ~1e-3 relative
    # error, which can push a zero eigenvalue below 0 by that much.
    quadrature = activation == "tanh" or (activation == "relu" and np.ndim(K0) == 2)
    _check_covariance(C, 5e-3 if quadrature else 1e-8)


@settings(max_examples=20)
@given(
    st.sampled_from(CLOSED),
    rs,
    sigma_w2s,
    sigma_b2s,
    st.integers(0, 6),
    kernels(lo=0.3, c_max=0.95),
)
def test_mean_shift_is_finite_zero_at_the_input_and_the_sum_of_its_parts(
    activation, r, sigma_w2, sigma_b2, depth, K0
):
    kw = dict(r=r, sigma_w2=sigma_w2, sigma_b2=sigma_b2, depth=depth, K0=K0)
    parts = fieldgen.mean_shift_terms(activation, **kw)
    total = fieldgen.kernel_mean_shift(activation, **kw)
    assert total.shape == ((depth + 1, 2, 2) if np.ndim(K0) == 2 else (depth + 1,))
    assert np.all(np.isfinite(total)) and np.all(total[0] == 0)  # E Khat^0 = K^0 exactly
    np.testing.assert_allclose(parts.total, total, rtol=1e-13, atol=1e-300)


# ---- simulation and the optimum ---------------------------------------------------------------


@settings(max_examples=25)
@given(
    activations,
    blocks,
    inputs,
    st.sampled_from(fieldgen.METHODS),
    rs,
    sigma_w2s,
    sigma_b2s,
    st.integers(0, 5),
    kernels(),
    st.integers(1, 12),
    st.integers(1, 4),
    st.integers(0, 2**32 - 1),
)
def test_simulated_kernels_are_symmetric_psd_gram_matrices(
    activation, block, input, method, r, sigma_w2, sigma_b2, depth, K0, width, samples, seed
):
    kw = dict(
        r=r,
        sigma_w2=sigma_w2,
        sigma_b2=sigma_b2,
        depth=depth,
        K0=K0,
        width=width,
        samples=samples,
        block=block,
        input=input,
        method=method,
    )
    Khat = fieldgen.simulate(activation, seed=seed, **kw)
    two = np.ndim(K0) == 2
    assert Khat.shape == ((samples, depth + 1, 2, 2) if two else (samples, depth + 1))
    assert np.all(np.isfinite(Khat))
    np.testing.assert_array_equal(Khat, fieldgen.simulate(activation, seed=seed, **kw))
    if two:
        assert np.array_equal(Khat[..., 0, 1], Khat[..., 1, 0])
        assert np.all(np.linalg.eigvalsh(Khat) >= -1e-12 * (np.abs(Khat).max() + 1e-300))
    else:
        assert np.all(Khat >= 0)


@settings(max_examples=10)
@given(
    st.sampled_from(("erf", "relu", "linear")),
    st.floats(0.5, 3.0),
    st.integers(20, 200),
    st.floats(-0.99, 0.99),
    st.floats(0.3, 3.0),
)
def test_optimal_r_is_consistent(activation, sigma_w2, depth, c0, K0):
    best = fieldgen.optimal_r(activation, sigma_w2=sigma_w2, depth=depth, c0=c0, K0=K0)
    if not best:
        assert best.r_star is None and best.message
        return
    assert 0 < best.r_lo < best.r_star and (best.r_hi is None or best.r_star < best.r_hi)
    S = fieldgen.sensitivity(
        activation, r=[best.r_lo, best.r_star], sigma_w2=sigma_w2, depth=depth, c0=c0, K0=K0
    )
    assert S[1] == pytest.approx(best.S_max, rel=1e-9) and S[0] < S[1]


# ---- invalid parameters: a ValueError naming the parameter ------------------------------------

not_finite = st.sampled_from([math.nan, math.inf, -math.inf])
negative = st.floats(-1e6, -1e-9)
not_numbers = st.sampled_from(["a lot", None, {"r": 1}, [1.0, "x"]])


def _bad_value(name):
    """Invalid values of one parameter, for every public function that takes it."""
    if name in ("r", "sigma_w2", "sigma_b2"):
        return st.one_of(negative, not_finite, not_numbers)
    if name == "depth":
        return st.one_of(st.integers(-100, -1), st.floats(0.5, 10.0), st.just(True), st.just("10"))
    if name == "K0":
        return st.one_of(
            negative,
            not_finite,
            not_numbers,
            st.tuples(st.floats(0.5, 2.0), st.floats(0.1, 0.4)).map(
                lambda t: [[1.0, t[1]], [t[1] + t[0], 1.0]]
            ),
            st.floats(1.01, 10.0).map(lambda c: [[1.0, c], [c, 1.0]]),
            st.floats(-5.0, -0.01).map(lambda v: [[v, 0.0], [0.0, 1.0]]),
            st.integers(3, 4).map(lambda n: np.eye(n).tolist()),
            st.integers(3, 4).map(lambda n: np.ones((n, 2)).tolist()),
        )
    if name in ("width", "samples"):
        return st.one_of(st.integers(-5, 0), st.floats(1.5, 8.0))
    return st.one_of(st.text(max_size=8), st.integers(), st.none())  # activation, block, ...


GOOD = dict(r=0.3, sigma_w2=1.0, sigma_b2=0.1, depth=3, K0=[[1.0, 0.4], [0.4, 1.2]])
SIM = dict(width=4, samples=2, seed=0)
FUNCTIONS = {
    "kernel": (fieldgen.kernel, {}),
    "response": (fieldgen.response, {}),
    "kernel_covariance": (fieldgen.kernel_covariance, {}),
    "kernel_mean_shift": (fieldgen.kernel_mean_shift, {}),
    "simulate": (fieldgen.simulate, SIM),
}
PARAMS = ["r", "sigma_w2", "sigma_b2", "depth", "K0", "block", "input", "activation"]


@pytest.mark.parametrize("function", FUNCTIONS)
@pytest.mark.parametrize("param", PARAMS)
@settings(max_examples=12)
@given(data=st.data())
def test_invalid_parameters_raise_value_error_naming_them(function, param, data):
    fn, extra = FUNCTIONS[function]
    value = data.draw(_bad_value(param), label=param)
    if param in ("block", "input"):
        assume(value not in getattr(fieldgen, {"block": "BLOCKS", "input": "INPUT_MODES"}[param]))
    if function == "kernel" and param == "K0":
        # an n x n PSD matrix is a data set's Gram matrix there (tests/test_gram.py)
        assume(np.shape(value) not in ((3, 3), (4, 4)))
    if param == "activation":
        assume(value not in fieldgen.ACTIVATIONS)
        with pytest.raises(ValueError, match="activation must be one of"):
            fn(value, **GOOD, **extra)
        return
    with pytest.raises(ValueError, match=rf"^{param}\b"):
        fn("erf", **{**GOOD, **extra, param: value})


@settings(max_examples=30)
@given(st.sampled_from(["sigma_w2", "depth", "c0", "K0", "sigma_b2", "method", "width"]), st.data())
def test_invalid_sensitivity_and_optimum_arguments(param, data):
    good = dict(sigma_w2=1.0, depth=10, c0=0.5, K0=1.0, sigma_b2=0.0)
    if param == "c0":
        value = data.draw(
            st.one_of(st.floats(1.0001, 10), st.floats(-10, -1.0001), not_finite, not_numbers)
        )
    elif param == "K0":
        value = data.draw(st.one_of(st.floats(-5, 0.0), not_finite, not_numbers))  # > 0 here
    elif param == "sigma_w2":  # >= 0 for sensitivity, > 0 for optimal_r (tested below)
        value = data.draw(st.one_of(negative, not_finite, not_numbers))
    elif param == "method":
        value = data.draw(st.text(max_size=6).filter(lambda t: t not in ("numeric", "analytic")))
    elif param == "width":
        value = data.draw(st.one_of(st.integers(-3, 0), st.floats(1.5, 3.0)))
        with pytest.raises(ValueError, match="^width"):
            fieldgen.response_one_loop("erf", r=0.3, sigma_w2=1.0, depth=3, K0=1.0, width=value)
        return
    else:
        value = data.draw(_bad_value(param))
    if param != "method":
        with pytest.raises(ValueError, match=rf"^{param}\b"):
            fieldgen.sensitivity("erf", r=0.3, **{**good, param: value})
    if param in ("depth", "sigma_w2"):  # optimal_r also rejects 0 (no network, no scale)
        value = data.draw(st.sampled_from([0, value]))
    with pytest.raises(ValueError, match=rf"^{param}\b"):
        fieldgen.optimal_r("erf", **{**good, param: value})


@settings(max_examples=25)
@given(
    activations,
    st.floats(0.05, 1.0),
    st.floats(0.2, 3.0),
    sigma_b2s,
    st.integers(1, 8),
    st.integers(1, 8),
    kernels(lo=0.3, c_max=0.9),
)
def test_response_is_a_product_over_layers(activation, r, sigma_w2, sigma_b2, first, second, K0):
    """chi^{L,0} = chi^{L,M} chi^{M,0}: the response of the whole network is the product of the
    responses of its two parts (the second part starting from K^M)."""
    kw = dict(r=r, sigma_w2=sigma_w2, sigma_b2=sigma_b2)
    KM = fieldgen.kernel(activation, depth=first, K0=K0, **kw)[-1]
    whole = _chi_pairs(fieldgen.response(activation, depth=first + second, K0=K0, **kw))
    lower = _chi_pairs(fieldgen.response(activation, depth=first, K0=K0, **kw))
    upper = _chi_pairs(fieldgen.response(activation, depth=second, K0=KM, **kw))
    np.testing.assert_allclose(whole, upper @ lower, rtol=1e-9, atol=1e-12 * np.abs(whole).max())
