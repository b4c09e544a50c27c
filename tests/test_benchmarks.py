"""The benchmark scripts run, and their NumPy references agree with the generated evaluators."""

import re
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def test_bench_kernel_runs_and_its_numpy_reference_agrees_with_the_generated_path():
    """A small grid: the timings are meaningless here, the last column is not: the NumPy
    recursion (libm arcsin / arccos) and the generated path agree to round-off."""
    run = subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS / "bench_kernel.py"),
            "--grid",
            "5",
            "--depth",
            "40",
            "--repeat",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    rows = [line.split() for line in run.stdout.splitlines() if re.match(r"(erf|relu)\s", line)]
    assert [row[0] for row in rows] == ["erf", "relu"]
    for row in rows:
        assert float(row[-1]) < 1e-13, row
