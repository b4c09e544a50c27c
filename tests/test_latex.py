"""LaTeX export: golden file, determinism, pdflatex compile, and the printed formulas parsed back.

The round-trip tests read equations out of the exported document with SymPy's LaTeX parser and
compare them at random points with the expressions the code generator uses, computed here
directly from the derivations (not through the exporter's views).
"""

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import sympy as sp
from latex_parse import equation_rows, matrix_entries, parse, sides, to_model

import fieldgen
from fieldgen.codegen.writer import unified_diff
from fieldgen.derivations import (
    action,
    closed_forms,
    continuum,
    gauss,
    meanfield,
    model,
    one_loop,
    saturated,
)
from fieldgen.derivations.expectation import explicit_correlation
from fieldgen.tex import document, pdf
from fieldgen.tex.nodes import AtLayer
from fieldgen.tex.printer import latex_expr
from fieldgen.tex.sections import SECTIONS

BIN = Path(sys.executable).parent
GOLDEN = Path(__file__).parent / "golden" / "derivations.tex"
REFRESH = ".venv/bin/fieldgen latex -o tests/golden/derivations.tex"
K11, K22, K12 = model.K
r, sw2, sb2 = model.r, model.sigma_w2, model.sigma_b2
l = sp.Symbol("l")


@pytest.fixture(scope="module")
def exported():
    return document.render()


@pytest.fixture(scope="module")
def rows(exported):
    return equation_rows(exported)


# ---- the document as a whole ------------------------------------------------------------------


def test_export_matches_the_golden_file(exported):
    if not GOLDEN.exists() or GOLDEN.read_text() != exported:
        diff = unified_diff(GOLDEN, exported, "tests/golden/derivations.tex")
        pytest.fail(
            f"the LaTeX export changed; review the diff and refresh with `{REFRESH}`:\n"
            + diff[:20000]
        )


def test_two_exports_in_fresh_processes_are_byte_identical(exported):
    env = dict(os.environ, PYTHONHASHSEED="4321")
    out = subprocess.run(
        [str(BIN / "fieldgen"), "latex"], env=env, capture_output=True, timeout=600
    )
    assert out.returncode == 0, out.stderr.decode()
    assert out.stdout == exported.encode()


def _compile(text: str, folder: Path) -> pdf.Compiled:
    tex = folder / "derivations.tex"
    tex.write_text(text)
    try:
        return pdf.compile_pdf(tex)
    except pdf.TexError as exc:
        if "no pdflatex" in str(exc):
            pytest.fail(
                f"{exc}. `make test` installs it (target `tex`, needs root or sudo); "
                "without TeX the compile test cannot pass."
            )
        raise


def test_document_compiles_without_errors_undefined_references_or_overfull_lines(
    exported, tmp_path
):
    done = _compile(exported, tmp_path)
    assert done.pdf.exists() and done.pages >= 8
    assert done.overfull == []
    assert "\\eqref{" in exported  # cross-references exist and resolved (compile_pdf checks)


def test_compile_check_reports_undefined_references_and_errors(exported, tmp_path):
    dangling = exported.replace(r"\end{document}", r"See \eqref{eq:nowhere}.\end{document}")
    with pytest.raises(pdf.TexError, match="undefined"):
        _compile(dangling, tmp_path)
    broken = exported.replace(r"\end{document}", r"$\frac{1}$\end{document}")
    with pytest.raises(pdf.TexError, match="does not compile"):
        _compile(broken, tmp_path)


def test_every_section_exports_alone_and_compiles(tmp_path):
    for name in SECTIONS:
        text = document.render([name])
        assert text.count("\\section{") == 1
        assert _compile(text, tmp_path).pages >= 1, name


def test_every_displayed_formula_is_numbered_and_labelled(exported, rows):
    assert "\\begin{align*}" not in exported and "equation*" not in exported
    aligned = exported.count("\\begin{align}")
    assert aligned >= 30
    assert len(rows) == exported.count("\\label{eq:") >= 150


