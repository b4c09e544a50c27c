"""Issue 17 (cold start): what a new process imports before and during its first call.

`import fieldgen` loads neither NumPy nor Numba (every public name is imported on first use);
a first call imports neither SymPy nor SciPy's linalg (Numba's import-time BLAS probe is
answered from the files by fieldgen.jit_cache, with the answer Numba's own probe gives); the
functions named like their modules (simulate, response, ntk) stay functions whatever imports
those modules; a first call compiles only the functions it uses (importing the quadrature module
compiles nothing, a one-input covariance neither the mean shift's functions nor the two-input
path) and compiles fieldgen's functions without Numba's C-callable wrapper; on the generic (table)
path, importing a generated module compiles none of its expectation helpers and a first call
only those it uses, and loads (or builds) only the tables those use, none at all when they come
from Numba's cache, and its fallbacks' trampoline passes their values and exceptions through;
after `fieldgen warm-cache`, a new process loads what its first call needs from the cache and
compiles nothing.
Each check runs in a new interpreter. No timing: bench_cold_start.py measures.
"""

import json
import os
import subprocess
import sys
import textwrap


def _run(code: str, env=None) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_import_fieldgen_loads_neither_numpy_nor_numba():
    out = _run("""
        import sys, fieldgen
        heavy = {"numpy", "numba", "sympy", "scipy", "matplotlib", "dask"} & set(sys.modules)
        assert not heavy, sorted(heavy)
        assert fieldgen.__version__ and "kernel" in dir(fieldgen)
        print("ok")
    """)
    assert out.strip() == "ok"


def test_first_call_imports_no_sympy_nor_scipy_linalg_and_numba_sees_the_same_blas():
    out = _run("""
        import sys, importlib, fieldgen
        K = fieldgen.kernel("linear", r=0.5, sigma_w2=1.0, depth=2, K0=1.0)
        assert [round(float(k), 12) for k in K] == [1.0, 1.25, 1.5625], K
        assert "sympy" not in sys.modules, "sympy imported"
        assert "scipy.linalg" not in sys.modules, "scipy.linalg imported"
        from numba.np import arraymath, linalg
        assert linalg.ensure_blas.__module__ == "numba.np.linalg"  # Numba's own, restored
        try:  # what Numba's own probe finds: the import it would have made
            importlib.import_module("scipy.linalg.cython_blas")
            real = True
        except ImportError:
            real = False
        assert arraymath._HAVE_BLAS is real, (arraymath._HAVE_BLAS, real)
        print("ok", real)
    """)
    assert out.startswith("ok")


def test_functions_named_like_their_modules_stay_functions():
    out = _run("""
        import fieldgen
        import fieldgen.simulate, fieldgen.response, fieldgen.ntk  # the modules, imported first
        from fieldgen.simulate import METHODS
        import fieldgen.report.cache  # imports fieldgen.simulate's source digest machinery
        for name in ("simulate", "response", "ntk"):
            f = getattr(fieldgen, name)
            assert callable(f) and f.__name__ == name and f.__module__ == "fieldgen." + name, f
        from fieldgen import simulate
        assert simulate is fieldgen.simulate and METHODS == fieldgen.METHODS
        print("ok")
    """)
    assert out.strip() == "ok"


def test_a_first_call_compiles_only_what_it_uses():
    out = _run("""
        import os, tempfile
        os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp()  # empty: every function compiles
        import fieldgen
        from fieldgen.generated import oneloop_erf as m, quadrature as q

        def compiled(*functions):
            return [f.__name__ for f in functions if f.signatures]

        # importing the quadrature module (the closed forms' path rule lives there) compiles
        # nothing: no eager signatures, no jitted function called at import
        assert not compiled(q.graded_rule, q._panel, q.cholesky_psd, q.table_rule), compiled(
            q.graded_rule, q._panel, q.cholesky_psd, q.table_rule
        )
        fieldgen.kernel_covariance("erf", r=0.3, sigma_w2=1.0, depth=3, K0=1.0)
        assert compiled(m._one_loop_single, m.four_point_single, m.sampling_noise_single) == [
            "_one_loop_single", "four_point_single", "sampling_noise_single"
        ]
        unused = (m.hessian_single, m.self_feedback_single, m._one_loop_pair, m.four_point_pair)
        assert not compiled(*unused), compiled(*unused)
        # compiled without Numba's C-callable wrapper (fieldgen.jit_cache), others keep theirs
        (cres,) = m._one_loop_single.overloads.values()
        assert cres.fndesc.llvm_cfunc_wrapper_name not in cres.library.get_llvm_str()
        import numba
        plain = numba.njit(lambda x: x + 1.0)
        plain(1.0)
        (cres,) = plain.overloads.values()
        assert cres.fndesc.llvm_cfunc_wrapper_name in cres.library.get_llvm_str()
        fieldgen.kernel_mean_shift("erf", r=0.3, sigma_w2=1.0, depth=3, K0=1.0)
        assert compiled(m.hessian_single, m.self_feedback_single) == [
            "hessian_single", "self_feedback_single"
        ]
        print("ok")
    """)
    assert out.strip() == "ok"


