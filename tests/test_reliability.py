"""Issue 13: every failure is one clear line, scales, and the smaller promises (items 3, 5, 6, 8).

Independent references: exact limits (r = 0 is the identity network, S = 1 and chi = 1), exact
homogeneity of relu and linear networks without bias (K^l scales with K^0), and continuity of the
one-loop response at the boundary of the positive semi-definite cone.
"""

import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

import fieldgen
from fieldgen import cli
from fieldgen.cli import main

BIN = Path(sys.executable).parent


def _one_line_error(capsys, argv, code, *fragments):
    assert main(argv) == code
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


# ---- item 3: the one-loop response at full correlation with unequal norms --------------------


@pytest.mark.parametrize("activation", ["erf", "tanh", "linear"])
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_one_loop_response_at_full_correlation_with_unequal_norms(activation, sign):
    k11, k22 = 1e4, 10.0
    k12 = sign * np.sqrt(k11 * k22)
    kw = dict(r=0.3, sigma_w2=1.0, depth=3, width=100)
    edge = fieldgen.response(activation, K0=[[k11, k12], [k12, k22]], **kw)
    assert edge.shape == (2, 2, 2, 2) and np.all(np.isfinite(edge))
    # Continuity: just inside the cone (central differences there) gives nearly the same.
    inside = fieldgen.response(
        activation, K0=[[k11, k12 * (1 - 1e-9)], [k12 * (1 - 1e-9), k22]], **kw
    )
    assert np.allclose(edge, inside, atol=2e-3)


def test_one_loop_response_of_relu_at_full_correlation_names_K0():
    with pytest.raises(ValueError, match="K0"):
        fieldgen.response(
            "relu", r=0.3, sigma_w2=1.0, depth=3, K0=[[4.0, 2.0], [2.0, 1.0]], width=10
        )


# ---- item 5: scales ----------------------------------------------------------------------------


def _corr(K):
    return K[..., 0, 1] / (np.sqrt(K[..., 0, 0]) * np.sqrt(K[..., 1, 1]))