# ---- round trip: parse the printed LaTeX and compare with the source expressions -------------


def _points(n=3, seed=0):
    rng = random.Random(seed)
    for _ in range(n):
        a, b = rng.uniform(0.2, 3.0), rng.uniform(0.2, 3.0)
        yield {
            K11: a,
            K22: b,
            K12: rng.uniform(-0.95, 0.95) * (a * b) ** 0.5,
            model.K1: rng.uniform(0.2, 3.0),
            model.m[0]: rng.uniform(-1, 1),
            model.m[1]: rng.uniform(-1, 1),
            model.m1: rng.uniform(-1, 1),
            model.G[0]: a,
            model.G[1]: b,
            model.G[2]: 0.3 * (a * b) ** 0.5,
            model.G1: rng.uniform(0.2, 3.0),
            r: rng.uniform(0.05, 1.0),
            sw2: rng.uniform(0.5, 2.0),
            sb2: rng.uniform(0.0, 0.5),
        }


def _assert_same(printed, source, what):
    for point in _points():
        got, want = complex(printed.subs(point).evalf()), complex(source.subs(point).evalf())
        assert want.imag == 0 and abs(got - want) <= 1e-10 * (1 + abs(want)), (what, got, want)


def _rho(k11, k22, k12):
    return k12 / sp.sqrt(k11 * k22)


SCALARS = {"r": r, "sigma_{w}": sp.sqrt(sw2), "sigma_{b}": sp.sqrt(sb2), "pi": sp.pi}
FIELDS = tuple(sw2 * k + sb2 for k in model.K)  # C^l = sigma_w^2 K^{l-1} + sigma_b^2
LAYERED = {
    ("K_{11}", l - 1): K11,
    ("K_{22}", l - 1): K22,
    ("K_{12}", l - 1): K12,
    ("K", l - 1): model.K1,
    ("m_{1}", l - 1): model.m[0],
    ("m_{2}", l - 1): model.m[1],
    ("m", l - 1): model.m1,
    ("rho", l - 1): _rho(*model.K),
    ("C_{11}", l): FIELDS[0],
    ("C_{22}", l): FIELDS[1],
    ("C_{12}", l): FIELDS[2],
    ("C", l): sw2 * model.K1 + sb2,
    ("rho_{C}", l): _rho(*FIELDS),
}
PRINTED = {
    "K11": "K_{11}",
    "K22": "K_{22}",
    "K12": "K_{12}",
    "K": "K",
    "m1": "m_{1}",
    "m2": "m_{2}",
    "m": "m",
}


def _check_layer_row(rows, label, state, source):
    lhs, rhs = sides(rows[label])
    printed_lhs = parse(lhs)
    assert printed_lhs.is_Pow and str(printed_lhs.base) == PRINTED[state.name], label
    assert printed_lhs.exp == l, label
    _assert_same(to_model(parse(rhs), SCALARS, LAYERED), source, label)


@pytest.mark.parametrize("block", model.BLOCKS)
@pytest.mark.parametrize("name", sorted(closed_forms.recipes()))
def test_meanfield_recursion_parses_back_to_the_generated_layer_map(rows, block, name):
    """Every closed-form layer map, both blocks, one and two inputs, as printed in the document."""
    for n_inputs in (1, 2):
        lm = meanfield.layer_map(block, name, n_inputs)
        for state, update in zip(lm.state, lm.update):
            _check_layer_row(rows, f"eq:meanfield:{block}-{name}-{state.name}", state, update)


def test_reduced_block_field_and_input_layer_parse_back(rows):
    for k, field in zip(("C11", "C22", "C12"), FIELDS):
        _, rhs = sides(rows[f"eq:meanfield:reduced-field-{k}"])
        _assert_same(to_model(parse(rhs), SCALARS, LAYERED), field, k)
    names = dict(SCALARS, **{f"G_{{{p}}}": g for p, g in zip(model.PAIRS, model.G)}, G=model.G1)
    for n_inputs in (1, 2):
        kernel = meanfield.kernel_symbols(n_inputs)
        for k, value in zip(kernel, meanfield.input_kernel("layer", n_inputs)):
            lhs, rhs = sides(rows[f"eq:meanfield:input-layer-{k.name}"])
            assert lhs == f"{PRINTED[k.name]}^{{0}}"
            _assert_same(to_model(parse(rhs), names, {}), value, k)


