"""Fuzz test of the whole public surface (issue 13): every public function and CLI subcommand on
random mixes of valid and invalid arguments.

Each call must either return finite numbers of the documented shape, or raise one of ValueError,
OverflowError, NotImplementedError or MemoryError (fieldgen's own memory check) with a message
naming a parameter (or, for overflow, the layer). Any other exception type, a NaN or an inf is a
failure. The CLI must exit 0 with no `nan` in its output, or exit 1, 2 or 130 with exactly one
line on stderr. Runs under the fixed, derandomised hypothesis profile of conftest.py; the example
counts are modest so that `make test` stays fast.
"""

import contextlib
import io
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fieldgen
from fieldgen.cli import main

ALLOWED = (ValueError, OverflowError, NotImplementedError, MemoryError)
NAMES = (
    "activation",
    "r",
    "sigma_w2",
    "sigma_b2",
    "depth",
    "K0",
    "c0",
    "block",
    "input",
    "width",
    "samples",
    "method",
    "seed",
    "layer",
    "K^0",
)

REALS = st.one_of(
    st.floats(min_value=0.0, max_value=4.0),
    st.sampled_from(
        [
            0.0,
            1e-320,
            1e-200,
            1e-160,
            0.1,
            0.3,
            1.0,
            2.0,
            1e10,
            1e155,
            1e300,
            1e308,
            -1.0,
            -1e-300,
            float("nan"),
            float("inf"),
            -float("inf"),
        ]
    ),
    st.sampled_from(
        [
            np.float32(0.5),
            np.int64(1),
            1,
            True,
            "0.3",
            None,
            1 + 0j,
            np.complex128(0.5),
            [0.1, 0.3],
            np.array([[0.2], [0.5]]),
        ]
    ),
)
K0S = st.one_of(
    REALS,
    st.builds(
        lambda s, c: s * np.array([[1.0, c], [c, 1.0]]),
        st.sampled_from([1e-300, 1e-200, 1e-160, 1e-3, 1.0, 10.0, 1e155, 1e300]),
        st.sampled_from([-1.0, -0.5, 0.0, 0.9, 1.0, 1.1]),
    ),
    st.builds(
        lambda a, b, c: np.array([[a, c * np.sqrt(a * b)], [c * np.sqrt(a * b), b]]),
        st.sampled_from([0.0, 1e-4, 1.0, 1e4]),
        st.sampled_from([0.0, 1.0, 10.0]),
        st.sampled_from([-1.0, 0.5, 1.0]),
    ),
    st.sampled_from([np.eye(3), [[1.0, 2.0], [0.0, 1.0]], [[1.0, 0.5], [0.5, -1.0]], "x"]),
)
DEPTHS = st.sampled_from([0, 1, 2, 5, 12, -1, 2.0, True, "3", None, 10**13])
SMALL_DEPTHS = st.sampled_from([0, 1, 2, 5, -1, 2.0, True, "3", None])
ACTIVATIONS = st.sampled_from([*fieldgen.ACTIVATIONS, "gelu", "", None, 1])
CHEAP_ACTIVATIONS = st.sampled_from(["erf", "relu", "linear", "gelu", None])  # tanh integrates
BLOCKS = st.sampled_from(["full", "full", "reduced", "bogus", None])
INPUTS = st.sampled_from(["kernel", "kernel", "layer", "bogus"])


def _finite(value):
    return np.all(np.isfinite(np.asarray(value, dtype=float)))


def _grid_shape(*values):
    return np.broadcast_shapes(*(np.shape(v) for v in values))


