"""Display-only SymPy nodes: things the document shows that the derivations keep implicit."""
from __future__ import annotations

import sympy as sp


class AtLayer(sp.Function):
    """A state variable at a layer, e.g. AtLayer(K12, l - 1), printed K_{12}^{l-1}.

    The derivations write one layer map in the symbols of the previous layer; the document puts
    the layer index back as a superscript. Assumptions are those of the symbol.
    """
    nargs = 2
    _diff_wrt = True  # the document writes saddle-point equations as dS/dC^l

    @property
    def symbol(self) -> sp.Symbol:
        return self.args[0]

    @property
    def layer(self) -> sp.Expr:
        return self.args[1]

    def _eval_is_real(self):
        return self.symbol.is_real

    def _eval_is_positive(self):
        return self.symbol.is_positive

    def _eval_is_nonnegative(self):
        return self.symbol.is_nonnegative


def at_layer(expr, symbols, layer):
    """expr with each of `symbols` replaced by its value at `layer`."""
    return sp.sympify(expr).xreplace({s: AtLayer(s, layer) for s in symbols})


class Mean(sp.Function):
    """E[expr]: an expectation over the network's randomness, printed \\mathbb{E}[...]."""
    nargs = 1
    is_commutative = True


def layered(name: str, layer) -> AtLayer:
    """A display symbol at a layer, e.g. layered("K", l - 1) for K^{l-1} in prose."""
    return AtLayer(sp.Symbol(name), layer)
