"""The trapezoidal rule for 3-D and 4-D Gaussian moments (codegen/hermite.py,
tensor_trapezoid_helper), the generic path's two-input one-loop moments, to 1e-9.

Independent references:
- erf: its walk moments from the closed forms and path integrals of module("oneloop", "erf")
  (tests/test_one_loop_exact.py holds those to 1e-9), through the same rule printed for erf
  integrands (the derivation closes erf, so a test module prints them unclosed);
- tanh at c0 = 0: the moments of independent inputs factorise into two-dimensional moments of
  one input, which the tables of gauss_tanh give to 1e-9;
- tanh at c0 = 0.9: a brute-force four-dimensional trapezoidal sum (no tables, no
  interpolation, a cube of nodes, a finer step).
"""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest

from fieldgen.generated import module

numba = pytest.importorskip("numba")


def _walk(K, ratio, c, frac, late_c=None):
    """Early and late 2x2 kernels: Kl = K [[1, c sqrt(ratio)], [., ratio]] (late correlation
    late_c, default c), Ke = frac Kl (frac near 1: the late layer a small step away)."""
    lc = c if late_c is None else late_c
    Kl = K * np.array([[1.0, lc * math.sqrt(ratio)], [lc * math.sqrt(ratio), ratio]])
    Ke = frac * K * np.array([[1.0, c * math.sqrt(ratio)], [c * math.sqrt(ratio), ratio]])
    assert np.all(np.linalg.eigvalsh(Kl - Ke) >= -1e-12)
    return Ke, Kl


def _packed(Ke, Kl):
    return np.array([Ke[0, 0], Ke[1, 1], Ke[0, 1]]), np.array([Kl[0, 0], Kl[1, 1], Kl[0, 1]])


def _imported(path, text):
    """The module of source `text`, written to `path` and imported."""
    path.write_text(text)
    loader = importlib.util.spec_from_file_location(path.stem, path)
    mod = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def erf_moments(tmp_path_factory):
    """A module printed by the generator: erf walk moments as unclosed 3-D / 4-D expectations
    (x1, x2 early, x3, x4 late), lowered to the trapezoidal rule."""
    import sympy as sp

    from fieldgen.codegen.builders import packed_function
    from fieldgen.codegen.module import ModuleSpec, render
    from fieldgen.derivations.expectation import GaussianExpectation, variables

    x1, x2, x3, x4 = variables(4)
    e = sp.erf
    d2 = sp.diff(e(x3), x3, 2)
    k4 = sp.symbols("c00 c11 c22 c33 c01 c02 c03 c12 c13 c23", real=True)
    c00, c11, c22, c33, c01, c02, c03, c12, c13, c23 = k4
    four = (x1, x2, x3, x4)
    bodies4 = (e(x1) * e(x2) * e(x3) * e(x4), d2 / 2 * e(x4) * e(x1) * e(x2))
    # 3-D: (x1, x3, x4) = (early 1, late 1, late 2), entries of that sub-covariance
    k3 = (c00, c22, c33, c02, c03, c23)
    three = (x1, x2, x3)
    body3 = e(x1) ** 2 * e(x2) * e(x3)
    entries = {(i,): GaussianExpectation(sp.Lambda(four, b), *k4) for i, b in enumerate(bodies4)}
    entries[(2,)] = GaussianExpectation(sp.Lambda(three, body3), *k3)
    spec = ModuleSpec("trap_erf_test", "test module", integrity_check=False)
    spec.functions.append(
        packed_function(
            "moments", inputs=[("k", k4)], entries=entries, shape=(3,), doc="", library=spec.library
        )
    )
    text = render(spec).replace("from .", "from fieldgen.generated.")
    assert "trap_steps" in text and "GH4_NODES" not in text  # the trapezoidal rule
    return _imported(tmp_path_factory.mktemp("trap") / "trap_erf_test.py", text)


def _erf_pair(K11, K22, K12):
    """E[erf(x1) erf(x2)] (closed form, independent of the generator)."""
    return 2.0 / math.pi * math.asin(2.0 * K12 / math.sqrt((1.0 + 2.0 * K11) * (1.0 + 2.0 * K22)))


