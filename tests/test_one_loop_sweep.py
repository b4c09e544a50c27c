"""The full one-loop validation grid (slow: run with `make test-slow`)."""

import io
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))


@pytest.mark.slow
def test_one_loop_agrees_with_simulation_on_the_whole_grid():
    from validate_one_loop import sweep

    rows = sweep(stream=io.StringIO())
    z = np.array([row[-1] for row in rows])
    assert np.all(np.abs(z) < 4), [row for row in rows if abs(row[-1]) >= 4]
