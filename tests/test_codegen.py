"""The generator: deterministic, atomic, minimal rewrites, stale-file detection with a diff."""

import io
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fieldgen.codegen import regenerate, writer

BIN = Path(sys.executable).parent


@pytest.fixture
def tree(tmp_path, built):
    folder = tmp_path / "generated"
    shutil.copytree(
        regenerate.generated_dir(), folder, ignore=shutil.ignore_patterns("__pycache__")
    )
    return folder


def test_checked_in_tree_is_current_and_generation_is_deterministic(built):
    """A full rebuild (another process, another hash seed) equals the checked-in files byte for
    byte, so the fast banner check of `fieldgen regenerate --check` can trust the banners."""
    folder = regenerate.generated_dir()
    assert set(built) == {p.name for p in folder.glob("*.py")}
    for name, text in built.items():
        assert (folder / name).read_text() == text, f"generated/{name} differs from a rebuild"
    out = subprocess.run(
        [str(BIN / "regenerate-formulas"), "--check"], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0 and "up to date" in out.stdout, out.stdout + out.stderr


def test_banner_check_detects_edits_and_source_changes(tree, monkeypatch):
    assert regenerate.banners_current(tree)
    target = tree / "gauss_relu.py"
    target.write_text(target.read_text() + "# edited\n")
    assert not regenerate.banners_current(tree)
    target.write_text(target.read_text()[: -len("# edited\n")])
    assert regenerate.banners_current(tree)
    monkeypatch.setattr(writer, "sources_digest", lambda roots: "0" * 64)
    assert not regenerate.banners_current(tree)


def test_every_generated_file_has_banner_and_intact_content_hash(built):
    for name, text in built.items():
        assert text.startswith(writer.BANNER_FIRST_LINE), name
        assert "fieldgen regenerate" in text.splitlines()[1]
        assert writer.content_intact(text), name
    assert set(built) == {p.name for p in regenerate.generated_dir().glob("*.py")}


def test_one_changed_byte_is_reported_with_a_diff_and_repaired(tree, built):
    target = tree / "meanfield_erf.py"
    text = target.read_text()
    target.write_text(text.replace("next_K11 =", "next_K11  =", 1))
    assert not writer.content_intact(target.read_text())
    report = io.StringIO()
    assert regenerate.regenerate(check=True, stream=report, files=built, folder=tree) == 1
    assert "meanfield_erf.py" in report.getvalue() and "next_K11  =" in report.getvalue()

    untouched = tree / "gauss_relu.py"
    stamp = untouched.stat().st_mtime_ns
    log = io.StringIO()
    assert regenerate.regenerate(files=built, folder=tree, stream=log) == 0
    assert "wrote generated/meanfield_erf.py" in log.getvalue()
    assert "1 of" in log.getvalue()
    assert untouched.stat().st_mtime_ns == stamp
    assert target.read_text() == built["meanfield_erf.py"]
    assert regenerate.regenerate(check=True, stream=io.StringIO(), files=built, folder=tree) == 0


def test_missing_and_leftover_generated_files(tree, built):
    (tree / "gauss_tanh.py").unlink()
    (tree / "meanfield_gelu.py").write_text(writer.with_banner("x = 1\n", "0" * 64))
    (tree / "notes.py").write_text("# a user's file without the banner\n")
    report = io.StringIO()
    assert regenerate.regenerate(check=True, stream=report, files=built, folder=tree) == 1
    assert "gauss_tanh.py" in report.getvalue() and "meanfield_gelu.py" in report.getvalue()
    assert regenerate.regenerate(files=built, folder=tree, stream=io.StringIO()) == 0
    assert (tree / "gauss_tanh.py").exists() and not (tree / "meanfield_gelu.py").exists()
    assert (tree / "notes.py").exists()


def test_atomic_write_leaves_no_temporary_files(tmp_path):
    path = tmp_path / "a.py"
    assert writer.write_if_changed(path, "one\n")
    assert not writer.write_if_changed(path, "one\n")
    assert writer.write_if_changed(path, "two\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.py"]


def test_sources_hash_follows_the_sources(tmp_path):
    (tmp_path / "a.py").write_text("x = 1\n")
    before = writer.sources_digest({"derivations": tmp_path})
    (tmp_path / "a.py").write_text("x = 2\n")
    assert writer.sources_digest({"derivations": tmp_path}) != before


def test_evaluators_import_without_sympy():
    code = (
        "import sys, fieldgen; fieldgen.kernel('tanh', r=0.3, sigma_w2=1.0, depth=3, K0=1.0); "
        "fieldgen.simulate('relu', r=0.3, sigma_w2=1.0, depth=2, K0=1.0, width=4, samples=2); "
        "assert 'sympy' not in sys.modules, 'sympy was imported'"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
