"""`fieldgen report`: figures, report.md, the simulation cache and the command line.

One quick report is written into a temporary folder (about 1.5 minutes) and then run again: the
second run must read every simulation from the cache. No assertion on time."""

import contextlib
import io
import re
import subprocess
import sys

import numpy as np
import pytest

from fieldgen.cli import main
from fieldgen.report import cache as report_cache
from fieldgen.report import run
from fieldgen.report.params import parameters

FIGURES = (
    "fig1_kernel",
    "fig2_fluctuations",
    "fig3_mean_shift",
    "fig4_sensitivity",
    "fig5_optimum",
)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory):
    """The command's output and folder of a quick report."""
    out = tmp_path_factory.mktemp("report")
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main(["report", "--quick", "--out", str(out), "--no-progress"])
    return code, stdout.getvalue(), out


def test_every_figure_is_a_valid_png_and_a_pdf(quick_report):
    from matplotlib.image import imread

    code, _, out = quick_report
    assert code == 0
    for name in FIGURES:
        png = out / f"{name}.png"
        assert png.read_bytes()[:8] == PNG_SIGNATURE, png
        image = imread(png)
        assert image.ndim == 3 and image.shape[0] > 300 and image.shape[1] > 600
        assert image.std() > 0.05  # not blank
        assert (out / f"{name}.pdf").read_bytes()[:5] == b"%PDF-"


