"""Fixtures shared by the tests, and the hypothesis profile.

Property tests run with a fixed, derandomised profile (the same examples on every run and in CI;
no example database), a bounded number of examples and no deadline (Numba compiles lazily, so a
first call can take seconds). HYPOTHESIS_PROFILE=explore draws fresh random examples.
"""

import os
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    max_examples=25,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "explore", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def reference():
    pytest.importorskip("scipy")
    from fieldgen import reference as ref

    return ref


@pytest.fixture(scope="session")
def built(tmp_path_factory):
    """A full rebuild in a fresh process with another hash seed, written to a temporary folder:
    file name -> text."""
    folder = tmp_path_factory.mktemp("rebuilt")
    code = (
        "import sys, pathlib; from fieldgen.codegen.regenerate import build; "
        "[pathlib.Path(sys.argv[1], n).write_text(t) for n, t in build().items()]"
    )
    env = dict(os.environ, PYTHONHASHSEED="12345")
    out = subprocess.run(
        [sys.executable, "-c", code, str(folder)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    return {p.name: p.read_text() for p in folder.glob("*.py")}