@pytest.mark.parametrize("activation", ["relu", "linear"])
@pytest.mark.parametrize("scale", [1e-300, 1e-200, 1e-160, 1e160, 1e300])
def test_homogeneous_networks_are_exact_at_every_scale(activation, scale):
    """Without bias relu and linear K^l is homogeneous of degree 1 in K^0 (exactly): the
    correlations and K^l/K^0 must not depend on the scale, no NumPy warning may leak."""
    K0 = np.array([[1.0, 0.9], [0.9, 1.0]])
    kw = dict(r=0.3, sigma_w2=1.0, depth=20)
    unit = fieldgen.kernel(activation, K0=K0, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scaled = fieldgen.kernel(activation, K0=K0 * scale, **kw)
        S = fieldgen.sensitivity(activation, c0=0.9, K0=scale, **kw)
        chi = fieldgen.response(activation, K0=K0 * scale, **kw)
    assert np.allclose(_corr(scaled), _corr(unit), rtol=1e-13, atol=0)
    assert np.allclose(scaled[:, 0, 0] / scale, unit[:, 0, 0], rtol=1e-13, atol=0)
    assert pytest.approx(fieldgen.sensitivity(activation, c0=0.9, K0=1.0, **kw), rel=1e-13) == S
    assert np.allclose(chi, fieldgen.response(activation, K0=K0, **kw), rtol=1e-12, atol=1e-300)


def test_a_valid_huge_kernel_is_accepted_and_a_non_psd_tiny_one_rejected():
    huge = [[1e308, 1e308], [1e308, 1e308]]
    K = fieldgen.kernel("linear", r=0.0, sigma_w2=1.0, depth=1, K0=huge)
    assert np.array_equal(K[-1], np.array(huge))
    with pytest.raises(ValueError, match="K0 must be positive semi-definite"):
        fieldgen.kernel(
            "relu", r=0.3, sigma_w2=1.0, depth=3, K0=[[1e-200, 1.01e-200], [1.01e-200, 1e-200]]
        )


@pytest.mark.parametrize("activation", fieldgen.ACTIVATIONS)
@pytest.mark.parametrize("scale", [1e-300, 1e155, 1e300])
def test_identity_network_has_S_one_at_every_scale(activation, scale):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert (
            fieldgen.sensitivity(activation, r=0.0, sigma_w2=1.0, depth=5, c0=0.9, K0=scale) == 1.0
        )


def test_scale_dependent_networks_name_K0_or_the_layer_never_a_silent_decorrelation():
    kw = dict(r=0.3, sigma_w2=1.0, depth=5)
    with pytest.raises(ValueError, match="K0: variances"):
        fieldgen.kernel("erf", K0=1e-200 * np.array([[1, 1.0], [1.0, 1]]), **kw)
    with pytest.raises(OverflowError, match="at layer 0"):
        fieldgen.kernel("tanh", K0=1e200 * np.eye(2), **kw)
    with pytest.raises(OverflowError, match="at layer 0"):
        fieldgen.sensitivity("erf", c0=0.9, K0=1e155, **kw)
    # A path that grows past the resolved range names the layer where it does.
    with pytest.raises(OverflowError, match=r"at layer [1-9]"):
        fieldgen.kernel(
            "erf",
            r=1.0,
            sigma_w2=1.0,
            sigma_b2=3e149,
            depth=10,
            K0=1e149 * np.array([[1, 0.5], [0.5, 1]]),
        )


# ---- item 6: memory checks, progress, one-line CLI failures ----------------------------------


def test_memory_checks_before_large_results_name_the_parameter():
    with pytest.raises(MemoryError, match="depth"):
        fieldgen.kernel("erf", r=0.3, sigma_w2=1.0, depth=10**13, K0=1.0)
    with pytest.raises(MemoryError, match="depth"):
        fieldgen.kernel_covariance("erf", r=0.3, sigma_w2=1.0, depth=10**8, K0=1.0)


def test_optimal_r_progress_bar(capsys):
    best = fieldgen.optimal_r("erf", sigma_w2=1.0, depth=30, c0=0.9, progress=True)
    err = capsys.readouterr().err
    assert best and "optimal_r erf depth 30" in err and "done in" in err
    fieldgen.optimal_r("erf", sigma_w2=1.0, depth=30, c0=0.9)  # not a terminal: silent
    assert capsys.readouterr().err == ""


def test_summary_with_zero_variance_is_an_error_naming_K0(capsys):
    _one_line_error(capsys, ["summary", "--K0", "0", "--depth", "3"], 2, "K0 must be > 0")


def test_memory_error_is_one_line_with_exit_1(capsys):
    _one_line_error(
        capsys,
        ["summary", "--depth", str(10**13), "--activations", "erf"],
        1,
        "fieldgen summary: error:",
        "depth",
        "GiB",
    )


def test_keyboard_interrupt_is_one_line_with_exit_130(monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt

    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    parser._subparsers._group_actions[0].choices["summary"].set_defaults(run=interrupted)
    assert main(["summary"]) == 130
    assert capsys.readouterr().err == "fieldgen summary: interrupted\n"


def test_missing_generated_module_is_one_line(monkeypatch, capsys):
    import fieldgen.meanfield as meanfield

    def missing(kind, activation):
        raise ModuleNotFoundError(
            f"No module named 'fieldgen.generated.{kind}_{activation}'",
            name=f"fieldgen.generated.{kind}_{activation}",
        )

    monkeypatch.setattr(meanfield, "module", missing)
    _one_line_error(
        capsys,
        ["summary", "--depth", "3"],
        1,
        "fieldgen.generated.meanfield_relu",
        "fieldgen regenerate",
    )


def test_unexpected_exception_is_one_line(monkeypatch, capsys):
    import fieldgen.meanfield as meanfield

    def broken(kind, activation):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(meanfield, "module", broken)
    _one_line_error(capsys, ["summary", "--depth", "3"], 1, "internal error (ZeroDivisionError")


def test_messages_name_the_right_parameter(capsys):
    line = _one_line_error(capsys, ["optimal-r", "erf", "--sigma-w2", "1e-320"], 2, "sigma_w2")
    assert "r must be finite" not in line and "array(" not in line
    _one_line_error(capsys, ["optimal-r", "erf", "--sigma-b2", "1e300"], 2, "sigma_b2")


def test_optimal_r_prints_the_real_S_at_zero_with_an_input_layer(capsys):
    assert main(["optimal-r", "erf", "--input", "layer", "--sigma-b2", "0.1", "--depth", "30"]) == 0
    out = capsys.readouterr().out
    s0 = fieldgen.sensitivity(
        "erf", r=0.0, sigma_w2=1.0, sigma_b2=0.1, depth=30, c0=0.9, input="layer"
    )
    assert s0 < 0.99
    assert f"(S(0) = {s0:.6g})" in out and "(S(0) = 1)" not in out


def test_huge_r_star_prints_in_scientific_notation(capsys):
    assert main(["scan", "erf", "--depths", "2", "--sigma-w2", "1e-300", "--no-analytic"]) == 0
    row = capsys.readouterr().out.splitlines()[2]
    assert "e+150" in row and len(row) < 140


def _interrupt_after(argv, seconds):
    proc = subprocess.Popen(
        [str(BIN / "fieldgen"), *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    time.sleep(seconds)
    proc.send_signal(signal.SIGINT)
    start = time.monotonic()
    try:
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    return proc.returncode, err, time.monotonic() - start


def test_ctrl_c_in_a_long_search_exits_130_with_one_line():
    # long enough to be running when the signal comes, whatever the machine
    code, err, _ = _interrupt_after(["optimal-r", "erf", "--depth", "100000000"], 4)
    assert code == 130 and err.strip() == "fieldgen optimal-r: interrupted", err


def test_ctrl_c_during_a_full_regenerate_stops_within_10_seconds():
    """`timeout -s INT 10 fieldgen regenerate --full` hung forever (workers of a process pool)."""
    code, err, waited = _interrupt_after(["regenerate", "--full", "--check"], 8)
    assert waited < 10, f"took {waited:.1f} s after SIGINT"
    assert code == 130 and err.strip() == "fieldgen regenerate: interrupted", err


# ---- item 8: one rule for numeric inputs -------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        np.complex128(0.3),
        0.3 + 0j,
        np.array([0.1, 0.2j]),
        True,
        "0.3",
        np.array(["0.3"]),
        [0.1, "x"],
        None,
        object(),
    ],
)
def test_non_real_numbers_are_rejected_naming_the_parameter(bad):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ComplexWarning on the way
        # r=None means "not given" (tau may stand in for it): then neither of the two is
        r_message = "^r, tau: give exactly one" if bad is None else "^r must be a real number"
        with pytest.raises(ValueError, match=r_message):
            fieldgen.kernel("erf", r=bad, sigma_w2=1.0, depth=2, K0=1.0)
        with pytest.raises(ValueError, match="^K0 must be a real number"):
            fieldgen.kernel("erf", r=0.3, sigma_w2=1.0, depth=2, K0=bad)


def test_empty_output_names_are_rejected(capsys):
    _one_line_error(capsys, ["report", "--out", ""], 2, "--out must name a folder")
    _one_line_error(capsys, ["latex", "-o", ""], 2, "-o/--output must name a file")


def test_latex_write_error_names_the_target(tmp_path, capsys):
    target = tmp_path / "missing" / "doc.tex"
    line = _one_line_error(
        capsys, ["latex", "--section", "model", "-o", str(target)], 1, f"cannot write {target}"
    )
    assert ".tmp" not in line