def test_report_md_embeds_every_figure_and_states_every_parameter(quick_report):
    _, _, out = quick_report
    text = (out / "report.md").read_text()
    embedded = set(re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", text))
    assert embedded == {f"{name}.png" for name in FIGURES}
    assert {p.name for p in out.glob("*.png")} == embedded
    for name in FIGURES:
        assert f"]({name}.pdf)" in text
    # Every parameter of every figure appears in its table, with its value.
    for figure, params in parameters(quick=True).items():
        for key in params:
            assert f"| `{key}` |" in text, (figure, key)
    assert "| `samples` | 40,000 |" in text  # the quick mean-shift setting, as used
    assert "(quick settings)" in text


def test_second_run_reads_every_simulation_from_the_cache(quick_report):
    _, output, out = quick_report
    computed = int(re.search(r"simulations: (\d+) computed, 0 from the cache", output).group(1))
    assert computed > 0
    again = run(out, quick=True, progress=False, log=lambda *a: None)
    assert again.misses == 0 and again.hits == computed
    assert "Simulations: 0 computed" in again.markdown.read_text()


def test_cache_key_follows_every_argument_and_the_version(tmp_path, monkeypatch):
    base = dict(activation="erf", r=0.3, K0=np.eye(2), seed=1)
    k = report_cache.key("simulate", base)
    assert report_cache.key("simulate", dict(base)) == k
    assert report_cache.key("simulate", {**base, "seed": 2}) != k
    assert report_cache.key("simulate", {**base, "r": 0.30000001}) != k
    assert report_cache.key("simulate", {**base, "K0": 2 * np.eye(2)}) != k
    assert report_cache.key("other", base) != k
    monkeypatch.setattr(report_cache, "__version__", "0.0.0")
    assert report_cache.key("simulate", base) != k
    assert report_cache.key("simulate", base, code="other code") != report_cache.key(
        "simulate", base
    )


def test_code_digest_follows_the_simulator_and_the_generated_modules(tmp_path, monkeypatch):
    """Issue 14.4: a change to the simulator's code (or a generated module) changes the key, so a
    cached result of the old code is recomputed, not served."""
    pkg = tmp_path / "fakepkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "sim.py").write_text("def simulate(x, progress=None):\n    return [x]\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    modules = ("fakepkg.sim", "fakepkg")
    before = report_cache.code_digest(modules)
    assert report_cache.code_digest(modules) == before
    (pkg / "sim.py").write_text("def simulate(x, progress=None):\n    return [2 * x]\n")
    after = report_cache.code_digest(modules)
    assert after != before
    (pkg / "other.py").write_text("# a new module of the package\n")
    assert report_cache.code_digest(modules) != after
    # The real digest covers simulate.py and every generated module.
    names = {
        p.name for name in report_cache.SIMULATOR_CODE for p in report_cache._source_files(name)
    }
    assert {"simulate.py", "__init__.py", "meanfield_erf.py"} <= names
    # Same folder, same arguments, new code: the entry is recomputed, not read.
    calls = []

    def fn(x, progress=None):
        calls.append(x)
        return np.array([x])

    old = report_cache.SimulationCache(tmp_path / "c", code=before)
    old.call("simulate", fn, x=1)
    new = report_cache.SimulationCache(tmp_path / "c", code=after)
    new.call("simulate", fn, x=1)
    assert calls == [1, 1] and (new.hits, new.misses) == (0, 1)
    assert report_cache.SimulationCache(tmp_path / "c", code=after).call("simulate", fn, x=1) == [1]
    assert calls == [1, 1]


@pytest.mark.parametrize(
    "damage", ["empty", "truncated", "garbage", "no meta", "pickled", "swapped", "other code"]
)
def test_damaged_or_mismatched_cache_entries_are_recomputed_with_one_warning(tmp_path, damage):
    """Issue 13.2: a damaged entry never breaks the run and an entry that belongs to other
    parameters (or other code) is never served: each is recomputed with one line of warning."""
    warnings = []
    store = report_cache.SimulationCache(tmp_path, code="c1", warn=warnings.append)

    def fn(x, progress=None):
        return np.arange(4.0) * x

    store.call("simulate", fn, x=1)
    good = store.path("simulate", {"x": 1})
    other = store.path("simulate", {"x": 7})
    store.call("simulate", fn, x=7)
    data = good.read_bytes()
    if damage == "empty":
        good.write_bytes(b"")
    elif damage == "truncated":
        good.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        good.write_bytes(b"PK\x03\x04" + bytes(range(256)) * 4)
    elif damage == "no meta":
        with open(good, "wb") as f:
            np.savez(f, value=np.arange(4.0))
    elif damage == "pickled":
        with open(good, "wb") as f:
            np.savez(f, value=np.array([object()], dtype=object), meta=np.array("{}"))
    elif damage == "swapped":
        good.write_bytes(other.read_bytes())  # a valid entry of x = 7 under the key of x = 1
    elif damage == "other code":
        with open(good, "wb") as f:
            np.savez(
                f,
                value=np.arange(4.0) * 99,
                meta=np.array(
                    report_cache._text(report_cache.describe("simulate", {"x": 1}, "c0"))
                ),
            )
    fresh = report_cache.SimulationCache(tmp_path, code="c1", warn=warnings.append)
    value = fresh.call("simulate", fn, x=1)
    assert np.array_equal(value, np.arange(4.0))
    assert (fresh.hits, fresh.misses, fresh.rejected) == (0, 1, 1)
    assert len(warnings) == 1 and "\n" not in warnings[0] and str(good) in warnings[0]
    # The recomputed entry replaced the bad one: the next run reads it without a warning.
    again = report_cache.SimulationCache(tmp_path, code="c1", warn=warnings.append)
    assert np.array_equal(again.call("simulate", fn, x=1), value) and again.hits == 1
    assert len(warnings) == 1


def test_cache_stores_atomically_and_recomputes_unreadable_entries(tmp_path):
    store = report_cache.SimulationCache(tmp_path)
    calls = []

    def fn(x, progress=None):
        calls.append(x)
        return np.arange(3) * x

    first = store.call("f", fn, untracked={"progress": True}, x=2)
    second = store.call("f", fn, untracked={"progress": False}, x=2)  # progress is not in the key
    assert calls == [2] and np.array_equal(first, second) and (store.hits, store.misses) == (1, 1)
    assert [p.name for p in tmp_path.iterdir()] == [store.path("f", {"x": 2}).name]  # no temp files
    store.path("f", {"x": 2}).write_bytes(b"truncated")
    assert np.array_equal(store.call("f", fn, x=2), first) and calls == [2, 2]


def test_report_file_system_errors_are_one_line_with_exit_code_1(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["report", "--quick", "--no-regenerate", "--out", str(blocker / "out")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("fieldgen report: error: cannot write") and err.count("\n") == 1


def test_help_and_light_import():
    out = subprocess.run(
        [sys.executable, "-m", "fieldgen", "report", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0 and "--quick" in out.stdout and "--out DIR" in out.stdout
    code = (
        "import sys, fieldgen, fieldgen.report; "
        "assert 'matplotlib' not in sys.modules, 'matplotlib was imported'"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