def _erf_reference(Ke, Kl):
    """The three moments of erf_moments from module("oneloop", "erf") entries."""
    gen = module("oneloop", "erf")
    ke, kl = _packed(Ke, Kl)
    A = np.empty((3, 3))
    gen.four_point_pair(ke, kl, A)
    F = np.empty((3, 3, 3))
    gen.self_feedback_pair(ke, kl, F)
    J = np.empty((3, 3))
    module("gauss", "erf").jacobian_pair(kl[0], kl[1], kl[2], J)
    p_e12 = _erf_pair(Ke[0, 0], Ke[1, 1], Ke[0, 1])
    p_l12 = _erf_pair(Kl[0, 0], Kl[1, 1], Kl[0, 1])
    p_e11 = _erf_pair(Ke[0, 0], Ke[0, 0], Ke[0, 0])
    return np.array(
        [A[2, 2] + p_e12 * p_l12, F[0, 2, 2] + J[2, 0] * p_e12, A[0, 2] + p_e11 * p_l12]
    )


def _erf_trapezoid(mod, Ke, Kl, bump=0.0):
    c = np.array(
        [
            Ke[0, 0], Ke[1, 1], Kl[0, 0], Kl[1, 1] * (1.0 + bump),
            Ke[0, 1], Ke[0, 0], Ke[0, 1], Ke[0, 1], Ke[1, 1], Kl[0, 1],
        ]
    )  # fmt: skip
    out = np.empty(3)
    mod.moments(c, out)
    return out


ERF_CASES = [  # (K, ratio, c, frac, late c)
    (1.0, 2.0, 0.5, 0.5, None),
    (1.0, 2.0, -0.9, 0.8, -0.85),
    (1.0, 2.0, 0.0, 0.6, 0.1),
    (1.0, 2.0, 0.99, 0.999, None),
    (5.0, 1.5, 0.9, 0.99, None),
    (0.01, 2.0, 0.5, 0.3, 0.45),
]


@pytest.mark.parametrize("case", ERF_CASES)
def test_erf_walk_moments_on_the_trapezoidal_rule_match_the_closed_forms(erf_moments, case):
    """Four-point, self-feedback (erf'' factor) and a 3-D moment, early and late kernels at
    c0 in {-0.9, 0, 0.5, 0.99}, unequal norms, near and far from the diagonal: 1e-9 relative
    to the largest. Negative control: the late K22 off by 1e-7 relative is rejected."""
    Ke, Kl = _walk(*case)
    want = _erf_reference(Ke, Kl)
    got = _erf_trapezoid(erf_moments, Ke, Kl)
    scale = np.abs(want).max()
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9 * scale)
    off = _erf_trapezoid(erf_moments, Ke, Kl, bump=1e-7)
    assert np.abs(off - want).max() > 1e-9 * scale


def _tanh_pair(K11, K22, K12):
    """E[tanh(x1) tanh(x2)] (gauss_tanh's tables)."""
    return module("gauss", "tanh").expect_pair(K11, K22, K12)[2]


@pytest.mark.parametrize("K,frac", [(1.5, 0.99), (5.0, 0.5), (0.3, 0.999)])
def test_tanh_moments_of_independent_inputs_factorise_into_one_input_tables(K, frac):
    """c0 = 0: E[t(x1) t(x2) t(y1) t(y2)] = E[t(x1) t(y1)] E[t(x2) t(y2)], each a
    two-dimensional walk moment of one input (gauss_tanh's tables, 1e-9), and the early pair
    expectation vanishes, so the (12, 12) four-point entry is that product."""
    Ke, Kl = _walk(K, 1.3, 0.0, frac)
    ke, kl = _packed(Ke, Kl)
    A = np.empty((3, 3))
    module("oneloop", "tanh").four_point_pair(ke, kl, A)
    want = _tanh_pair(ke[0], kl[0], ke[0]) * _tanh_pair(ke[1], kl[1], ke[1])
    assert A[2, 2] == pytest.approx(want, rel=1e-9, abs=1e-12)


@numba.njit(cache=False)
def _cube_axis(h, half):
    """Nodes and standard-normal trapezoidal weights of one axis of the cube [-half, half]."""
    n = int(math.ceil(half / h))
    z = np.empty(2 * n + 1)
    w = np.empty(2 * n + 1)
    for i in range(2 * n + 1):
        z[i] = (i - n) * h
        w[i] = math.exp(-0.5 * z[i] * z[i]) * h / math.sqrt(2.0 * math.pi)
    return z, w


