"""Section "model": the network, its parameters, the activations and the empirical kernel."""

from __future__ import annotations

import sympy as sp

from ...derivations import activations, model
from ..blocks import Display, Prose, Ref, Section
from ..nodes import AtLayer, layered
from ..views import LAYER, PREVIOUS, eq

# Vectors and matrices of one layer: non-commutative, so W phi(h) keeps its order.
h, W, b, x = (sp.Symbol(name, commutative=False) for name in "hWbx")
phi = sp.Function("phi", commutative=False)


def build() -> list:
    r, sw2, sb2, N, l = model.r, model.sigma_w2, model.sigma_b2, model.width, model.layer
    here, before = AtLayer(h, LAYER), AtLayer(h, PREVIOUS)
    Wl, bl = AtLayer(W, LAYER), AtLayer(b, LAYER)
    i = sp.Symbol("i", integer=True, positive=True)
    a, c = sp.symbols("a b", integer=True, positive=True)
    hh = sp.IndexedBase("h")
    khat = layered("Khat_ab", LAYER)
    u = sp.Symbol("h", real=True)
    return [
        Prose(
            "A residual network of width ",
            N,
            " and depth ",
            sp.Symbol("L"),
            " maps the pre-activations of layer ",
            l - 1,
            " to those of layer ",
            l,
            " by one of two blocks with residual scale ",
            r,
            ":",
        ),
        Display(
            ("full", eq(here, before + r * (Wl * phi(before) + bl))),
            ("reduced", eq(here, before + r * phi(Wl * before + bl))),
        ),
        Prose(
            "The ``full'' (pre-activation) block ",
            Ref("model:full"),
            " is the default; the ``reduced'' block ",
            Ref("model:reduced"),
            " applies the activation after the "
            "weights. All weights and biases are independent and Gaussian with mean zero, ",
            layered("W_ij", l),
            " with variance ",
            sw2 / N,
            " and ",
            layered("b_i", l),
            " with variance ",
            sb2,
            ". The input is either a given kernel ",
            AtLayer(model.K1, 0),
            " (input mode ``kernel'') or an input layer on inputs ",
            x,
            " with Gram matrix ",
            model.G1,
            " (input mode ``layer''):",
        ),
        Display(("input-layer", eq(AtLayer(h, 0), AtLayer(W, 0) * x + AtLayer(b, 0)))),
        Prose(
            "The activations with closed-form expectations are relu, erf and linear; tanh "
            "(and any other) uses quadrature:"
        ),
        Display(
            *(
                (f"phi-{name}", eq(sp.Function(f"phi_{name}")(u), act(u)))
                for name, act in sorted(activations.ACTIVATIONS.items())
            )
        ),
        Prose(
            "The observable is the empirical kernel of two inputs ",
            a,
            " and ",
            c,
            ", an average over the ",
            N,
            " neurons ",
            i,
            ":",
        ),
        Display(
            (
                "empirical-kernel",
                eq(khat, sp.Sum(AtLayer(hh[i, a], l) * AtLayer(hh[i, c], l), (i, 1, N)) / N),
            )
        ),
        Prose(
            "Its mean-field limit is the kernel ",
            layered("K_ab", l),
            ". Two inputs live in pair space: the entries ",
            sp.Tuple(*model.K),
            " of a symmetric two-by-two matrix; one input has the single entry ",
            model.K1,
            ".",
        ),
    ]


SECTION = Section("model", "The model", build)
