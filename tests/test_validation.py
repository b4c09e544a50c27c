"""Every bad input gets a ValueError that names the parameter and the allowed range."""

import math

import numpy as np
import pytest

import fieldgen

GOOD = dict(r=0.3, sigma_w2=1.0, depth=3, K0=1.0)
SIM = dict(width=8, samples=2)


def _both(**changes):
    yield fieldgen.kernel, {**GOOD, **changes}
    yield fieldgen.simulate, {**GOOD, **SIM, **changes}


BAD = [
    ("r", -0.1, r"r must be >= 0"),
    ("r", math.nan, r"r must be finite"),
    ("sigma_w2", -1.0, r"sigma_w2 must be >= 0"),
    ("sigma_w2", math.inf, r"sigma_w2 must be finite"),
    ("sigma_b2", -1e-3, r"sigma_b2 must be >= 0"),
    ("sigma_b2", "a lot", r"sigma_b2 must be a real number"),
    ("depth", -1, r"depth must be an integer >= 0"),
    ("depth", 2.5, r"depth must be an integer >= 0"),
    ("depth", 3.0, r"depth must be an integer >= 0"),
    ("depth", True, r"depth must be an integer >= 0"),
    ("K0", -0.5, r"K0 \(a variance\) must be >= 0"),
    ("K0", math.nan, r"K0 must be finite"),
    ("K0", [[1.0, 0.3], [0.2, 1.0]], r"K0 must be symmetric"),
    ("K0", [[1.0, 2.0], [2.0, 1.0]], r"K0 must be positive semi-definite"),
    ("K0", [[-1.0, 0.0], [0.0, 1.0]], r"K0 must be positive semi-definite"),
    ("K0", [1.0, 2.0, 3.0], r"K0 must be a number \(one input\) or a 2x2 matrix"),
    ("block", "residual", r"block must be one of 'full', 'reduced'"),
    ("input", "image", r"input must be one of 'kernel', 'layer'"),
]


@pytest.mark.parametrize("param,value,message", BAD, ids=[f"{p}={v!r}" for p, v, _ in BAD])
def test_bad_arguments_raise_value_error_naming_the_parameter(param, value, message):
    for fn, kw in _both(**{param: value}):
        with pytest.raises(ValueError, match=message):
            fn("relu", **kw)


def test_unknown_activation_lists_the_supported_ones():
    for fn, kw in _both():
        with pytest.raises(
            ValueError,
            match=r"activation must be one of erf, linear, relu, tanh, gelu, .*"
            r"fieldgen.activation\(name, expr\); got 'swish7'",
        ):
            fn("swish7", **kw)


@pytest.mark.parametrize(
    "param,value,message",
    [
        ("width", 0, r"width must be an integer >= 1"),
        ("width", 10.0, r"width must be an integer >= 1"),
        ("samples", -3, r"samples must be an integer >= 1"),
        ("method", "exact", r"method must be one of 'weights', 'walk'"),
        ("r", [0.1, 0.2], r"r must be a single number >= 0"),
    ],
)
def test_bad_simulation_arguments(param, value, message):
    with pytest.raises(ValueError, match=message):
        fieldgen.simulate("erf", **{**GOOD, **SIM, param: value})


def test_parameters_that_do_not_broadcast():
    with pytest.raises(ValueError, match="must broadcast together"):
        fieldgen.kernel("erf", r=[0.1, 0.2], sigma_w2=[1.0, 2.0, 3.0], depth=2, K0=1.0)


def test_kernel_that_overflows_raises_instead_of_returning_nan():
    with pytest.raises(OverflowError, match="layer"):
        fieldgen.kernel("linear", r=10.0, sigma_w2=100.0, depth=200, K0=1.0)


def test_numpy_scalars_and_integers_are_accepted():
    K = fieldgen.kernel(
        "relu", r=np.float32(0.5), sigma_w2=np.int64(2), depth=np.int32(4), K0=np.float64(1)
    )
    assert K.shape == (5,)


RESPONSE_GOOD = dict(sigma_w2=1.0, depth=10, c0=0.9)


@pytest.mark.parametrize(
    "fn,changes,message",
    [
        (fieldgen.sensitivity, dict(r=0.3, c0=1.2), r"c0 must be a correlation in \[-1, 1\]"),
        (
            fieldgen.sensitivity,
            dict(r=0.3, c0=[0.5, 0.6]),
            r"c0 must be a single number in \[-1, 1\]",
        ),
        (fieldgen.sensitivity, dict(r=0.3, K0=0.0), r"K0 must be > 0"),
        (fieldgen.sensitivity, dict(r=-0.3), r"r must be >= 0"),
        (fieldgen.sensitivity, dict(r=0.3, block="pre"), r"block must be one of"),
        (fieldgen.optimal_r, dict(sigma_w2=0.0), r"sigma_w2 must be > 0"),
        (fieldgen.optimal_r, dict(depth=0), r"depth must be an integer >= 1"),
        (fieldgen.optimal_r, dict(method="exact"), r"method must be one of 'numeric', 'analytic'"),
        (fieldgen.optimal_r, dict(input="image"), r"input must be one of"),
        (fieldgen.optimal_r, dict(sigma_b2=math.nan), r"sigma_b2 must be finite"),
    ],
)
def test_bad_sensitivity_and_optimum_arguments(fn, changes, message):
    with pytest.raises(ValueError, match=message):
        fn("erf", **{**RESPONSE_GOOD, **changes})


def test_bad_response_arguments():
    with pytest.raises(ValueError, match=r"K0 must be symmetric"):
        fieldgen.response("erf", r=0.3, sigma_w2=1.0, depth=3, K0=[[1.0, 0.3], [0.2, 1.0]])
    with pytest.raises(ValueError, match=r"activation must be one of"):
        fieldgen.response("swish7", r=0.3, sigma_w2=1.0, depth=3, K0=1.0)
