"""Section "quadrature": activations without closed forms (tanh) stay expectation nodes."""

from __future__ import annotations

from ...derivations import activations, closed_forms
from ..blocks import Heading, Prose, Ref, Section, tagged
from ..views import pair_derivative_equations, single_equations
from .closed_forms import _pair_tags


def build() -> list:
    blocks = [
        Prose(
            "An activation without a closed-form recipe keeps its expectations as "
            "Gaussian-expectation nodes. Their derivatives are again nodes, by Price's theorem ",
            Ref("price:pair-K12"),
            ", and the code generator lowers every node to a graded "
            "composite Gauss-Legendre rule: panels start at the activation's transition with "
            "its width and grow geometrically, which stays accurate where plain Gauss-Hermite "
            "misses the transition at large variance.",
        ),
    ]
    for name in sorted(set(activations.ACTIVATIONS) - set(closed_forms.recipes())):
        blocks += [
            Heading(name),
            Prose("One input: derivatives of the second moment, and the mean."),
            tagged(f"{name}-single", single_equations(name)[1:], ("dP", "ddP", "mean")),
            Prose("Two inputs: the Jacobian and Hessian rows of the off-diagonal entry."),
            tagged(f"{name}-pair", pair_derivative_equations(name), _pair_tags()),
        ]
    return blocks


SECTION = Section("quadrature", "Activations by quadrature", build)
