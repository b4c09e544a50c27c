"""Issue 13.1: a read-only install used by an account without a writable home.

The package is copied into a read-only tree and imported by the unprivileged user `nobody` with
HOME unset: Numba can cache neither next to the sources nor in a home folder. fieldgen must
still work: with its private folder in the temporary directory, or, where that folder cannot be
used, compiling in memory with one warning. Needs root (to switch user) and setpriv.
"""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import fieldgen
import fieldgen.generated

NOBODY = 65534
SCRIPT = """
import fieldgen, numpy as np
assert fieldgen.__file__.startswith({root!r}), fieldgen.__file__
K = fieldgen.kernel("linear", r=0.5, sigma_w2=1.0, depth=2, K0=1.0)
assert np.allclose(K, [1.0, 1.25, 1.5625]), K
print("ok")
"""

pytestmark = pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("setpriv") is None,
    reason="needs root and setpriv to run as an unprivileged user",
)


@pytest.fixture(scope="module")
def readonly_tree():
    root = Path(tempfile.mkdtemp(prefix="fieldgen-ro-"))
    try:
        pkg = root / "fieldgen"
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        shutil.copytree(Path(fieldgen.__file__).parent, pkg, ignore=ignore)
        shutil.copytree(Path(fieldgen.generated.__file__).parent, pkg / "generated", ignore=ignore)
        for path in [root, *root.rglob("*")]:
            path.chmod(0o555 if path.is_dir() else 0o444)
        yield root
    finally:
        for path in [root, *root.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        shutil.rmtree(root)


def _run_as_nobody(tree: Path, tmpdir: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NUMBA_", "XDG_"))}
    env.pop("HOME", None)
    # -S: no site hooks, so the development install's editable finder cannot shadow the copy;
    # the dependencies come from site-packages listed after the read-only tree.
    site = [p for p in sys.path if p.endswith("site-packages")]
    env.update(
        PYTHONPATH=os.pathsep.join([str(tree), *site]),
        TMPDIR=str(tmpdir),
        PYTHONDONTWRITEBYTECODE="1",
    )
    command = [
        "setpriv",
        f"--reuid={NOBODY}",
        f"--regid={NOBODY}",
        "--clear-groups",
        sys.executable,
        "-S",
        "-c",
        SCRIPT.format(root=str(tree)),
    ]
    return subprocess.run(command, env=env, cwd=tmpdir, capture_output=True, text=True, timeout=600)


def test_read_only_install_without_home_caches_in_a_private_temporary_folder(readonly_tree):
    tmpdir = Path(tempfile.mkdtemp(prefix="fieldgen-tmp-"))
    try:
        tmpdir.chmod(0o777)
        for _ in range(2):  # the second process reads what the first one cached
            done = _run_as_nobody(readonly_tree, tmpdir)
            assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
            assert "warning" not in done.stderr and "Traceback" not in done.stderr, done.stderr
        cached = tmpdir / f"fieldgen-numba-{NOBODY}"
        assert any(cached.rglob("*.nbi")), list(tmpdir.rglob("*"))
        assert not any(readonly_tree.rglob("*.nbi"))
    finally:
        shutil.rmtree(tmpdir)


def test_no_private_folder_compiles_in_memory_with_one_warning(readonly_tree):
    """The temporary directory's fieldgen folder exists but belongs to someone else (root): it is
    not used (another user could plant cache files there); fieldgen compiles in memory."""
    tmpdir = Path(tempfile.mkdtemp(prefix="fieldgen-tmp-"))
    try:
        tmpdir.chmod(0o777)
        (tmpdir / f"fieldgen-numba-{NOBODY}").mkdir(mode=0o777)
        (tmpdir / f"fieldgen-numba-{NOBODY}").chmod(0o777)
        done = _run_as_nobody(readonly_tree, tmpdir)
        assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "compiling in memory" in lines[0], done.stderr
        assert not any(tmpdir.rglob("*.nbi"))
    finally:
        shutil.rmtree(tmpdir)