@numba.njit(parallel=True, cache=False)
def _brute_tanh4(C, h, half):
    """E[t(x1) t(x2) t(x3) t(x4)], x = C z: the plain trapezoidal sum on the cube
    [-half, half]^4 with step h (no ball, no tables, no interpolation)."""
    z, w = _cube_axis(h, half)
    m = z.shape[0]
    parts = np.zeros(m)
    for i in numba.prange(m):
        s = 0.0
        a = math.tanh(C[0, 0] * z[i])
        for j in range(m):
            b = math.tanh(C[1, 0] * z[i] + C[1, 1] * z[j])
            for k in range(m):
                y1 = C[2, 0] * z[i] + C[2, 1] * z[j] + C[2, 2] * z[k]
                c = math.tanh(y1)
                base = C[3, 0] * z[i] + C[3, 1] * z[j] + C[3, 2] * z[k]
                inner = 0.0
                for q in range(m):
                    inner += w[q] * math.tanh(base + C[3, 3] * z[q])
                s += w[j] * w[k] * b * c * inner
        parts[i] = w[i] * a * s
    return parts.sum()


@pytest.mark.parametrize("frac", [0.99, 0.6])
def test_tanh_four_point_against_a_brute_force_trapezoid(frac):
    """c0 = 0.9, unequal norms, K = 1.5: the (12, 12) four-point moment against the plain
    four-dimensional trapezoidal sum with step 0.2 (which agrees with step 0.15 to 2e-15).
    Negative control: the old tensor Gauss-Hermite value (12 nodes per axis) is rejected."""
    Ke, Kl = _walk(1.5, 1.2, 0.9, frac)
    ke, kl = _packed(Ke, Kl)
    A = np.empty((3, 3))
    module("oneloop", "tanh").four_point_pair(ke, kl, A)
    got = A[2, 2] + _tanh_pair(*ke) * _tanh_pair(*kl)
    C = np.linalg.cholesky(np.block([[Ke, Ke], [Ke, Kl]]))
    want = _brute_tanh4(C, 0.2, 8.0)
    assert got == pytest.approx(want, rel=1e-9)
    # the rule this replaced, on the same integrand
    z, w = np.polynomial.hermite_e.hermegauss(12)
    w = w / w.sum()
    grid = np.array(np.meshgrid(z, z, z, z, indexing="ij")).reshape(4, -1)
    weight = np.einsum("i,j,k,l->ijkl", w, w, w, w).ravel()
    gh = float(np.sum(weight * np.prod(np.tanh(C @ grid), axis=0)))
    assert gh != pytest.approx(want, rel=1e-9)


# ---- refinement: the rule finds the step an integrand needs ------------------------------


def _printed_moments(name, integrands):
    """A module printed by the generator with one function `moments(k, out)` per (variables,
    body, entry symbols) in `integrands`, each lowered to the trapezoidal rule."""
    import sympy as sp

    from fieldgen.codegen.builders import packed_function
    from fieldgen.codegen.module import ModuleSpec, render
    from fieldgen.derivations.expectation import GaussianExpectation

    spec = ModuleSpec(name, "test module", integrity_check=False)
    for i, (xs, body, ks) in enumerate(integrands):
        entries = {(0,): GaussianExpectation(sp.Lambda(xs, body), *ks)}
        spec.functions.append(
            packed_function(
                f"moments{i}", inputs=[("k", ks)], entries=entries, shape=(1,), doc="",
                library=spec.library,
            )
        )  # fmt: skip
    text = render(spec).replace("from .", "from fieldgen.generated.")
    assert "trap_accept" in text and "GH4_NODES" not in text
    return text


@pytest.fixture(scope="module")
def refined_moments(tmp_path_factory):
    """tanh(5 x)^2 tanh(5 y) tanh(5 z) (3-D: singularities five times closer to the real axis
    than tanh's) and tanh's four-point walk moment (4-D), printed by the generator."""
    import sympy as sp

    from fieldgen.derivations.expectation import variables

    x1, x2, x3, x4 = variables(4)
    k3 = sp.symbols("a00 a11 a22 a01 a02 a12", real=True)
    k4 = sp.symbols("c00 c11 c22 c33 c01 c02 c03 c12 c13 c23", real=True)
    t5 = lambda u: sp.tanh(5 * u)  # noqa: E731
    text = _printed_moments(
        "trap_refine_test",
        [
            ((x1, x2, x3), t5(x1) ** 2 * t5(x2) * t5(x3), k3),
            ((x1, x2, x3, x4), sp.tanh(x1) * sp.tanh(x2) * sp.tanh(x3) * sp.tanh(x4), k4),
        ],
    )
    return _imported(tmp_path_factory.mktemp("refine") / "trap_refine_test.py", text)


