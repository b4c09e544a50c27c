"""Activations defined at run time: parsing and checks, the per-user cache, other processes, and a
non-editable install in a read-only site-packages.

The numbers are checked against independent references: the closed form of a built-in that the
user's expression equals (swish2(x) = silu(2x)/2 has no closed form, but erf(x) written by hand
must reproduce the package's erf exactly), and adaptive quadrature.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import fieldgen

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    """An empty cache folder for this test (and for the processes it starts)."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("FIELDGEN_CACHE_DIR", str(folder))
    from fieldgen import usercache

    usercache.cache_root.cache_clear()
    yield folder
    usercache.cache_root.cache_clear()


BAD = [
    ("x**", "not a valid expression"),
    ("foo(x)", "unknown function 'foo'"),
    ("x*y", "unknown name 'y'"),
    ("__import__('os').system('touch PWNED')", "unknown"),
    ("exp(x**2)", "diverge"),
    ("log(x)", "real and finite"),
    ("1/x", "real and finite"),
    ("Max(0, x - 1)", "x = 0 only"),
    ("x.real", "Attribute"),
    ("[x]", "List"),
    ("lambda: 1", "Lambda"),
    ("3", "must depend on x"),
]


@pytest.mark.parametrize("text, message", BAD)
def test_bad_definitions_raise_and_write_nothing(cache, tmp_path, monkeypatch, text, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="expr") as info:
        fieldgen.activation("bad", text)
    assert message.lower() in str(info.value).lower()
    assert not (tmp_path / "PWNED").exists()
    assert not cache.exists() or not any(cache.rglob("*.py"))


@pytest.mark.parametrize("name", ["relu", "gelu", "tanh"])
def test_builtin_names_cannot_be_redefined(cache, name):
    with pytest.raises(ValueError, match="built-in"):
        fieldgen.activation(name, "x")


def test_bad_names():
    for name in ["", "1a", "a-b", "a b", 3]:
        with pytest.raises(ValueError, match="name"):
            fieldgen.activation(name, "x")


def test_same_name_other_expression_in_one_process(cache):
    fieldgen.activation("twice_a", "2*x")
    assert fieldgen.activation("twice_a", "2*x") == fieldgen.activation("twice_a", "x*2")
    with pytest.raises(ValueError, match="already defined"):
        fieldgen.activation("twice_a", "3*x")


def test_decimals_are_exact_and_sympy_input_is_accepted():
    import sympy as sp

    leaky = fieldgen.activation("leaky_tenth", "max(x, 0.1*x)")
    assert leaky.expression == "Max(x/10, x)"
    assert leaky.closed_form
    x = sp.Symbol("x")
    a = fieldgen.activation("cubic_sym", x**3 / 3)
    assert a.expression == "x**3/3" and a.closed_form


def test_unknown_activation_is_a_value_error():
    with pytest.raises(ValueError, match="activation must be one of"):
        fieldgen.kernel("nope", r=0.1, sigma_w2=1.0, depth=3, K0=1.0)


def test_erf_by_hand_reproduces_the_package(cache):
    """A user expression equal to a built-in derives the same closed form: same numbers."""
    mine = fieldgen.activation("my_erf", "erf(x)")
    K0 = [[1.0, 0.3], [0.3, 2.0]]
    kw = dict(r=np.array([0.2, 0.7]), sigma_w2=1.5, sigma_b2=0.1, depth=20, K0=K0)
    np.testing.assert_allclose(
        fieldgen.kernel(mine, **kw), fieldgen.kernel("erf", **kw), rtol=1e-13, atol=0
    )
    S = dict(r=np.array([0.2, 0.7]), sigma_w2=1.5, depth=20, c0=0.4)
    np.testing.assert_allclose(
        fieldgen.sensitivity(mine, **S), fieldgen.sensitivity("erf", **S), rtol=1e-12
    )
    # only the kinds these calls needed were generated
    (folder,) = (cache / "activations").iterdir()
    assert sorted(p.stem for p in folder.glob("*.py")) == ["meanfield_full", "response_full"]
    assert json.loads((folder / "activation.json").read_text())["closed_form"] is True


def test_generated_phi_is_finite_for_large_arguments(cache):
    """Stable forms: x/(1 + exp(-2x)) and ELU evaluate without overflow at |x| = 1000."""
    swish = fieldgen.activation("swish2", "x/(1 + exp(-2*x))")
    phi = fieldgen.generated.module("gauss", swish).phi
    x = np.array([-1000.0, -30.0, -1.0, 0.0, 1.0, 30.0, 1000.0])
    with np.errstate(over="ignore"):
        expected = x / (1 + np.exp(-2 * x))
    # The tanh form rounds the far negative tail (|phi| < 1e-16 of the scale) to 0: an absolute
    # error, harmless in Gaussian expectations; what must not happen is inf or NaN.
    np.testing.assert_allclose(phi(x), expected, rtol=1e-15, atol=1e-15)
    elu = fieldgen.generated.module(
        "gauss", "elu" if "elu" in fieldgen.ACTIVATIONS else fieldgen.activation("elu")
    ).phi
    np.testing.assert_allclose(elu(x), np.where(x > 0, x, np.expm1(np.minimum(x, 0))), rtol=1e-15)


def _run(code: str, env: dict, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=900,
    )


