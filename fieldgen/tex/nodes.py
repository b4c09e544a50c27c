"""Display-only SymPy nodes: things the document shows that the derivations keep implicit."""

from __future__ import annotations

import sympy as sp


class _OfSymbol:
    """Nodes whose first argument is the symbol they decorate."""

    @property
    def symbol(self) -> sp.Symbol:
        return self.args[0]


class AtLayer(_OfSymbol, sp.Function):
    """A state variable at a layer, e.g. AtLayer(K12, l - 1), printed K_{12}^{l-1}.

    The derivations write one layer map in the symbols of the previous layer; the document puts
    the layer index back as a superscript. Assumptions are those of the symbol.
    """

    nargs = 2
    _diff_wrt = True  # the document writes saddle-point equations as dS/dC^l

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


# ---- one-loop and response notation: pair-space matrices of one or two layers ---------------
# Symbols standing for matrices are created non-commutative (Symbol(name, commutative=False)),
# so products keep their order; the nodes below are commutative exactly when their symbol is.


class AtLayers(_OfSymbol, sp.Function):
    """A quantity of two layers, e.g. AtLayers(A, k, m) printed A^{km}: the two-time moments of
    the one-loop theory, indexed by the layers of their early and late factor."""

    nargs = 3

    @property
    def layers(self) -> tuple:
        return self.args[1:]


class Subscripted(_OfSymbol, sp.Function):
    """A quantity with layer subscripts, e.g. Subscripted(c, l, m) printed c_{l,m}."""


class Transposed(sp.Function):
    """The transpose of a pair-space matrix, printed x^{\\top} (T is the layer Jacobian)."""

    nargs = 1


class Contraction(sp.Function):
    """a : b, the contraction of all indices b has with the trailing ones of a (H : Cov is
    sum_qs H_pqs Cov_qs, c : F is sum_sq c_sq F_spq, as in the generated one-loop code)."""

    nargs = 2


class Covariance(sp.Function):
    """Cov(a, b) over the network's randomness."""

    nargs = 2


class OrderedProduct(_OfSymbol, sp.Function):
    """T^{high} T^{high-1} ... T^{low}: a product of one layer quantity over consecutive layers,
    latest first (matrices do not commute, so sympy.Product, which is unordered, cannot say it)."""

    nargs = 3


class DisplayStyle(sp.Function):
    """An entry of a matrix set in display style (printer: fractions keep their full size)."""

    nargs = 1
