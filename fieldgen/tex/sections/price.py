"""Section "price": Price's theorem as the derivative of a Gaussian-expectation node."""

from __future__ import annotations

import sympy as sp

from ...derivations import model
from ...derivations.expectation import variables
from ..blocks import Prose, Ref, Section, tagged
from ..views import eq, phi, price_equations, unevaluated_expectation


def _integrated_price() -> sp.Eq:
    """<phi phi>(K12) = <phi>_{K11} <phi>_{K22} + int_0^{K12} d<phi phi>/dk dk, Price inside."""
    k11, k22, k12 = model.K
    k = sp.Symbol("k", real=True)
    x1, x2 = variables(2)

    def at(k12_value):
        return unevaluated_expectation(phi(x1) * phi(x2), (k11, k22, k12_value))

    boundary = unevaluated_expectation(phi(x1), (k11,)) * unevaluated_expectation(phi(x1), (k22,))
    return eq(at(k12), boundary + sp.Integral(sp.diff(at(k), k), (k, 0, k12)))


def build() -> list:
    K = model.K1
    return [
        Prose(
            "Gaussian expectations are SymPy objects, ",
            unevaluated_expectation(sp.Function("f")(*variables(2)), model.K),
            " over pre-activations with covariance ",
            sp.Symbol("K"),
            ". Their derivative "
            "with respect to a covariance entry is Price's theorem, implemented as the "
            "node's derivative, so differentiating an action or a recursion that contains "
            "expectations needs no special cases. The right-hand sides below are what "
            "\\texttt{sympy.diff} returns:",
        ),
        tagged("pair", price_equations(model.K), ("K11", "K22", "K12")),
        tagged("single", price_equations((K,)), ("K",)),
        Prose(
            "Integrating ",
            Ref("price:pair-K12"),
            " in the off-diagonal entry from zero, where "
            "the two pre-activations are independent, gives the identity from which the "
            "closed forms are derived; it is applied repeatedly, starting from a derivative "
            "order of the activation whose expectation SymPy can do exactly:",
        ),
        tagged("integrated", [_integrated_price()], ("K12",)),
    ]


SECTION = Section("price", "Price's theorem", build)
