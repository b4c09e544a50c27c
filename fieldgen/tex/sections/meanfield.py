"""Section "meanfield": the layer maps the code generator turns into kernel recursions."""

from __future__ import annotations

import sympy as sp

from ...derivations import activations, meanfield, model
from ...derivations.expectation import Correlation
from ..blocks import Display, Heading, Prose, Ref, Section
from ..nodes import AtLayer, Mean, layered
from ..views import LAYER, PREVIOUS, field_equations, input_kernel_equations, layer_map_equations


def _maps(block: str, name: str) -> Display:
    """The two-input and one-input layer maps of a block and activation, tagged by state."""
    rows = []
    for n_inputs in (2, 1):
        lm = meanfield.layer_map(block, name, n_inputs)
        rows += [(f"{block}-{name}-{s.name}", e) for s, e in zip(lm.state, layer_map_equations(lm))]
    return Display(*rows)


def _reduced_fields() -> list:
    """C^l of the reduced block: the same for every activation (its source is h, not phi(h))."""
    names = sorted(activations.ACTIVATIONS)
    out = []
    for n_inputs in (2, 1):
        shown = {tuple(field_equations(meanfield.layer_map("reduced", n, n_inputs))) for n in names}
        if len(shown) != 1:
            raise ValueError("the reduced block's auxiliary field depends on the activation")
        out += list(shown.pop())
    return out


def _second_moment() -> Mean:
    """E[(h_a^{l-1} + Delta_a^l)(h_b^{l-1} + Delta_b^l)]."""
    h = [layered(f"h_{a}", PREVIOUS) for a in "ab"]
    step = [layered(f"Delta_{a}", LAYER) for a in "ab"]
    return Mean((h[0] + step[0]) * (h[1] + step[1]))


def build() -> list:
    l, r = model.layer, model.r
    K_prev = AtLayer(model.K1, l - 1)
    rho_prev = Correlation(*(AtLayer(k, PREVIOUS) for k in model.K))
    blocks = [
        Prose(
            "Given the auxiliary field at the saddle, the step of a neuron is independent of "
            "its past with the moments of section ``Action and saddle point'', so the second "
            "moments ",
            layered("K_ab", l),
            " and means ",
            layered("m_a", l),
            " follow from expanding ",
            _second_moment(),
            ". These layer maps, with the expectations replaced by the closed forms of section "
            "``Gaussian closed forms'' (or left as quadrature nodes for tanh), are what "
            "\\texttt{fieldgen regenerate} prints into the kernel recursions of "
            "\\texttt{generated/meanfield\\_*.py}. Two inputs come first, then one input "
            "(state ",
            K_prev,
            "); ",
            rho_prev,
            " is the correlation of ",
            layered("K", l - 1),
            ".",
        ),
        Heading("Input kernel"),
        Prose(
            "In input mode ``kernel'' the kernel ",
            layered("K", 0),
            " is given. "
            "In input mode ``layer'' the input layer is one step of unit scale from zero, "
            "with the saddle point of the reduced block applied to the Gram matrix ",
            sp.Symbol("G"),
            " of the inputs:",
        ),
        Display(
            *(
                (f"input-layer-{e.lhs.symbol.name}", e)
                for n in (2, 1)
                for e in input_kernel_equations("layer", n)
            )
        ),
        Heading("Full block"),
        Prose(
            "The step covariance is ",
            r**2,
            " times the auxiliary field, so the kernel grows by ",
            r**2 * layered("C", l),
            " and the means stay zero.",
        ),
    ]
    for name in sorted(activations.ACTIVATIONS):
        blocks += [Prose(f"Activation {name}:"), _maps("full", name)]
    blocks += [
        Heading("Reduced block"),
        Prose(
            "The auxiliary field is an affine function of the previous kernel; the layer maps "
            "below are written through it:"
        ),
        Display(*((f"reduced-field-{e.lhs.symbol.name}", e) for e in _reduced_fields())),
        Prose(
            "Activations that are not odd give the step a mean (see ",
            Ref("action:step-reduced-E1"),
            "): the pre-activations then acquire a common mean ",
            layered("m_a", l),
            ", which enters the second moments and is part of the state.",
        ),
    ]
    for name in sorted(activations.ACTIVATIONS):
        blocks += [Prose(f"Activation {name}:"), _maps("reduced", name)]
    return blocks


SECTION = Section("meanfield", "Mean-field recursion", build)