def test_generic_path_compiles_only_the_expectation_helpers_a_call_uses():
    out = _run("""
        import os, tempfile
        os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp()  # empty: every function compiles
        import fieldgen
        from fieldgen.generated import oneloop_tanh as m

        # the two-input expectations' nested-quadrature fallbacks: compiled with (as callees of)
        # the expectations that use them; table builders (run when a compilation first needs
        # their table) do not call them
        fallbacks = [getattr(m, n) for n in dir(m) if n.startswith("_exact2")]
        compiled = lambda: sorted(f.__name__ for f in fallbacks if f.signatures)
        # no eager signatures: importing compiles no expectation
        assert len(fallbacks) > 5 and not compiled(), compiled()
        fieldgen.kernel_covariance("tanh", r=0.3, sigma_w2=1.0, depth=3, K0=1.0)
        # inside the tables (the walk's diagonal Ke = Kl from the one-dimensional table of
        # <f g>): no fallback at all
        assert not compiled(), compiled()
        # below the two-point tables (K < exp(-10)) the one-input covariance falls back for a
        # few two-input expectations, not the Hessian's (kernel_mean_shift) nor the two-input
        # path's: the control that the check above sees compiled fallbacks
        fieldgen.kernel_covariance("tanh", r=0.3, sigma_w2=1.0, depth=3, K0=1e-6)
        used = compiled()
        assert used and len(used) < len(fallbacks) // 2, used
        assert not m.hessian_single.signatures and not m._one_loop_pair.signatures
        print("ok")
    """)
    assert out.strip() == "ok"


def test_generic_path_builds_only_the_tables_a_call_compiles_with(tmp_path):
    env = dict(
        os.environ,
        NUMBA_CACHE_DIR=str(tmp_path / "numba"),  # empty: every function compiles
        FIELDGEN_CACHE_DIR=str(tmp_path / "store"),  # empty table store: tables are built
    )
    code = """
        import json, sys
        import fieldgen
        from fieldgen.generated import meanfield_tanh as m, quadrature as q

        refs = lambda prefix: {getattr(m, n) for n in dir(m) if n.startswith(prefix)}
        one, two = refs("_TABLE1_"), refs("_HERMITE_")  # 1-D tables; Hermite tables (2-D)
        assert one and two and not one & two, (one, two)
        assert not q._TABLES  # importing loads and builds no table
        fieldgen.kernel("tanh", r=0.3, sigma_w2=1.0, depth=5, K0=1.0)
        single = set(q._TABLES)
        fieldgen.kernel("tanh", r=0.3, sigma_w2=1.0, depth=5, K0=[[1.0, 0.5], [0.5, 1.0]])
        print(json.dumps([sorted(one), sorted(two), sorted(single), sorted(q._TABLES)]))
    """
    one, two, single, both = map(set, json.loads(_run(code, env)))
    stored = {p.stem for p in (tmp_path / "store" / "tables").glob("*.npz")}
    # a one-input kernel needs the 1-D table of <phi^2> only: the 2-D tables are not built
    assert single and single <= one and not single & two, (single, one, two)
    # negative control: the two-input kernel needs a Hermite table, and it is built and stored
    assert both & two and both - single <= two, (both, single)
    assert stored == both, (stored, both)
    # a later process loading its function from Numba's cache loads no table at all (tables are
    # frozen into the cached machine code); the first process, which compiled it, loaded one
    again = _run(
        """
        import fieldgen
        from fieldgen.generated import quadrature as q
        fieldgen.kernel("tanh", r=0.3, sigma_w2=1.0, depth=5, K0=1.0)
        print(len(q._TABLES))
        """,
        env,
    )
    assert again.strip() == "0"