CLOSED = dict(
    SCALARS, **{"K_{11}": K11, "K_{22}": K22, "K_{12}": K12, "K": model.K1, "rho": _rho(*model.K)}
)


@pytest.mark.parametrize("name", sorted(closed_forms.recipes()))
def test_closed_forms_and_derivatives_parse_back_to_what_the_generator_differentiates(rows, name):
    K = model.K1
    chain = closed_forms.pair_chain(name).chain
    P, P12 = gauss.single(name, K), gauss.pair(name)[2]
    expected = {f"{name}-chain-{j}": c for j, c in enumerate(chain)}
    expected.update(
        {
            f"{name}-single-P": P,
            f"{name}-single-dP": sp.diff(P, K),
            f"{name}-single-ddP": sp.diff(P, K, 2),
            f"{name}-single-mean": gauss.mean(name, K),
        }
    )
    for i, q in enumerate(model.K):
        expected[f"{name}-pair-d{q.name}"] = sp.diff(P12, q)
        for s in model.K[i:]:
            expected[f"{name}-pair-d{q.name}d{s.name}"] = sp.diff(P12, q, s)
    for tag, source in expected.items():
        _, rhs = sides(rows[f"eq:closed-forms:{tag}"])
        _assert_same(to_model(parse(rhs), CLOSED, {}), source, tag)


def test_round_trip_catches_a_misprinted_symbol(rows):
    """Negative control: the relu recursion with sigma_b and sigma_w swapped must be rejected."""
    label = "eq:meanfield:full-relu-K12"
    swapped = (
        rows[label]
        .replace(r"\sigma_w", "@")
        .replace(r"\sigma_b", r"\sigma_w")
        .replace("@", r"\sigma_b")
    )
    lm = meanfield.layer_map("full", "relu", 2)
    with pytest.raises(AssertionError):
        _check_layer_row({label: swapped}, label, K12, lm.update[2])


def _assert_same_at(printed, source, points, what):
    for point in points:
        got, want = complex(printed.subs(point).evalf()), complex(source.subs(point).evalf())
        assert want.imag == 0 and abs(got - want) <= 1e-10 * (1 + abs(want)), (what, got, want)


def _walk_points(n=4, seed=1):
    """Early and late kernels of one neuron's walk: the kernel grows, K^m >= K^k."""
    rng = random.Random(seed)
    (ke,), (kl,) = one_loop.early_late_symbols(1)
    for _ in range(n):
        early = rng.uniform(0.2, 2.5)
        yield {ke: early, kl: early + rng.uniform(0.0, 2.5)}


def _walk_names():
    (ke,), (kl,) = one_loop.early_late_symbols(1)
    names = dict(SCALARS, **{"rho_{k*m}": sp.sqrt(ke / kl)})  # the parser reads rho_{km} so
    return names, {("K", sp.Symbol("k")): ke, ("K", sp.Symbol("m")): kl}


@pytest.mark.parametrize(
    "tag, source",
    [
        ("A-relu", lambda: one_loop.four_point("relu", 1)[0, 0]),
        ("F-relu", lambda: one_loop.self_feedback("relu", 1)[0][0][0]),
    ],
)
def test_relu_four_point_and_self_feedback_parse_back(rows, tag, source):
    """The relu one-input closed forms of A^{km} and F^{mk} as printed (through rho_{km})."""
    names, layered = _walk_names()
    _, rhs = sides(rows[f"eq:one-loop:{tag}"])
    printed = to_model(parse(rhs), names, layered)
    _assert_same_at(printed, explicit_correlation(source()), _walk_points(), tag)