def _call(fn, **kw):
    """fn(**kw), or None when it raised an allowed exception with a message naming a parameter."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # NumPy overflow/invalid must not leak
        try:
            return fn(**kw)
        except ALLOWED as exc:
            message = str(exc)
            assert "\n" not in message.strip() or isinstance(exc, NotImplementedError), message
            assert any(name in message for name in NAMES), f"{type(exc).__name__}: {message}"
            return None


@settings(max_examples=60)
@given(
    activation=ACTIVATIONS,
    r=REALS,
    sigma_w2=REALS,
    sigma_b2=REALS,
    depth=DEPTHS,
    K0=K0S,
    block=BLOCKS,
    input=INPUTS,
)
def test_kernel(activation, r, sigma_w2, sigma_b2, depth, K0, block, input):
    K = _call(
        fieldgen.kernel,
        activation=activation,
        r=r,
        sigma_w2=sigma_w2,
        sigma_b2=sigma_b2,
        depth=depth,
        K0=K0,
        block=block,
        input=input,
    )
    if K is not None:
        tail = (depth + 1,) if np.ndim(K0) == 0 else (depth + 1, 2, 2)
        assert K.shape == _grid_shape(r, sigma_w2, sigma_b2) + tail and _finite(K)


@settings(max_examples=40)
@given(
    activation=ACTIVATIONS,
    r=REALS,
    sigma_w2=REALS,
    sigma_b2=REALS,
    depth=DEPTHS,
    K0=K0S,
    block=BLOCKS,
    input=INPUTS,
    terms=st.booleans(),
)
def test_one_loop(activation, r, sigma_w2, sigma_b2, depth, K0, block, input, terms):
    kw = dict(
        activation=activation,
        r=r,
        sigma_w2=sigma_w2,
        sigma_b2=sigma_b2,
        depth=depth,
        K0=K0,
        block=block,
        input=input,
    )
    pair = () if np.ndim(K0) == 0 else (3,)
    cov = _call(fieldgen.kernel_covariance, **kw)
    if cov is not None:
        assert cov.shape == (depth + 1, depth + 1) + pair + pair and _finite(cov)
    shift = _call(fieldgen.kernel_mean_shift, terms=terms, **kw)
    if shift is not None:
        parts = shift if terms else [shift]
        for part in parts:
            assert part.shape == (depth + 1,) + pair and _finite(part)


@settings(max_examples=40)
@given(
    activation=ACTIVATIONS,
    r=REALS,
    sigma_w2=REALS,
    sigma_b2=REALS,
    depth=SMALL_DEPTHS,
    K0=K0S,
    block=BLOCKS,
    input=INPUTS,
    width=st.sampled_from([None, None, 1, 64, 0, 2.5, "8"]),
)
def test_response(activation, r, sigma_w2, sigma_b2, depth, K0, block, input, width):
    chi = _call(
        fieldgen.response,
        activation=activation,
        r=r,
        sigma_w2=sigma_w2,
        sigma_b2=sigma_b2,
        depth=depth,
        K0=K0,
        block=block,
        input=input,
        width=width,
    )
    if chi is not None:
        pair = () if np.ndim(K0) == 0 else (3, 3)
        grid = () if width is not None else _grid_shape(r, sigma_w2, sigma_b2)
        assert np.shape(chi) == grid + pair and _finite(chi)


@settings(max_examples=40)
@given(
    activation=ACTIVATIONS,
    r=REALS,
    sigma_w2=REALS,
    sigma_b2=REALS,
    depth=SMALL_DEPTHS,
    c0=REALS,
    K0=REALS,
    block=BLOCKS,
    input=INPUTS,
)
def test_sensitivity(activation, r, sigma_w2, sigma_b2, depth, c0, K0, block, input):
    S = _call(
        fieldgen.sensitivity,
        activation=activation,
        r=r,
        sigma_w2=sigma_w2,
        sigma_b2=sigma_b2,
        depth=depth,
        c0=c0,
        K0=K0,
        block=block,
        input=input,
    )
    if S is not None:
        assert np.shape(S) == _grid_shape(r, sigma_w2, sigma_b2) and _finite(S)


@settings(max_examples=25)
@given(
    activation=CHEAP_ACTIVATIONS,
    sigma_w2=REALS,
    sigma_b2=REALS,
    depth=st.sampled_from([1, 3, 8, 0, -1, "3"]),
    c0=REALS,
    K0=REALS,
    block=BLOCKS,
    input=INPUTS,
    method=st.sampled_from(["numeric", "analytic", "bogus"]),
)
def test_optimal_r(activation, sigma_w2, sigma_b2, depth, c0, K0, block, input, method):
    best = _call(
        fieldgen.optimal_r,
        activation=activation,
        sigma_w2=sigma_w2,
        sigma_b2=sigma_b2,
        depth=depth,
        c0=c0,
        K0=K0,
        block=block,
        input=input,
        method=method,
    )
    if best is not None:
        assert isinstance(best, fieldgen.OptimalR) and best.message
        for value in (best.r_star, best.S_max, best.r_lo, best.r_hi):
            assert value is None or np.isfinite(value)


@settings(max_examples=25)
@given(
    activation=CHEAP_ACTIVATIONS,
    r=REALS,
    sigma_w2=REALS,
    sigma_b2=REALS,
    depth=SMALL_DEPTHS,
    K0=K0S,
    width=st.sampled_from([1, 4, 0, 2.5]),
    samples=st.sampled_from([1, 3, 0, -1]),
    seed=st.sampled_from([0, 1, None]),
    method=st.sampled_from(list(fieldgen.METHODS) + ["bogus"]),
)
def test_simulate(activation, r, sigma_w2, sigma_b2, depth, K0, width, samples, seed, method):
    Khat = _call(
        fieldgen.simulate,
        activation=activation,
        r=r,
        sigma_w2=sigma_w2,
        sigma_b2=sigma_b2,
        depth=depth,
        K0=K0,
        width=width,
        samples=samples,
        seed=seed,
        method=method,
    )
    if Khat is not None:
        tail = (depth + 1,) if np.ndim(K0) == 0 else (depth + 1, 2, 2)
        assert Khat.shape == (samples,) + tail and _finite(Khat)


# ---- the command line --------------------------------------------------------------------------

NUMBERS = st.sampled_from(["0", "1", "0.3", "2", "-1", "1e-320", "1e300", "nan", "inf", "x", ""])
OPTIONS = st.lists(
    st.tuples(st.sampled_from(["--sigma-w2", "--sigma-b2", "--K0", "--c0"]), NUMBERS), max_size=3
)


def _argv(command, options, extra):
    argv = [command, *extra]
    for flag, value in options:
        argv += [flag, value]
    return argv


def _run_cli(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse: usage errors
            code = exc.code
    return code, out.getvalue(), err.getvalue()


def _check_cli(argv):
    code, out, err = _run_cli(argv)
    if code == 0:
        assert "nan" not in out.lower().split() and " nan " not in out, (argv, out)
    else:
        assert code in (1, 2, 130), (argv, code, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("fieldgen"), (argv, err)


@settings(max_examples=30)
@given(
    options=OPTIONS,
    activations=st.lists(CHEAP_ACTIVATIONS.filter(bool), min_size=1, max_size=2),
    depth=st.sampled_from(["0", "3", "-1", "2.5", "10000000000000"]),
    r=st.lists(NUMBERS, min_size=1, max_size=2),
    block=st.sampled_from(["full", "reduced", "x"]),
)
def test_cli_summary(options, activations, depth, r, block):
    _check_cli(
        _argv(
            "summary",
            options,
            ["--activations", *activations, "--depth", depth, "--r", *r, "--block", block],
        )
    )


@settings(max_examples=20)
@given(
    options=OPTIONS,
    activation=st.sampled_from(["erf", "relu", "linear", "gelu"]),
    depth=st.sampled_from(["1", "4", "0", "x"]),
    input=st.sampled_from(["kernel", "layer"]),
)
def test_cli_optimal_r(options, activation, depth, input):
    _check_cli(_argv("optimal-r", options, [activation, "--depth", depth, "--input", input]))


@settings(max_examples=12)
@given(
    options=OPTIONS,
    activations=st.lists(st.sampled_from(["erf", "relu", "gelu"]), min_size=1, max_size=2),
    depths=st.lists(st.sampled_from(["1", "3", "0", "-2"]), min_size=1, max_size=2),
    extra=st.sampled_from([[], ["--no-analytic"], ["--csv", ""]]),
)
def test_cli_scan(options, activations, depths, extra):
    _check_cli(_argv("scan", options, [*activations, "--depths", *depths, "--no-analytic", *extra]))


@pytest.mark.parametrize(
    "argv",
    [
        ["latex", "--list-sections"],
        ["latex", "--section", "bogus"],
        ["latex", "--pdf"],
        ["latex", "-o", ""],
        ["regenerate", "--bogus"],
        ["report", "--out", ""],
        ["report", "--bogus"],
        ["bogus"],
        [],
        ["--version"],
        ["summary", "--depth"],
    ],
)
def test_cli_other_subcommands(argv):
    _check_cli(argv)
