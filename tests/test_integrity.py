"""Generated-code integrity: the import-time hash check, and `regenerate` killed mid-run, run twice
at once, and run on a read-only folder."""

import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fieldgen.codegen import regenerate, writer

CHILD = Path(__file__).with_name("regenerate_child.py")


def _package_copy(root: Path, name: str = "gencopy") -> Path:
    """generated/ copied as a top-level package `name` under root (its own Numba cache)."""
    pkg = root / name
    shutil.copytree(regenerate.generated_dir(), pkg, ignore=shutil.ignore_patterns("__pycache__"))
    return pkg


def _import(root: Path, statement: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", statement], cwd=root, capture_output=True, text=True, timeout=600
    )


# ---- the warning at import --------------------------------------------------------------------


def test_checked_in_modules_import_without_a_warning():
    names = sorted(p.stem for p in regenerate.generated_dir().glob("*.py") if p.stem != "__init__")
    out = subprocess.run(
        [
            sys.executable,
            "-W",
            "error",
            "-c",
            "; ".join(f"import fieldgen.generated.{n}" for n in names),
        ],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize(
    "how", ["import gencopy.gauss_linear", "import gencopy; gencopy.module('gauss', 'linear')"]
)
def test_an_edited_module_warns_with_the_command_that_repairs_it(tmp_path, how):
    pkg = _package_copy(tmp_path)
    target = pkg / "gauss_linear.py"
    target.write_text(target.read_text().replace("return", "return 0 +", 1))
    out = _import(tmp_path, how)
    assert out.returncode == 0, out.stderr
    assert "GeneratedCodeWarning" in out.stderr and "gauss_linear.py was edited" in out.stderr
    assert "run `fieldgen regenerate`" in out.stderr
    # An intact copy imports silently (the check reads its own file, wherever it is).
    target.write_text((regenerate.generated_dir() / "gauss_linear.py").read_text())
    assert (
        _import(tmp_path, f"import warnings; warnings.simplefilter('error'); {how}").returncode == 0
    )


def test_a_module_that_no_longer_compiles_still_warns_first(tmp_path):
    pkg = _package_copy(tmp_path)
    target = pkg / "inputs.py"
    # Generated functions compile lazily: break the module's imports, which run after the check.
    target.write_text(
        target.read_text().replace("import numpy as np", "import numpy_missing as np", 1)
    )
    out = _import(tmp_path, "import gencopy.inputs")
    assert out.returncode != 0 and "inputs.py was edited" in out.stderr


def test_a_damaged_banner_or_package_init_warns(tmp_path):
    pkg = _package_copy(tmp_path)
    init = pkg / "__init__.py"
    lines = init.read_text().split("\n")
    init.write_text("\n".join(lines[:3] + lines[4:]))  # content hash line removed
    out = _import(tmp_path, "import gencopy")
    assert "__init__.py was edited" in out.stderr


def test_import_overhead_of_the_check_is_negligible():
    from fieldgen.generated import check_integrity

    path = regenerate.generated_dir() / "oneloop_tanh.py"  # the largest module
    start = time.perf_counter()
    for _ in range(100):
        check_integrity(path)
    assert (time.perf_counter() - start) / 100 < 2e-3


# ---- regenerate: killed mid-run, concurrent, read-only ----------------------------------------


def _old_tree(folder: Path, built: dict) -> dict:
    """Write an older generation of every file (and one that is no longer produced)."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir()
    old = {}
    for name, text in built.items():
        _, body = writer.split_banner(text)
        old[name] = writer.with_banner(body + "# previous generation\n", "0" * 64)
        (folder / name).write_text(old[name])
    (folder / "meanfield_gelu.py").write_text(writer.with_banner("x = 1\n", "0" * 64))
    return old


def _files_json(tmp_path, built) -> Path:
    path = tmp_path / "files.json"
    path.write_text(json.dumps(built))
    return path


def _start(files_json, folder, pause):
    proc = subprocess.Popen(
        [sys.executable, str(CHILD), str(files_json), str(folder), str(pause)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
    return proc


def _assert_each_file_old_or_new(folder: Path, old: dict, new: dict):
    for path in folder.iterdir():
        if path.name == "__pycache__":
            continue
        if path.name == "meanfield_gelu.py":  # a leftover: present until removed
            continue
        # Anything else must be a module of the tree or a hidden temporary file, never a
        # truncated module or an importable leftover.
        if path.name.startswith(".") and path.name.endswith(".tmp"):
            continue
        assert path.name in new, f"unexpected file {path.name}"
        text = path.read_text()
        assert text in (old[path.name], new[path.name]), f"{path.name} is neither old nor new"
    assert {p.name for p in folder.glob("*.py")} >= set(new), "a module disappeared"


def test_regenerate_killed_at_random_times_leaves_old_or_new_files(tmp_path, built):
    files_json = _files_json(tmp_path, built)
    folder = tmp_path / "generated"
    rng = random.Random(20240607)  # fixed: the same kill times on every run
    pause = 0.01
    run_time = pause * len(built)
    for _ in range(8):
        old = _old_tree(folder, built)
        proc = _start(files_json, folder, pause)
        time.sleep(rng.uniform(0, run_time))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        proc.stdout.close()
        proc.stderr.close()
        _assert_each_file_old_or_new(folder, old, built)
    # A later run finishes the job; the killed runs' temporaries are hidden and never importable.
    assert regenerate.regenerate(files=built, folder=folder, stream=io.StringIO()) == 0
    assert {p.name: p.read_text() for p in folder.glob("*.py")} == built
    assert all(
        p.name.startswith(".") and p.name.endswith(".tmp")
        for p in folder.iterdir()
        if p.name not in built and p.name != "__pycache__"
    )


def test_stale_temporaries_of_killed_runs_are_removed(tmp_path, built):
    folder = tmp_path / "generated"
    _old_tree(folder, built)
    stale, fresh = folder / ".gauss_relu.py.abc.tmp", folder / ".gauss_erf.py.def.tmp"
    stale.write_text("half a mod")
    fresh.write_text("a live run")
    hour_ago = time.time() - 3600
    os.utime(stale, (hour_ago, hour_ago))
    assert regenerate.regenerate(files=built, folder=folder, stream=io.StringIO()) == 0
    assert not stale.exists() and fresh.exists()  # a live run's file is left alone


def test_two_concurrent_regenerate_runs_leave_a_clean_build(tmp_path, built):
    files_json = _files_json(tmp_path, built)
    folder = tmp_path / "generated"
    _old_tree(folder, built)
    runs = [_start(files_json, folder, 0.005) for _ in range(2)]
    for proc in runs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    assert {p.name: p.read_text() for p in folder.glob("*.py")} == built
    assert regenerate.regenerate(check=True, files=built, folder=folder, stream=io.StringIO()) == 0


def test_unwritable_folder_fails_with_one_line_naming_it(tmp_path, built, monkeypatch, capsys):
    folder = tmp_path / "generated"
    _old_tree(folder, built)

    def refuse(path, text):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(writer, "write_atomic", refuse)
    assert regenerate.regenerate(files=built, folder=folder, stream=io.StringIO()) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(folder) in err and "Permission denied" in err
    assert err.startswith("fieldgen regenerate: error: cannot write generated files into")


def _without_root_override() -> list:
    """A command prefix under which a read-only folder is read-only even for root (root ignores
    mode bits through CAP_DAC_OVERRIDE; setpriv drops it from the bounding set)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: cannot make a folder read-only")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search"]


