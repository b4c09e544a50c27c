"""Section "closed-forms": relu, erf and linear expectations and their derivatives."""

from __future__ import annotations

from ...derivations import closed_forms, model
from ..blocks import Heading, Prose, Ref, Section, tagged
from ..views import (
    chain_equations,
    correlation_equation,
    pair_derivative_equations,
    single_equations,
)

_BASES = {
    "density": "its derivative of that order is a delta function, whose expectation is the "
    "Gaussian density at the origin",
    "gaussian": "the product of its derivatives is the exponential of a quadratic form, "
    "integrated exactly by completing the square",
    "polynomial": "the product is a polynomial, whose expectation Stein's lemma (Gaussian "
    "integration by parts) gives directly",
}


def _pair_tags() -> tuple:
    names = [k.name for k in model.K]
    second = [f"d{q}d{s}" for i, q in enumerate(names) for s in names[i:]]
    return ("P12",) + tuple(f"d{n}" for n in names) + tuple(second)


def build() -> list:
    blocks = [
        Prose(
            "For each activation with a recipe, the chain of expectations of products of "
            "derivatives is integrated in the off-diagonal entry by ",
            Ref("price:integrated-K12"),
            ", from the highest order down to the expectation "
            "itself. Forms whose argument reaches the boundary at full correlation are written "
            "through the correlation, which the generated code clamps to the interval from "
            "minus one to one:",
        ),
        tagged("rho", [correlation_equation()], ("def",)),
        Prose(
            "The one-input forms are the pair forms on the diagonal. The derivatives are those "
            "of the closed forms, simplified by SymPy for reading; the generated Jacobian and "
            "Hessian evaluate the same derivatives."
        ),
    ]
    for name in sorted(closed_forms.recipes()):
        recipe = closed_forms.recipes()[name]
        forms = closed_forms.pair_chain(name)
        blocks += [
            Heading(name),
            Prose(f"The chain starts at derivative order {recipe.order}: {_BASES[recipe.base]}."),
            tagged(f"{name}-chain", chain_equations(forms), range(len(forms.chain))),
            Prose("One input: the second moment, its first two derivatives and the mean."),
            tagged(f"{name}-single", single_equations(name), ("P", "dP", "ddP", "mean")),
            Prose("Two inputs: first and second derivatives of the off-diagonal entry."),
            tagged(f"{name}-pair", pair_derivative_equations(name), _pair_tags()),
        ]
    return blocks


SECTION = Section("closed-forms", "Gaussian closed forms", build)