@numba.njit(parallel=True, cache=False)
def _brute_tanh5_3(C, h, half):
    """E[t(x1)^2 t(x2) t(x3)], t(u) = tanh(5 u), x = C z: the plain 3-D trapezoidal sum on a
    cube."""
    z, w = _cube_axis(h, half)
    m = z.shape[0]
    parts = np.zeros(m)
    for i in numba.prange(m):
        s = 0.0
        a = math.tanh(5.0 * C[0, 0] * z[i]) ** 2
        for j in range(m):
            b = math.tanh(5.0 * (C[1, 0] * z[i] + C[1, 1] * z[j]))
            for k in range(m):
                s += (
                    w[j]
                    * w[k]
                    * b
                    * math.tanh(5.0 * (C[2, 0] * z[i] + C[2, 1] * z[j] + C[2, 2] * z[k]))
                )
        parts[i] = w[i] * a * s
    return parts.sum()


def _lattice_at(mod, C, level):
    """The printed rule's sum on the lattice of one refinement level (no refinement), for the
    module's one moment of dimension C.shape[0]."""
    from fieldgen.generated import quadrature

    stem = f"_moments{C.shape[0]}_"
    (name,) = [n for n in vars(mod) if n.startswith(stem) and n.endswith("_lattice")]
    steps = np.empty(C.shape[0])
    halves = np.empty(C.shape[0], np.int64)
    quadrature.trap_steps(C, quadrature.TRAP_Z, level, steps, halves)
    return getattr(mod, name)(C, steps, halves)[0]


def test_refinement_resolves_singularities_closer_to_the_real_axis(refined_moments):
    """tanh(5 x): 3-D moment, c = 0.9, against a brute-force cube sum (step 0.03, which agrees
    with step 0.0225 to 1e-14), at 1e-9. Negative control: the rule's base lattice, whose steps
    suit tanh (it gave 4e-3 on a 4-D tanh(5 x) moment), is rejected."""
    K = np.array([[1.0, 0.9, 0.8], [0.9, 1.2, 0.95], [0.8, 0.95, 1.1]])
    C = np.linalg.cholesky(K)
    k = np.array([K[0, 0], K[1, 1], K[2, 2], K[0, 1], K[0, 2], K[1, 2]])
    out = np.empty(1)
    refined_moments.moments0(k, out)
    want = _brute_tanh5_3(C, 0.03, 8.0)
    assert _brute_tanh5_3(C, 0.0225, 8.0) == pytest.approx(want, rel=1e-13)
    assert out[0] == pytest.approx(want, rel=1e-9)
    from fieldgen.generated.quadrature import TRAP_BASE_LEVEL

    base = _lattice_at(refined_moments, C, TRAP_BASE_LEVEL)
    assert base != pytest.approx(want, rel=1e-9)


def test_refinement_where_the_layers_nearly_coincide_at_small_kernels(refined_moments):
    """tanh, K = 0.3, c0 = 0.9, early/late ratio 0.999: the four-point moment against the
    brute-force 4-D sum at 1e-10 (the fixed steps used before refinement were 5e-9 off here:
    fourth-order poles of four nearly equal tanh factors). Negative control: a lattice one
    refinement level coarser than the base one is rejected."""
    from fieldgen.generated.quadrature import TRAP_BASE_LEVEL

    Ke, Kl = _walk(0.3, 1.2, 0.9, 0.999)
    cov = np.block([[Ke, Ke], [Ke, Kl]])
    C = np.linalg.cholesky(cov)
    k = np.array(
        [
            cov[i, j]
            for i, j in [
                (0, 0),
                (1, 1),
                (2, 2),
                (3, 3),
                (0, 1),
                (0, 2),
                (0, 3),
                (1, 2),
                (1, 3),
                (2, 3),
            ]
        ]
    )
    out = np.empty(1)
    refined_moments.moments1(k, out)
    want = _brute_tanh4(C, 0.15, 8.0)
    assert out[0] == pytest.approx(want, rel=1e-10)
    coarse = _lattice_at(refined_moments, C, TRAP_BASE_LEVEL - 1)
    assert coarse != pytest.approx(want, rel=1e-9)