def test_generic_path_compiles_the_fallback_chain_only_for_arguments_outside_the_tables():
    out = _run("""
        import os, tempfile
        os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp()  # empty: every function compiles
        import math
        import fieldgen
        from fieldgen.generated import quadrature as q

        def chain():
            # the fallbacks behind the tables: the nested quadratures (_exact*), the chains a
            # pair table falls back to (_chain*: Mehler's series, then _exact2*)
            import sys
            modules = [m for n, m in sys.modules.items() if n.startswith("fieldgen.generated.")
                       and n.endswith("_tanh")]
            return sorted({n for m in modules for n in dir(m) if n.startswith(("_exact", "_expect", "_chain"))
                           and getattr(getattr(m, n), "signatures", None)})

        # inside the tables: the pair tables (sensitivity), the Chebyshev and Hermite tables
        # (two-input kernel): none of the chain compiles, nor Mehler's series behind a pair table
        fieldgen.sensitivity("tanh", r=[0.1, 0.3], sigma_w2=1.0, depth=30, c0=0.5)
        assert not chain() and not q.mehler_sum.signatures, (chain(), q.mehler_sum.signatures)
        fieldgen.kernel("tanh", r=0.3, sigma_w2=1.0, depth=30, K0=[[1.0, 0.5], [0.5, 1.0]])
        assert not chain(), chain()
        # negative control: K below the tables (TABLE_K_LO) compiles the nested quadratures
        assert 1e-7 < q.TABLE_K_LO
        k = fieldgen.kernel("tanh", r=0.3, sigma_w2=1.0, depth=4, K0=[[1e-7, 0.5e-7], [0.5e-7, 2e-7]])
        used = chain()
        assert any(n.startswith("_exact1") for n in used), used
        assert any(n.startswith("_exact2") for n in used), used
        # and gives the recursion with the nested quadrature called directly (from Python)
        from fieldgen.generated import meanfield_tanh as m
        exact1 = [getattr(m, n) for n in dir(m) if n.startswith("_exact1")]
        assert len(exact1) == 1
        K = 1e-7
        for l in range(1, 5):
            K = K + 0.09 * exact1[0](K)
            assert math.isclose(k[l, 0, 0], K, rel_tol=1e-14), (l, k[l, 0, 0], K)
        # the sensitivity below the tables: the pair tables' fallback compiles
        fieldgen.sensitivity("tanh", r=[0.1, 0.3], sigma_w2=1.0, depth=5, c0=0.5, K0=1e-7)
        assert any(n.startswith("_chain2") for n in chain()), chain()
        print("ok")
    """)
    assert out.strip() == "ok"


def test_warm_cache_leaves_nothing_to_compile_for_a_later_process(tmp_path):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    done = subprocess.run(
        [sys.executable, "-m", "fieldgen", "warm-cache", "linear"],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert done.returncode == 0 and done.stdout.startswith("linear: "), done.stderr
    out = _run(
        """
        import fieldgen
        from fieldgen.generated import meanfield_linear as mf, oneloop_linear as m
        fieldgen.kernel_covariance("linear", r=0.3, sigma_w2=1.0, depth=5, K0=[[1, 0.2], [0.2, 2]])
        fieldgen.kernel_mean_shift("linear", r=0.3, sigma_w2=1.0, depth=5, K0=1.0)
        used = (mf.kernel_pair_full, mf.kernel_single_full, m._one_loop_pair, m._one_loop_single)
        stats = [(f.__name__, dict(f.stats.cache_hits), dict(f.stats.cache_misses)) for f in used]
        assert all(hits and not misses for _, hits, misses in stats), stats
        print("ok")
        """,
        env=env,
    )
    assert out.strip() == "ok"


def test_fallback_trampoline_returns_the_fallback_and_propagates_its_exceptions():
    """late1 / late3 (generated/quadrature.py) call the registered fallback through the Python C
    API from compiled code: below the tables the value is the nested quadrature's, bit for bit,
    and an exception raised by the fallback reaches the caller (negative control: a fallback
    that raises)."""
    out = _run("""
        from fieldgen.generated import gauss_tanh as g, quadrature as q

        k = 0.5 * q.TABLE_K_LO  # below the tables: the fallback answers
        assert g.expect_single(k) == g._exact1_72e59afba973(k)
        (key,) = [key for key, f in q._LATE.items() if f is g._exact1_72e59afba973]
        pair = [key for key, f in q._LATE.items() if f is g._exact2_e698f675438c]
        assert g.expect_pair(k, k, 0.5 * k)[2] == g._exact2_e698f675438c(k, k, 0.5 * k), pair

        def fail(*args):
            raise ZeroDivisionError(f"fallback at {args}")

        saved, q._LATE[key] = q._LATE[key], fail
        try:
            g.expect_single(k)
        except ZeroDivisionError as exc:
            assert "fallback at" in str(exc)
        else:
            raise AssertionError("the fallback's exception was lost")
        q._LATE[key] = saved
        assert g.expect_single(k) == g._exact1_72e59afba973(k)
        print("ok")
    """)
    assert out.strip() == "ok"
