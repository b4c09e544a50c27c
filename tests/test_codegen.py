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


def _fused_moments_module(tmp_path):
    """A module printed by the generator with three 3-D moments of one covariance (one grid)."""
    import importlib.util

    import sympy as sp

    from fieldgen.codegen.builders import packed_function
    from fieldgen.codegen.module import ModuleSpec, render
    from fieldgen.derivations.expectation import GaussianExpectation, variables

    x1, x2, x3 = variables(3)
    k = sp.symbols("k11 k22 k33 k12 k13 k23", real=True)
    bodies = (x1**2 * x2 * x3, x1 * x2 * x3**2, x1**2 * x2**2 * x3**2)
    entries = {
        (i,): GaussianExpectation(sp.Lambda((x1, x2, x3), b), *k) for i, b in enumerate(bodies)
    }
    spec = ModuleSpec("fused_test", "test module", integrity_check=False)
    spec.functions.append(
        packed_function(
            "moments", inputs=[("k", k)], entries=entries, shape=(3,), doc="", library=spec.library
        )
    )
    text = render(spec).replace("from .", "from fieldgen.generated.")
    # one grid for all (the trapezoidal rule prints a driver and its one-lattice sum)
    drivers = [line for line in text.splitlines() if line.startswith("def _moments3_")]
    assert len([d for d in drivers if "_lattice(" not in d]) == 1 and "_expect3_" not in text
    path = tmp_path / "fused_test.py"
    path.write_text(text)
    loader = importlib.util.spec_from_file_location("fused_test", path)
    mod = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(mod)
    return mod


def _isserlis(K):
    """<x1^2 x2 x3>, <x1 x2 x3^2>, <x1^2 x2^2 x3^2> for x ~ N(0, K) (Wick's theorem)."""
    (a, d, e), (_, b, f), (_, _, c) = K
    return [
        a * f + 2 * d * e,
        d * c + 2 * e * f,
        a * b * c + 2 * a * f**2 + 2 * b * e**2 + 2 * c * d**2 + 8 * d * e * f,
    ]


def test_moments_sharing_a_covariance_are_summed_on_one_grid_exactly(tmp_path):
    """The fused helper (codegen/hermite.py; polynomials take the trapezoidal rule, whose
    Gaussian step makes the aliasing error of degree 6 ~1e-16) against Wick's theorem: each
    output must be its own moment to round-off. Negative control: the moments of the covariance with x1 and x3 exchanged."""
    import numpy as np

    mod = _fused_moments_module(tmp_path)
    K = np.array([[1.3, 0.4, -0.5], [0.4, 0.9, 0.2], [-0.5, 0.2, 2.1]])
    packed = np.array([K[0, 0], K[1, 1], K[2, 2], K[0, 1], K[0, 2], K[1, 2]])
    out = np.empty(3)
    mod.moments(packed, out)
    np.testing.assert_allclose(out, _isserlis(K), rtol=1e-12)
    swapped = K[::-1, ::-1]
    with pytest.raises(AssertionError):
        np.testing.assert_allclose(out, _isserlis(swapped), rtol=1e-3)


def test_one_loop_modules_keep_the_constants_they_import():
    """oneloop_<activation> adds the shared one-loop code's constants to its globals (specialise):
    none may rebind a name the module imported (the quadrature module's MAX_NODES, the size of
    the buffers of table builders compiled after the import, was once rebound to the grids'
    128: a heap overflow). Negative control: a module holding a constant of the shared code under
    the same name is refused."""
    import types

    from fieldgen.generated import module, oneloop_shared, quadrature

    for name in ("tanh", "erf"):
        mod = module("oneloop", name)
        shared = {k for k in vars(quadrature) if k.isupper()} & set(vars(mod))
        assert "MAX_NODES" in shared or name != "tanh", shared
        for k in shared:
            assert getattr(mod, k) is getattr(quadrature, k), (name, k)
    fake = types.ModuleType("fieldgen_test_clash")
    fake.GRID_MAX_NODES = 2048
    sys.modules[fake.__name__] = fake
    try:
        with pytest.raises(RuntimeError, match="GRID_MAX_NODES"):
            oneloop_shared.specialise(fake.__name__, oneloop_shared.__file__, {}, False)
        del fake.GRID_MAX_NODES
        assert "one_loop" in oneloop_shared.specialise(
            fake.__name__, oneloop_shared.__file__, {}, False
        )
    finally:
        del sys.modules[fake.__name__]