SWISH2 = """
    import time, json, warnings
    t0 = time.perf_counter()
    import fieldgen
    a = fieldgen.activation("swish2", "x/(1 + exp(-2*x))")
    K = fieldgen.kernel(a, r=0.3, sigma_w2=1.0, depth=20, K0=[[1.0, 0.5], [0.5, 2.0]])
    t1 = time.perf_counter()
    print(json.dumps({"K": K[-1].tolist(), "seconds": t1 - t0, "file": fieldgen.__file__}))
"""


def test_second_process_reuses_the_cache(cache, record_property):
    env = dict(os.environ)
    first = _run(SWISH2, env)
    assert first.returncode == 0, first.stderr
    (module,) = cache.glob("activations/swish2-*/meanfield_full.py")
    stamp = module.stat().st_mtime_ns
    second = _run(SWISH2, env)
    assert second.returncode == 0, second.stderr
    a, b = json.loads(first.stdout), json.loads(second.stdout)
    assert a["K"] == b["K"]
    assert module.stat().st_mtime_ns == stamp  # not derived or written again
    record_property("first_call_seconds", a["seconds"])
    record_property("cached_call_seconds", b["seconds"])
    print(f"swish2 kernel: first process {a['seconds']:.1f} s, second {b['seconds']:.1f} s")


def test_damaged_cache_entry_is_derived_again(cache):
    a = fieldgen.activation("cube_half", "x**3/2")
    K = fieldgen.kernel(a, r=0.2, sigma_w2=1.0, depth=5, K0=0.5)
    (module,) = cache.glob("activations/cube_half-*/meanfield_full.py")
    module.write_text(module.read_text().replace("def ", "def broken_", 1))
    env = dict(os.environ)
    out = _run(
        """
        import fieldgen, json
        a = fieldgen.activation("cube_half", "x**3/2")
        print(json.dumps(fieldgen.kernel(a, r=0.2, sigma_w2=1.0, depth=5, K0=0.5).tolist()))
    """,
        env,
    )
    assert out.returncode == 0, out.stderr
    assert "damaged" in out.stderr
    np.testing.assert_array_equal(json.loads(out.stdout), K)


def test_concurrent_first_use(cache):
    """Two processes derive the same new activation at once: both succeed, one file."""
    env = dict(os.environ)
    code = textwrap.dedent(SWISH2)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=900) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outs]
    results = [json.loads(o[0])["K"] for o in outs]
    assert results[0] == results[1]
    assert len(list(cache.glob("activations/swish2-*/meanfield_full.py"))) == 1
    assert not list(cache.glob("activations/swish2-*/.*.tmp"))


def test_cli_defines_and_lists_activations(cache):
    env = dict(os.environ)
    cli = [sys.executable, "-m", "fieldgen"]
    out = subprocess.run(
        cli
        + [
            "summary",
            "--activation",
            "lin2=2*x",
            "--activations",
            "lin2",
            "--r",
            "0.5",
            "--depth",
            "3",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert out.returncode == 0, out.stderr
    # phi = 2x: K^l = K^{l-1} (1 + r^2 sigma_w^2 4) exactly
    ratio = float(out.stdout.split("\n")[-2].split()[2])
    assert ratio == pytest.approx((1 + 0.25 * 4) ** 3, rel=1e-12)
    listing = subprocess.run(
        cli + ["activations"], env=env, capture_output=True, text=True, timeout=300
    )
    assert listing.returncode == 0, listing.stderr
    assert "lin2" in listing.stdout and "gelu" in listing.stdout and "2*x" in listing.stdout
    bad = subprocess.run(
        cli + ["summary", "--activation", "b=x**"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "expr" in bad.stderr


@pytest.fixture(scope="module")
def wheel_site(tmp_path_factory):
    """fieldgen built as a wheel and installed (not editable) into a read-only folder."""
    root = tmp_path_factory.mktemp("wheel")
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(root / "dist"),
            str(REPO),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = (root / "dist").glob("fieldgen-*.whl")
    site = root / "site"
    install = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(site),
            str(wheel),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, install.stderr
    for path in site.rglob("*"):
        path.chmod(path.stat().st_mode & ~0o222)
    site.chmod(0o555)
    yield site
    for path in [site, *site.rglob("*")]:
        if path.is_dir():
            path.chmod(0o755)


def test_wheel_install_in_read_only_site_packages(wheel_site, tmp_path):
    env = dict(
        os.environ,
        PYTHONPATH=str(wheel_site),
        HOME=str(tmp_path / "home"),
        FIELDGEN_CACHE_DIR=str(tmp_path / "cache"),
    )
    (tmp_path / "home").mkdir()
    code = """
        import json, time
        import numpy as np
        import fieldgen
        t0 = time.perf_counter()
        a = fieldgen.activation("swish2", "x/(1 + exp(-2*x))")
        K = fieldgen.kernel(a, r=0.3, sigma_w2=1.0, depth=10, K0=1.0)
        t1 = time.perf_counter()
        S = fieldgen.sensitivity(a, r=0.3, sigma_w2=1.0, depth=10, c0=0.5)
        C = fieldgen.kernel_covariance(a, r=0.3, sigma_w2=1.0, depth=4, K0=1.0)
        print(json.dumps({"file": fieldgen.__file__, "K": float(K[-1]), "S": float(S),
                          "C": float(C[-1, -1]), "first_kernel": t1 - t0}))
    """
    out = _run(code, env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["file"].startswith(str(wheel_site))
    assert np.isfinite([result["K"], result["S"], result["C"]]).all()
    assert result["C"] > 0
    assert not any(wheel_site.rglob("*/activations/*"))
    print(f"wheel install: first kernel of a new activation {result['first_kernel']:.1f} s")
