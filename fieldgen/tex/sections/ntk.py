"""Section "ntk": the neural tangent kernel recursion, from one neuron's parameter gradients."""

from __future__ import annotations

import sympy as sp

from ...derivations import activations, meanfield, model, ntk
from ..blocks import Display, Heading, Prose, Section
from ..nodes import AtLayer, at_layer, layered
from ..views import LAYER, PREVIOUS, eq, field_symbols

SHOWN_NEURON = "erf"  # the activation in the displayed neuron derivatives (any would do)


def _neuron_rows(block: str) -> list:
    """F_a of one neuron and its derivatives as the derivation takes them."""
    F, _ = ntk.neuron(block, SHOWN_NEURON, 0)
    grads = ntk.gradients(block, SHOWN_NEURON)
    F = F.xreplace({ntk.neuron(block, SHOWN_NEURON, 0)[1]: ntk._z[0]})
    F_sym = sp.Symbol("F_1")
    rows = [(f"{block}-F", eq(F_sym, F))]
    for tag, var, d in (
        ("w", ntk._w, grads.d_weight[0]),
        ("beta", ntk._beta, grads.d_bias[0]),
        ("h", ntk._h[0], grads.d_identity[0]),
        ("u", ntk._u[0], grads.d_below[0]),
    ):
        rows.append((f"{block}-dF-{tag}", eq(sp.Derivative(F_sym, var), d)))
    return rows


def _maps(block: str, name: str) -> Display:
    """Theta^l through the field C^l (a symbol, defined in section "Mean-field recursion"), which
    keeps the reduced block's rows short; checked to equal the generated map at the saddle."""
    rows = []
    for n_inputs in (2, 1):
        lm = ntk.layer_map(block, name, n_inputs)
        kernel = meanfield.kernel_symbols(n_inputs)
        C = field_symbols(n_inputs)
        terms = ntk.layer_terms(block, name, n_inputs, kernel, C)
        saddle = dict(zip(C, ntk.saddle_field(block, name, n_inputs)))
        start = len(lm.kernel_map.state)
        for s, p, d, u in zip(lm.theta_state, terms.propagation, terms.direct, lm.update[start:]):
            shown = p * s + d
            if sp.simplify(shown.xreplace(saddle) - u) != 0:
                raise ValueError(f"{block} {name}: the displayed NTK map is not the generated one")
            shown = at_layer(at_layer(shown, kernel + (s,), PREVIOUS), C, LAYER)
            rows.append((f"{block}-{name}-{s.name}", eq(AtLayer(s, LAYER), shown)))
    return Display(*rows)


def build() -> list:
    l = model.layer
    w, beta, N = ntk._w, ntk._beta, model.width
    z, u, h = ntk._z[0], ntk._u[0], ntk._h[0]
    Theta = layered("Theta", l)
    blocks = [
        Prose(
            "In the NTK parameterisation every layer's weights and biases are ",
            eq(sp.Symbol("W"), sp.sqrt(model.sigma_w2) * sp.Symbol("w") / sp.sqrt(N)),
            " and ",
            eq(sp.Symbol("b"), sp.sqrt(model.sigma_b2) * beta),
            " with trainable ",
            sp.Symbol("w"),
            " and ",
            beta,
            " standard Gaussian (the network has the law of the "
            "model). The neural tangent kernel of an output neuron is ",
            Theta,
            ", the sum over all trainable parameters of the products of its gradients at two "
            "inputs. One neuron of layer ",
            l,
            " is ",
            sp.Symbol("F_1"),
            ", written through one weight ",
            w,
            " from one neuron ",
            u,
            " of the layer below and the field ",
            z,
            " it sums; ",
            h,
            " is its own pre-activation (the identity path). The derivation differentiates:",
        ),
        Heading("Full block"),
        Display(*_neuron_rows("full")),
        Heading("Reduced block"),
        Display(*_neuron_rows("reduced")),
        Prose(
            "Products of these at two inputs, summed over the ",
            N,
            " neurons and weights of the layer below, become at infinite width ",
            N,
            " times Gaussian expectations: ",
            u,
            " under the kernel ",
            layered("K", l - 1),
            ", ",
            z,
            " under the saddle-point field ",
            layered("C", l),
            ", independent of each other and of ",
            w,
            " (whose second moment is 1). The weight and bias gradients give the direct term, "
            "the identity path and the propagation through ",
            u,
            " multiply ",
            layered("Theta", l - 1),
            ". With a given kernel there are no input parameters and ",
            eq(layered("Theta", 0), 0),
            "; with an input layer its own weights and biases give",
        ),
        Display(
            *(
                (f"input-layer-{s.name}", eq(AtLayer(s, 0), v))
                for n in (2, 1)
                for s, v in zip(ntk.theta_symbols(n), ntk.input_ntk("layer", n))
            )
        ),
        Prose(
            "The recursions below, with the field ",
            layered("C", l),
            " of section "
            "``Mean-field recursion'' substituted, are what \\texttt{fieldgen regenerate} "
            "prints into \\texttt{generated/gram\\_*.py} after the kernel's; two inputs "
            "then one. The 1 in the factor of ",
            layered("Theta", l - 1),
            " is the identity path:",
        ),
    ]
    for block in model.BLOCKS:
        blocks.append(Heading(f"NTK recursion, {block} block"))
        for name in sorted(activations.ACTIVATIONS):
            blocks += [Prose(f"Activation {name}:"), _maps(block, name)]
    return blocks


SECTION = Section("ntk", "Neural tangent kernel", build)