def test_round_trip_rejects_the_self_feedback_printed_as_the_four_point_covariance(rows):
    """Negative control: the F row compared with A must fail."""
    names, layered = _walk_names()
    _, rhs = sides(rows["eq:one-loop:F-relu"])
    with pytest.raises(AssertionError):
        _assert_same_at(
            to_model(parse(rhs), names, layered),
            explicit_correlation(one_loop.four_point("relu", 1)[0, 0]),
            _walk_points(),
            "F as A",
        )


def _quad(integral, point) -> float:
    from scipy.integrate import quad

    ((var, lo, hi),) = integral.limits
    f = sp.lambdify(var, integral.function.subs(point), "math")
    return quad(f, float(lo), float(hi), epsabs=1e-13, epsrel=1e-12)[0]


def test_erf_four_point_path_integral_parses_back(rows):
    """A^{km} of erf as printed (integrand rewritten through D(s)) against the derived integral,
    both integrated numerically over s in [0, 1]."""
    names, layered = _walk_names()
    s = sp.Symbol("s")
    _, d_rhs = sides(rows["eq:one-loop:D"])
    D = to_model(parse(d_rhs), dict(names, s=s), layered)
    _, rhs = sides(rows["eq:one-loop:A-erf"])
    assert r"\int\limits_{0}^{1}" in rhs and rhs.endswith(r"\, ds")
    # The parser reads D{\left(s \right)} as the product D s.
    printed = to_model(parse(rhs), dict(names, s=s, D=D / s), layered)
    source = one_loop.four_point("erf", 1)[0, 0]
    for point in _walk_points(n=3):
        got, want = _quad(printed, point), _quad(source, point)
        assert abs(got - want) <= 1e-10 * (1 + abs(want)), (point, got, want)


def test_sampling_noise_parses_back_entry_by_entry(rows):
    X = one_loop.sampling_noise(2)
    entries = matrix_entries(rows["eq:one-loop:X-pair"])
    assert len(entries) == 3 and all(len(row) == 3 for row in entries)
    for i, row in enumerate(entries):
        for j, tex in enumerate(row):
            _assert_same(to_model(parse(tex), CLOSED, {}), X[i, j], f"X[{i}, {j}]")
    _, rhs = sides(rows["eq:one-loop:X-single"])
    _assert_same(to_model(parse(rhs), CLOSED, {}), one_loop.sampling_noise(1)[0, 0], "X")


def _output_points(n=4, seed=2):
    """Output kernels of two inputs of equal norm K: |K12| < K."""
    rng = random.Random(seed)
    for _ in range(n):
        K = rng.uniform(0.2, 3.0)
        yield {
            K11: K,
            K12: rng.uniform(-0.95, 0.95) * K,
            sw2: rng.uniform(0.5, 2.0),
            sb2: rng.uniform(0.0, 0.5),
        }


def test_continuum_optimum_condition_parses_back(rows):
    """Both sides of d ln S/dtau = 0 (erf, times sigma_w^2), printed simplified, against the
    condition continuum.optimum_condition derives; the equal norm K11 is printed K."""
    condition = continuum.optimum_condition(continuum.flow("full", "erf"))
    names = dict(SCALARS, **{"K": K11, "K_{12}": K12})
    lhs, rhs = sides(rows["eq:response:optimum"])
    for printed, source, side in ((lhs, condition.lhs, "lhs"), (rhs, condition.rhs, "rhs")):
        _assert_same_at(to_model(parse(printed), names, {}), source, _output_points(), side)


@pytest.mark.parametrize("block", model.BLOCKS)
@pytest.mark.parametrize("mode", model.INPUT_MODES)
def test_saturated_optimal_r_parses_back(rows, block, mode):
    depth, u, K0 = saturated.depth, saturated.u, sp.Symbol("K0", positive=True)
    G = sp.Symbol("G", positive=True)
    names = dict(SCALARS, L=depth, u=u, G=G, e=sp.E)
    lhs, rhs = sides(rows[f"eq:response:sign-r-{block}-{mode}"])
    assert lhs == "r^{*}"
    printed = to_model(parse(rhs), names, {("K", 0): K0})
    rng = random.Random(3)
    points = [
        {
            depth: rng.uniform(10, 1000),
            u: rng.uniform(0.1, 3.0),
            K0: rng.uniform(0.2, 3.0),
            G: rng.uniform(0.2, 3.0),
            sw2: rng.uniform(0.5, 2.0),
        }
        for _ in range(4)
    ]
    _assert_same_at(printed, saturated.optimal_r(block, mode), points, (block, mode))


