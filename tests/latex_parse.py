"""Reading equations back out of an exported document (test helper for test_latex.py).

The document's layout commands (alignment, line breaks, \\left. \\right. across breaks, labels) are
removed and each side is parsed by SymPy's LaTeX parser (ANTLR backend); the parsed symbols are
then mapped to the model's symbols through an explicit table, so an unexpected name fails.
"""

from __future__ import annotations

import re

import sympy as sp
from sympy.core.function import AppliedUndef

_LAYOUT = (r"\nonumber", r"\\", "&", r"\qquad", r"\left.", r"\right.", "{}")
# The parser silently drops what follows ^{*} (e^{u^{*}} reads as e): optimum values x^{*} are
# read back as x.
_DECORATIONS = ("^{*}",)


def equation_rows(document: str) -> dict[str, str]:
    """label -> LaTeX of the equation carrying that label, for every align in the document."""
    rows = {}
    for body in re.findall(r"\\begin\{align\}\n(.*?)\n\\end\{align\}", document, re.S):
        parts = re.split(r"\\label\{([^}]*)\}", body)
        for text, label in zip(parts[0::2], parts[1::2]):
            rows[label] = text
    return rows


def sides(row: str) -> tuple[str, str]:
    """(lhs, rhs) of an equation row without its layout commands."""
    for token in _LAYOUT:
        row = row.replace(token, " ")
    lhs, rhs = row.split("=", 1)
    return lhs.strip(), rhs.strip()


def parse(tex: str) -> sp.Expr:
    from sympy.parsing.latex import parse_latex

    for token in _DECORATIONS:
        tex = tex.replace(token, "")
    return parse_latex(tex, backend="antlr")


def matrix_entries(row: str) -> list[list[str]]:
    """The entries of the one matrix in an equation row (display-style markers removed)."""
    body = re.search(r"\\begin\{matrix\}(.*)\\end\{matrix\}", row, re.S).group(1)
    lines = re.split(r"\\\\(?:\[[^]]*\])?", body)
    return [
        [entry.replace(r"\displaystyle", " ").strip() for entry in line.split("&")]
        for line in lines
    ]


def to_model(expr: sp.Expr, names: dict, layered: dict) -> sp.Expr:
    """Replace parsed symbols by model expressions.

    ``names`` maps plain symbol names; ``layered`` maps (name, layer) for symbols printed with a
    layer superscript, which the parser reads as a power (K^{k} K^{m} as two powers of K, K^{0}
    as an unevaluated power). Any power in the layer l that is not listed is an error, as is any
    other symbol. The replacement walks the tree bottom-up, so a layered symbol is mapped before
    any power of it is formed.
    """
    layer = sp.Symbol("l")

    def is_layered(e):
        return e.is_Pow and (e.exp.has(layer) or (str(e.base), e.exp.doit()) in layered)

    placeholders = {}

    def unlayer(e):
        key = (str(e.base), e.exp.doit())  # the parser leaves l - 1 unevaluated
        if key not in layered:
            raise KeyError(f"unexpected layered symbol {e} in the exported LaTeX")
        placeholder = sp.Dummy()
        placeholders[placeholder] = layered[key]
        return placeholder

    # The parser reads a symbol before parentheses, "\pi \left(2 K + 1\right)^{2}", as a
    # function call (raised to the power); it is the symbol times the parenthesis (squared).
    def call(e):
        return isinstance(e, AppliedUndef) and e.func.__name__ in names

    def product(e, exponent=1):
        return sp.Symbol(e.func.__name__) * sp.Mul(*e.args) ** exponent

    expr = expr.replace(lambda e: e.is_Pow and call(e.base), lambda e: product(e.base, e.exp))
    expr = expr.replace(call, product)
    expr = expr.replace(is_layered, unlayer)
    unknown = {s.name for s in expr.free_symbols if not isinstance(s, sp.Dummy)} - set(names)
    if unknown:
        raise KeyError(f"unexpected symbols {sorted(unknown)} in the exported LaTeX")
    return expr.xreplace({sp.Symbol(n): v for n, v in names.items()}).xreplace(placeholders)
