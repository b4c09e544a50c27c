"""The activation functions phi, as SymPy expressions of one variable.

Adding an activation here (any expression SymPy can differentiate and print with ``math``) and
running ``fieldgen regenerate`` gives it every generated evaluator through quadrature; an entry in
``closed_forms.RECIPES`` upgrades it to closed forms.
"""
from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from .distributions import derivative
from .expectation import variables

_x = variables(1)[0]


@dataclass(frozen=True)
class Activation:
    name: str
    phi: sp.Lambda
    description: str

    def __call__(self, arg):
        return self.phi(arg)

    def derivative(self, order: int = 1) -> sp.Lambda:
        """phi^(order) in the sense of distributions (relu' = step, relu'' = delta)."""
        # Apply phi rather than read phi.expr: SymPy turns Lambda(x, x) into IdentityFunction.
        return sp.Lambda(_x, derivative(self.phi(_x), _x, order))


ACTIVATIONS: dict[str, Activation] = {
    a.name: a
    for a in (
        Activation("erf", sp.Lambda(_x, sp.erf(_x)), "error function erf(x)"),
        Activation("linear", sp.Lambda(_x, _x), "identity phi(x) = x"),
        Activation("relu", sp.Lambda(_x, sp.Max(0, _x)), "rectifier max(0, x)"),
        Activation("tanh", sp.Lambda(_x, sp.tanh(_x)), "hyperbolic tangent"),
    )
}


def get(name: str) -> Activation:
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(
            f"activation must be one of {', '.join(sorted(ACTIVATIONS))}; got {name!r}") from None