# ---- printer and API ----------------------------------------------------------------------------


def test_pinned_symbol_names_and_layer_superscripts():
    Ct12 = model.Ct[2]
    assert latex_expr(sw2) == r"\sigma_w^2" and latex_expr(sb2) == r"\sigma_b^2"
    assert latex_expr(sw2**2) == r"\left(\sigma_w^2\right)^{2}"
    assert latex_expr(K12) == "K_{12}" and latex_expr(Ct12) == r"\tilde{C}_{12}"
    assert latex_expr(model.m[0]) == "m_{1}" and latex_expr(model.G[0]) == "G_{11}"
    assert latex_expr(AtLayer(K12, model.layer - 1)) == "K_{12}^{l - 1}"
    assert latex_expr(AtLayer(K12, model.layer) ** 2) == r"\left(K_{12}^{l}\right)^{2}"


def test_expectation_and_correlation_nodes():
    from fieldgen.derivations.expectation import Correlation, expect, variables

    x1, x2 = variables(2)
    node = expect(sp.tanh(x1) * sp.tanh(x2), model.K)
    assert latex_expr(node) == (
        r"\left\langle \tanh{\left(h_{1} \right)} \tanh{\left(h_{2} "
        r"\right)} \right\rangle_{K}"
    )
    assert latex_expr(Correlation(*model.K)) == r"\rho"
    assert latex_expr(Correlation(*model.C)) == r"\rho_{C}"
    assert latex_expr(Correlation(K11, K22, 2 * K12)).startswith(r"\rho\left(")


def test_long_right_hand_sides_break_into_balanced_rows():
    lm = meanfield.layer_map("full", "tanh", 2)
    text = fieldgen.latex(lm)
    body = text.split("\n", 1)[1].rsplit("\n", 1)[0]
    for row in body.split("\\\\\n"):
        assert row.count(r"\left") == row.count(r"\right"), row
    long = sp.Eq(
        sp.Symbol("y"),
        sum(sp.Symbol(f"a{i}") * sp.sin(sp.Symbol(f"b{i}")) for i in range(30)),
        evaluate=False,
    )
    broken = latex_expr(long, break_width=60)
    assert broken.count(r"\nonumber") >= 3 and broken.startswith("y &= ")


def test_latex_api_prints_sympy_objects_and_derivations():
    assert fieldgen.latex(r * sw2) == r"r \sigma_w^2"
    saddle = action.saddle_point(1, action.second_moment_source((model.K1,), 1))
    for obj in (
        meanfield.layer_map("reduced", "relu", 2),
        saddle,
        closed_forms.pair_chain("erf"),
        action.full_block_increment(model.C, 2),
    ):
        text = fieldgen.latex(obj)
        assert text.startswith("\\begin{align*}") and text.endswith("\\end{align*}")
        assert "&=" in text
    with pytest.raises(TypeError, match="no LaTeX view"):
        fieldgen.latex(object())


def test_cli_errors_are_one_line_with_exit_2(tmp_path):
    out = subprocess.run(
        [str(BIN / "fieldgen"), "latex", "--section", "nonsense"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "model, action" in out.stderr
    # --pdf without TeX on PATH names the Debian package.
    env = dict(os.environ, PATH=str(BIN))
    out = subprocess.run(
        [
            str(BIN / "fieldgen"),
            "latex",
            "--section",
            "price",
            "--pdf",
            "-o",
            str(tmp_path / "p.tex"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0
    assert "apt-get install texlive-latex-base" in out.stderr
