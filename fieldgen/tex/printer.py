"""FieldgenLatexPrinter: SymPy's LaTeX printer extended for the project's own symbolic types.

Like the Numba printer (``fieldgen/codegen/printer.py``), every project construct gets a
``_print_<Node>`` method instead of string surgery on printed LaTeX:

- pinned symbol names: ``sigma_w2`` -> ``\\sigma_w^2``, ``Ct12`` -> ``\\tilde{C}_{12}``, pair and
  input indices as subscripts (``K11`` -> ``K_{11}``, ``m1`` -> ``m_1``);
- ``AtLayer`` (``nodes.py``): the layer as a superscript, ``K_{12}^{l-1}``;
- ``GaussianExpectation``: ``\\left\\langle f(h_1, h_2) \\right\\rangle_{K}``, the integration
  variables shown as pre-activations h and the covariance as a subscript;
- ``Correlation``: ``\\rho`` for the kernel K, ``\\rho_{C}`` for another pair matrix;
- ``Equality`` with ``break_width`` set: rows of an amsmath ``align`` environment, the right-hand
  side broken at top-level signs (``linebreak.py``);
- one-loop and response notation (``nodes.py``): two-layer superscripts ``A^{km}``, layer
  subscripts ``c_{l,m}``, transposes, contractions ``H : X``, ``Cov``, ordered matrix products
  ``T^{L-1} \\cdots T^{0}``; sums with several limits as nested sums;
- the code generator's helper nodes (``SqrtProduct``, ``CopySign``) should they ever appear.
"""

from __future__ import annotations

import re

import sympy as sp
from sympy.printing.latex import LatexPrinter
from sympy.printing.precedence import PRECEDENCE

from ..derivations.expectation import GaussianExpectation
from .linebreak import pack, visible_width
from .nodes import AtLayer, DisplayStyle

# Symbols whose LaTeX name is not the one SymPy would derive from the Python name.
PINNED = {
    "sigma_w2": r"\sigma_w^2",
    "sigma_b2": r"\sigma_b^2",
    "rho": r"\rho",
    "Ct": r"\tilde{C}",
    "dK_C": r"\delta K_{C}",
    # Optimum values: the parser reads x^{*} back as x.
    "tau_star": r"\tau^{*}",
    "u_star": r"u^{*}",
    "r_star": r"r^{*}",
}
# Stems of indexed symbols (stem + digits): the digits are a pair or input index, a subscript.
STEMS = {
    "K": "K",
    "C": "C",
    "Ct": r"\tilde{C}",
    "G": "G",
    "m": "m",
    "x": "x",
    "h": "h",
    "g": "g",
    "j": "j",
    "P": "P",
}
_INDEXED = re.compile(r"^([A-Za-z]+?)(\d+)$")
PAIR_SUFFIXES = ("11", "22", "12")
# Continuation lines of a broken equation are indented by this much after the alignment point.
CONTINUATION = r"\qquad"


def _pair_stem(entries):
    """(stem, layer) if entries are (X11, X22, X12) of one stem at one layer, else None."""
    if len(entries) != 3:
        return None
    layers = {e.layer if isinstance(e, AtLayer) else None for e in entries}
    symbols = [e.symbol if isinstance(e, AtLayer) else e for e in entries]
    if len(layers) != 1 or not all(isinstance(s, sp.Symbol) for s in symbols):
        return None
    stems = {s.name[:-2] for s in symbols}
    if len(stems) != 1 or tuple(s.name[-2:] for s in symbols) != PAIR_SUFFIXES:
        return None
    return stems.pop(), layers.pop()