def test_read_only_install_directory_fails_cleanly(tmp_path, built):
    folder = tmp_path / "generated"
    old = _old_tree(folder, built)
    files_json = _files_json(tmp_path, built)
    for p in folder.iterdir():
        p.chmod(0o444)
    folder.chmod(0o555)
    try:
        out = subprocess.run(
            [
                *_without_root_override(),
                sys.executable,
                str(CHILD),
                str(files_json),
                str(folder),
                "0",
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        folder.chmod(0o755)
    assert out.returncode == 1, out.stdout + out.stderr
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr, out.stderr
    assert f"cannot write generated files into {folder}" in out.stderr
    assert {p.name: p.read_text() for p in folder.glob("*.py") if p.name in built} == old


# ---- the check that an edited banner cannot fool (issue 13.7) ---------------------------------


def test_edited_body_with_updated_hash_fools_the_banners_but_not_the_full_check(
    tmp_path, built, monkeypatch
):
    folder = tmp_path / "generated"
    shutil.copytree(
        regenerate.generated_dir(), folder, ignore=shutil.ignore_patterns("__pycache__")
    )
    target = folder / "gauss_linear.py"
    fields, body = writer.split_banner(target.read_text())
    target.write_text(
        writer.with_banner(body.replace("return", "return 0 +", 1), fields["sources"])
    )
    assert writer.content_intact(target.read_text())
    # The fast path trusts banners, so it is fooled (documented) ...
    assert regenerate.banners_current(folder)
    # ... the full check compares with a fresh build (here: the session's rebuild) and is not.
    monkeypatch.setattr(regenerate, "build", lambda jobs=None: built)
    report = io.StringIO()
    assert regenerate.regenerate(check=True, full=True, folder=folder, stream=report) == 1
    assert "gauss_linear.py" in report.getvalue()
    # `make check` is that full check.
    makefile = (Path(__file__).parent.parent / "Makefile").read_text()
    recipe = makefile.split("\ncheck:", 1)[1].split("\n\n", 1)[0]
    assert "regenerate --check --full" in recipe


# ---- a damaged Numba cache (issue 13.6) -------------------------------------------------------


def test_damaged_numba_cache_recompiles_with_one_warning(tmp_path):
    """The cache files of a package copy are truncated and overwritten with garbage: the next run
    works, warns once in one line, and repairs the cache (the run after it is silent)."""
    import fieldgen

    root = tmp_path / "tree"
    shutil.copytree(
        Path(fieldgen.__file__).parent,
        root / "fieldgen",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    shutil.copytree(
        regenerate.generated_dir(),
        root / "fieldgen" / "generated",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    site = [p for p in sys.path if p.endswith("site-packages")]
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    env["PYTHONPATH"] = os.pathsep.join([str(root), *site])
    code = (
        "import fieldgen; assert fieldgen.__file__.startswith(%r); "
        "print(fieldgen.kernel('linear', r=0.5, sigma_w2=1.0, depth=1, K0=1.0)[-1])" % str(root)
    )

    def run():
        return subprocess.run(
            [sys.executable, "-S", "-c", code],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )

    first = run()
    assert first.returncode == 0 and first.stdout.strip() == "1.25", first.stderr
    cache = root / "fieldgen" / "generated" / "__pycache__"
    indexes, data = (
        sorted(cache.glob("meanfield_linear*.nbi")),
        sorted(cache.glob("meanfield_linear*.nbc")),
    )
    assert indexes and data
    for path in indexes[::2]:
        path.write_bytes(path.read_bytes()[:20])
    for path in indexes[1::2]:
        path.write_bytes(b"")
    for path in data:
        path.write_bytes(b"garbage")
    damaged = run()
    assert damaged.returncode == 0 and damaged.stdout.strip() == "1.25", damaged.stderr
    lines = damaged.stderr.strip().splitlines()
    assert len(lines) == 1 and "damaged Numba cache" in lines[0], damaged.stderr
    repaired = run()
    assert repaired.returncode == 0 and repaired.stderr == "", repaired.stderr
