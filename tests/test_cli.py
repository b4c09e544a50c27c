"""The optimal-r and scan commands: output, CSV, errors as one line with exit code 2."""

import csv
import subprocess
import sys
from pathlib import Path

import pytest

import fieldgen
from fieldgen.cli import main

BIN = Path(sys.executable).parent


def test_optimal_r_prints_numeric_and_analytic_r_star_and_the_range(capsys):
    assert main(["optimal-r", "erf", "--depth", "100", "--c0", "0.9"]) == 0
    out = capsys.readouterr().out
    best = fieldgen.optimal_r("erf", sigma_w2=1.0, depth=100, c0=0.9)
    analytic = fieldgen.optimal_r("erf", sigma_w2=1.0, depth=100, c0=0.9, method="analytic")
    assert f"r* = {best.r_star:.6g}" in out
    assert f"[{best.r_lo:.4g}, {best.r_hi:.4g}]" in out
    assert f"analytic: r* = {analytic.r_star:.6g}" in out and "L0 =" in out
    assert (
        f"0.1-0.3 inside the range of maximal sensitivity: {'yes' if best.contains() else 'no'}"
        in out
    )


def test_optimal_r_reports_no_interior_maximum_for_relu(capsys):
    assert main(["optimal-r", "relu", "--depth", "50"]) == 0
    out = capsys.readouterr().out
    assert out.count("no interior maximum") == 2 and "inside the range" not in out


def test_scan_table_and_csv(tmp_path, capsys):
    path = tmp_path / "scan.csv"
    assert (
        main(["scan", "erf", "--depths", "40", "120", "--sigma-w2", "1", "2", "--csv", str(path)])
        == 0
    )
    out = capsys.readouterr().out
    assert "d ln r*/d ln sw2" in out and f"wrote {path}" in out
    rows = list(csv.DictReader(path.open()))
    assert [(r["depth"], r["sigma_w2"]) for r in rows] == [
        ("40", "1.0"),
        ("40", "2.0"),
        ("120", "1.0"),
        ("120", "2.0"),
    ]
    for row in rows:
        best = fieldgen.optimal_r(
            "erf", sigma_w2=float(row["sigma_w2"]), depth=int(row["depth"]), c0=0.9
        )
        assert float(row["r_star"]) == pytest.approx(best.r_star, rel=1e-12)
        # Full block, no bias, fixed kernel: r* sigma_w is invariant, the exponent is -1/2.
        assert float(row["exponent"]) == pytest.approx(-0.5, abs=1e-6)


@pytest.mark.parametrize(
    "argv,message",
    [
        (["optimal-r", "erf", "--c0", "1.5"], "c0 must be a correlation in [-1, 1]"),
        (["optimal-r", "swish7"], "activation must be one of"),
        (["optimal-r", "erf", "--sigma-w2", "0"], "sigma_w2 must be > 0"),
        (["scan", "erf", "--depths", "0"], "depth must be an integer >= 1"),
    ],
)
def test_errors_are_one_line_with_exit_code_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


@pytest.mark.parametrize("command", ["optimal-r", "scan"])
def test_help(command):
    out = subprocess.run(
        [str(BIN / "fieldgen"), command, "--help"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0 and "usage: fieldgen " + command in out.stdout


# ---- every subcommand: --help, one-line errors, --version, --debug ---------------------------

COMMANDS = ["regenerate", "summary", "latex", "optimal-r", "scan"]


def _run(*argv):
    return subprocess.run(
        [str(BIN / "fieldgen"), *argv], capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize("command", COMMANDS)
def test_every_subcommand_has_help(command):
    out = _run(command, "--help")
    assert (
        out.returncode == 0
        and f"usage: fieldgen {command}" in out.stdout
        and "--debug" in out.stdout
    )


def test_version():
    out = _run("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"fieldgen {fieldgen.__version__}"


BAD = [
    ([], "fieldgen: error: the following arguments are required: command"),
    (["frobnicate"], "fieldgen: error: argument command: invalid choice: 'frobnicate'"),
    (["--bogus"], "fieldgen: error:"),
    (["regenerate", "--check", "extra"], "fieldgen: error: unrecognized arguments: extra"),
    (
        ["summary", "--depth", "ten"],
        "fieldgen summary: error: argument --depth: invalid int value: 'ten'",
    ),
    (["summary", "--depth", "-1"], "fieldgen summary: error: depth must be an integer >= 0"),
    (["summary", "--activations", "swish7"], "fieldgen summary: error: activation must be one of"),
    (["summary", "--r", "nan"], "fieldgen summary: error: r must be finite"),
    (
        ["summary", "--block", "pre"],
        "fieldgen summary: error: argument --block: invalid choice: 'pre'",
    ),
    (["summary", "--c0", "1.5"], "fieldgen summary: error: c0 must be a correlation in [-1, 1]"),
    (
        ["summary", "--r", "10", "--sigma-w2", "100", "--depth", "300", "--activations", "relu"],
        "fieldgen summary: error: the mean-field kernel leaves the float64 range at layer",
    ),
    (["latex", "--pdf"], "fieldgen latex: error: --pdf needs -o FILE.tex"),
    (["latex", "--section", "nonsense"], "fieldgen latex: error:"),
    (
        ["optimal-r"],
        "fieldgen optimal-r: error: name an activation (e.g. erf) or define one with --activation",
    ),
    (["optimal-r", "erf", "--K0", "-1"], "fieldgen optimal-r: error: K0 must be > 0"),
    (
        ["optimal-r", "erf", "--input", "image"],
        "fieldgen optimal-r: error: argument --input: invalid choice",
    ),
    (
        ["scan"],
        "fieldgen scan: error: name an activation (e.g. erf) or define one with --activation",
    ),
    (
        ["scan", "erf", "--depths", "x"],
        "fieldgen scan: error: argument --depths: invalid int value: 'x'",
    ),
    (
        ["scan", "erf", "--depths", "10", "--sigma-w2", "-2"],
        "fieldgen scan: error: sigma_w2 must be > 0",
    ),
]


@pytest.mark.parametrize("argv,message", BAD, ids=[" ".join(a) or "(none)" for a, _ in BAD])
def test_bad_arguments_exit_2_with_one_line_and_no_traceback(argv, message):
    out = _run(*argv)
    assert out.returncode == 2, out.stdout + out.stderr
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr, out.stderr
    assert out.stderr.startswith(message), out.stderr


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_shows_the_traceback(where):
    argv = ["summary", "--depth", "-1"]
    out = _run(*(["--debug", *argv] if where == "before" else [*argv, "--debug"]))
    assert out.returncode != 0
    assert "Traceback" in out.stderr and "ValueError: depth must be an integer >= 0" in out.stderr


def test_main_reports_in_process_too(capsys):
    assert main(["summary", "--depth", "-1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("fieldgen summary: error: depth must be")
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert (
        exc.value.code == 0
        and capsys.readouterr().out.strip() == f"fieldgen {fieldgen.__version__}"
    )
