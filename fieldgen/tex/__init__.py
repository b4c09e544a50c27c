"""LaTeX export of the derivations: ``fieldgen latex`` and ``fieldgen.latex(obj)``.

printer    FieldgenLatexPrinter: SymPy's LaTeX printer with _print_<Node> for project types
linebreak  width estimate and line packing for long right-hand sides
nodes      display-only nodes (layer superscripts, expectations over the network)
views      derivation objects -> sympy.Eq rows
blocks     prose, displays, references, sections
sections/  the registry of document sections
document   sections -> one LaTeX document
pdf        compile with latexmk or pdflatex
"""

from __future__ import annotations

from typing import Any

import sympy as sp

from .printer import latex_expr


def latex(obj: Any, **settings: Any) -> str:
    """LaTeX of a SymPy object or of a derivation object, with the project's notation.

    SymPy's LaTeX printer extended with the project's node types (Gaussian expectations as angle
    brackets, layer superscripts, the one-loop notation); the same printer writes the document
    of ``fieldgen latex`` (docs/theory, "The printed twin"). Available as ``fieldgen.latex``;
    imports SymPy on first use.

    Parameters
    ----------
    obj : sympy.Basic, derivation object or fieldgen.Activation
        A SymPy expression (printed in math mode, no delimiters), or a derivation object
        (``LayerMap``, ``SaddlePoint``, ``PairClosedForms``, ``Increment``) printed as an
        ``align*`` display, one row per equation. An activation (``fieldgen.activation``)
        shows the Price chain of its closed forms, or its layer map with the Gaussian
        expectations that its generated code integrates.
    **settings
        Options of SymPy's LaTeX printer, and ``break_width`` (characters) for long right-hand
        sides.

    Returns
    -------
    str
        LaTeX source.

    Raises
    ------
    TypeError
        If `obj` is neither a SymPy object nor a known derivation object.

    Examples
    --------
    >>> import fieldgen
    >>> from fieldgen.derivations import meanfield
    >>> tex = fieldgen.latex(meanfield.layer_map("full", "erf", 2))
    >>> print(tex.splitlines()[0])
    \\begin{align*}
    >>> print(fieldgen.latex(meanfield.layer_map("full", "relu", 1).update[0]))
    K + r^{2} \\left(\\frac{K \\sigma_w^2}{2} + \\sigma_b^2\\right)
    """
    if isinstance(obj, sp.Basic):
        return latex_expr(obj, **settings)
    from ..activations import Activation

    if isinstance(obj, Activation):
        obj = activation_view(obj)
    from .document import BREAK_WIDTH
    from .views import equations

    settings.setdefault("break_width", BREAK_WIDTH)
    rows = [latex_expr(e, **settings) for e in equations(obj)]
    return "\\begin{align*}\n" + " \\\\\n".join(rows) + "\n\\end{align*}"


def activation_view(activation):
    """The derivation object that shows an activation: its closed forms, or its layer map."""
    from ..derivations import closed_forms, meanfield

    activation.register()
    forms = closed_forms.pair_chain(activation.name)
    return forms if forms is not None else meanfield.layer_map("full", activation.name, 2)
