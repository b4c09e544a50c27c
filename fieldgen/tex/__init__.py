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

import sympy as sp

from .printer import latex_expr


def latex(obj, **settings) -> str:
    """LaTeX of a SymPy object (math mode, no delimiters), or of a derivation object
    (LayerMap, SaddlePoint, PairClosedForms, Increment) as an ``align*`` display. An activation
    (``fieldgen.activation``) shows phi and the Price chain of its closed forms, or the Gaussian
    expectation that its generated code integrates."""
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