class FieldgenLatexPrinter(LatexPrinter):
    _default_settings = dict(
        LatexPrinter._default_settings,
        inv_trig_style="full",  # \arcsin: standard notation, and SymPy's LaTeX parser reads it
        ln_notation=True,  # \ln, as the derivations' natural logarithms read on paper
        break_width=None,  # None: "lhs = rhs" on one line; a number: align rows
        lhs_width=None,  # width of the align's left column (default: this row's lhs)
    )

    # ---- symbols ---------------------------------------------------------------------------

    def _print_Symbol(self, expr, style="plain"):
        if expr.name in PINNED:
            return PINNED[expr.name]
        match = _INDEXED.match(expr.name)
        if match and match.group(1) in STEMS:
            return f"{STEMS[match.group(1)]}_{{{match.group(2)}}}"
        return super()._print_Symbol(expr, style=style)

    def _hprint_Function(self, func: str) -> str:
        # phi_relu: a word as subscript is a name, set upright: \phi_{\mathrm{relu}}.
        stem, _, word = func.partition("_")
        if len(word) > 1 and word.isalpha():
            return rf"{super()._hprint_Function(stem)}_{{\mathrm{{{word}}}}}"
        return super()._hprint_Function(func)

    def _stem(self, stem: str) -> str:
        return STEMS.get(stem) or self._print(sp.Symbol(stem))

    def _with_exp(self, tex: str, exp) -> str:
        if exp is None:
            return tex
        return f"{self.parenthesize_super(tex)}^{{{exp}}}"

    def _print_AtLayer(self, expr, exp=None):
        tex = f"{self._print(expr.symbol)}^{{{self._print(expr.layer)}}}"
        return self._with_exp(tex, exp)

    def _layers(self, layers) -> str:
        """Layer indices side by side when all are single letters (km, ll'), else separated
        (0, 1 and L, 0 and l - 1, m)."""
        shown = [self._print(x) for x in layers]
        if all(len(x.rstrip("'")) == 1 and x[0].isalpha() for x in shown):
            return "".join(shown)
        return ", ".join(shown)

    def _print_AtLayers(self, expr, exp=None):
        tex = f"{self._print(expr.symbol)}^{{{self._layers(expr.layers)}}}"
        return self._with_exp(tex, exp)

    def _print_Subscripted(self, expr, exp=None):
        indices = ",".join(self._print(x) for x in expr.args[1:])
        return self._with_exp(f"{self._print(expr.symbol)}_{{{indices}}}", exp)

    def _print_Transposed(self, expr, exp=None):
        tex = self.parenthesize_super(self._print(expr.args[0]))
        return self._with_exp(f"{tex}^{{\\top}}", exp)

    def _print_Contraction(self, expr, exp=None):
        a, b = (self.parenthesize(x, PRECEDENCE["Mul"], strict=True) for x in expr.args)
        return self._bracketed_power(f"{a} : {b}", exp)

    def _print_Covariance(self, expr, exp=None):
        args = ", ".join(self._print(a) for a in expr.args)
        return self._with_exp(r"\operatorname{Cov}\left(%s\right)" % args, exp)

    def _print_OrderedProduct(self, expr, exp=None):
        symbol, high, low = expr.args
        factors = [AtLayer(symbol, high), AtLayer(symbol, high - 1), AtLayer(symbol, low)]
        return self._bracketed_power(r"{} {} \cdots {}".format(*map(self._print, factors)), exp)

    @staticmethod
    def _bracketed_power(tex: str, exp) -> str:
        return tex if exp is None else r"\left(%s\right)^{%s}" % (tex, exp)

    def _print_DisplayStyle(self, expr):
        return r"\displaystyle " + self._print(expr.args[0])

    def _print_matrix_contents(self, expr):
        # Matrix entries are set in text style, where a fraction shrinks to script size: entries
        # with fractions are set in display style instead, with room between the rows.
        if not any(p.exp.is_negative for entry in expr for p in entry.atoms(sp.Pow)):
            return super()._print_matrix_contents(expr)
        rows = [
            " & ".join(self._print(DisplayStyle(e)) for e in expr[i, :]) for i in range(expr.rows)
        ]
        return r"\begin{matrix}%s\end{matrix}" % r"\\[3ex]".join(rows)

    def _print_Mean(self, expr, exp=None):
        tex = r"\mathbb{E}\left[%s\right]" % self._print(expr.args[0])
        return tex if exp is None else f"{tex}^{{{exp}}}"

    # ---- the project's functions -----------------------------------------------------------

    def _covariance(self, entries) -> str:
        """The subscript naming the covariance of an expectation."""
        if len(entries) == 1:
            return self._print(entries[0])
        stem = _pair_stem(entries)
        if stem is not None:
            name, layer = stem
            return self._stem(name) + ("" if layer is None else f"^{{{self._print(layer)}}}")
        return r"\left({}\right)".format(", ".join(self._print(e) for e in entries))

    def _integrand(self, expr):
        """The integrand of an expectation in the pre-activations h_1, h_2, ..."""
        xs = expr.integrand.variables
        return expr.integrand.expr.xreplace(
            {x: sp.Symbol(f"h{i + 1}", real=True) for i, x in enumerate(xs)}
        )

    def _print_GaussianExpectation(self, expr, exp=None):
        body = self._print(self._integrand(expr))
        tex = rf"\left\langle {body} \right\rangle_{{{self._covariance(expr.entries)}}}"
        return tex if exp is None else f"{tex}^{{{exp}}}"

    def _print_Correlation(self, expr, exp=None):
        stem = _pair_stem(expr.args)
        if stem is None:
            args = ", ".join(self._print(a) for a in expr.args)
            return self._with_exp(rf"\rho\left({args}\right)", exp)
        name, layer = stem
        tex = r"\rho" if name == "K" else rf"\rho_{{{self._stem(name)}}}"
        if layer is not None:
            tex += f"^{{{self._print(layer)}}}"
        return self._with_exp(tex, exp)

    def _print_SqrtProduct(self, expr, exp=None):
        return self._with_exp(r"\sqrt{%s}" % self._print(sp.Mul(*expr.args)), exp)

    def _print_CopySign(self, expr, exp=None):
        args = ", ".join(self._print(a) for a in expr.args)
        return self._with_exp(r"\operatorname{copysign}\left(%s\right)" % args, exp)

    # ---- calculus --------------------------------------------------------------------------

    def _print_Derivative(self, expr):
        # A total derivative d/dK only when the expression depends on nothing but the
        # variables; SymPy's rule counts free symbols, so a layer's action S^l would get d.
        own = self._settings["diff_operator_latex"]
        depends = {s for s in expr.expr.free_symbols if not s.is_integer} | expr.expr.atoms(AtLayer)
        if depends - set(expr.variables):
            self._settings["diff_operator_latex"] = r"\partial"
        try:
            return super()._print_Derivative(expr)
        finally:
            self._settings["diff_operator_latex"] = own

    def _print_Integral(self, expr):
        # An integrand c(x) f(x) prints as \frac{c}{d} f, not \frac{c f}{d}: the argument of
        # f keeps its size instead of shrinking inside a fraction.
        own = self._settings["long_frac_ratio"]
        self._settings["long_frac_ratio"] = 2
        try:
            return super()._print_Integral(expr)
        finally:
            self._settings["long_frac_ratio"] = own

    def _print_Sum(self, expr):
        # Several limits as nested sums, outermost first, instead of one sum over a \\substack.
        if len(expr.limits) == 1:
            return super()._print_Sum(expr)
        heads = [
            r"\sum_{%s=%s}^{%s}" % tuple(self._print(x) for x in limit)
            for limit in reversed(expr.limits)
        ]
        body = self._print(expr.function)
        if expr.function.is_Add:
            body = r"\left(%s\right)" % body
        return " ".join(heads) + " " + body

    def _print_Subs(self, expr):
        # x = y = 0 on one line instead of a stack of conditions, when all values agree.
        body, old, new = expr.args
        if len(set(new)) != 1:
            return super()._print_Subs(expr)
        at = " = ".join(self._print(o) for o in old + (new[0],))
        return r"\left. %s \right|_{%s}" % (self._print(body), at)

    # ---- equations -------------------------------------------------------------------------

    def _signed_terms(self, expr, carried_first: bool = False) -> list[tuple[str, sp.Expr]]:
        """(sign, term) of each top-level term, in _print_Add's order; signs "", "+" or "-".

        With carried_first, bare layer values (the K^{l-1} a recursion carries over) lead.
        """
        terms = self._as_ordered_terms(expr) if expr.is_Add else [expr]
        if carried_first:
            terms = sorted(terms, key=lambda t: not isinstance(t, AtLayer))
        out = []
        for i, term in enumerate(terms):
            sign = "" if i == 0 else "+"
            if i and term.could_extract_minus_sign():
                sign, term = "-", -term
            out.append((sign, term))
        return out

    def _term(self, sign: str, term) -> str:
        tex = self._print(term)
        if self._needs_add_brackets(term):
            tex = r"\left(%s\right)" % tex
        return f"{sign} {tex}" if sign else tex

    def _opening(self, term):
        """(opening LaTeX, expression inside, closing LaTeX) of a term a line may break inside:
        coefficient * (sum), or an expectation. None for any other term."""
        if term.is_Mul:
            numer, denom = sp.fraction(term)
            sums = [f for f in sp.Mul.make_args(numer) if f.is_Add]
            if sums:
                # Open the widest sum; the other factors stay in the coefficient in front.
                inner = max(sums, key=lambda f: visible_width(self._print(f)))
                # The other factors, not term / inner: dividing an unevaluated product by one of
                # its factors does not cancel in SymPy.
                others = list(sp.Mul.make_args(numer))
                others.remove(inner)
                coeff = sp.Mul(*others) / denom
                head = (
                    ""
                    if coeff == 1
                    else self.parenthesize(coeff, PRECEDENCE["Mul"], strict=True) + " "
                )
                return head + r"\left(", inner, r"\right)"
        if isinstance(term, GaussianExpectation):
            return (
                r"\left\langle",
                self._integrand(term),
                r"\right\rangle_{%s}" % self._covariance(term.entries),
            )
        return None

    def _pieces(self, sign: str, term, budget: float) -> list[tuple[str, int]]:
        """Breakable pieces (LaTeX, delimiters open after it) of one signed term.

        A term wider than the budget is opened up (``_opening``): the terms inside its
        delimiters become pieces, recursively.
        """
        text = self._term(sign, term)
        opening = self._opening(term)
        if visible_width(text) <= budget or opening is None:
            return [(text, 0)]
        head, inner, close = opening
        pieces = []
        for s, t in self._signed_terms(inner):
            pieces += [(tex, depth + 1) for tex, depth in self._pieces(s, t, budget)]
        tex, depth = pieces[0]
        pieces[0] = (f"{sign} {head} {tex}".strip(), depth)
        tex, depth = pieces[-1]
        pieces[-1] = (f"{tex} {close}", depth - 1)
        return pieces

    def _print_Equality(self, expr):
        lhs = self._print(expr.lhs)
        terms = self._signed_terms(expr.rhs, carried_first=True)
        width = self._settings["break_width"]
        if width is None:
            return f"{lhs} = " + " ".join(self._term(s, t) for s, t in terms)
        # Every row of the right-hand column starts after the widest left-hand side.
        first = width - (self._settings["lhs_width"] or visible_width(lhs))
        rest = first - visible_width(CONTINUATION)
        pieces = [p for s, t in terms for p in self._pieces(s, t, rest)]
        lines = pack(pieces, first, rest)
        rows = [f"{lhs} &= {lines[0]}"] + [f"&{CONTINUATION} {line}" for line in lines[1:]]
        return " \\nonumber \\\\\n".join(rows)


def latex_expr(expr, **settings) -> str:
    """LaTeX (math mode, no delimiters) of a SymPy object."""
    return FieldgenLatexPrinter(settings).doprint(expr)
