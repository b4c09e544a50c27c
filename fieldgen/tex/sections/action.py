"""Section "action": the action of a layer, its saddle point, several layers, the increment."""

from __future__ import annotations

import sympy as sp

from ...derivations import action, model
from ...derivations.expectation import expect, variables
from ..blocks import Display, Heading, Prose, Ref, Section, tagged
from ..nodes import AtLayer, layered
from ..views import (
    action_equation,
    eq,
    increment_equations,
    phi,
    saddle_point_equations,
    saddle_solution_equations,
)


def _multilayer() -> list:
    """The three-layer action of one input and its saddle-point equations, layers as superscripts.

    dS/dC~ does not depend on C~ (the action is linear in it), so it is shown as derived.
    """
    result = action.conjugate_vanishes_on_multilayer_action(3)
    S = result["action"]
    C, Ct = sp.Symbol("C", positive=True), sp.Symbol("Ct", real=True)
    fields = [sp.Symbol(f"C{k}", positive=True) for k in (1, 2, 3)]
    conjugates = [sp.Symbol(f"Ct{k}", real=True) for k in (1, 2, 3)]
    shown = {result["K0"]: layered("K", 0)}
    shown.update({c: AtLayer(C, k) for k, c in enumerate(fields, 1)})
    shown.update({c: AtLayer(Ct, k) for k, c in enumerate(conjugates, 1)})
    action_symbol = sp.Symbol("S")

    def derivative(v):
        return eq(sp.Derivative(action_symbol, shown[v]), sp.diff(S, v).xreplace(shown))

    return [
        Display(("multilayer-S", eq(action_symbol, S.xreplace(shown)))),
        Prose("Derivatives with respect to the auxiliary fields, and their solution:"),
        Display(
            *((f"multilayer-d{c.name}", derivative(c)) for c in fields),
            *((f"multilayer-{c.name}", eq(shown[c], result["conjugates"][c])) for c in conjugates),
        ),
        Prose(
            "Derivatives with respect to the conjugate fields: set to zero, each gives the "
            "auxiliary field of a layer from the fields of the layers below it."
        ),
        Display(*((f"multilayer-d{c.name}", derivative(c)) for c in conjugates)),
    ]


def _reduced_increment() -> action.Increment:
    """The reduced block's step r phi(a), a ~ N(0, C), for a generic activation."""
    x1, x2 = variables(2)
    C = model.C
    second = (
        expect(phi(x1) ** 2, (C[0],)),
        expect(phi(x1) ** 2, (C[1],)),
        expect(phi(x1) * phi(x2), C),
    )
    return action.reduced_block_increment(phi, C, 2, second, lambda v: expect(phi(x1), (v,)))


def build() -> list:
    l, N = model.layer, model.width
    full = action.saddle_point(2, action.phi_source(phi, model.K, 2))
    reduced = action.saddle_point(2, action.second_moment_source(model.K, 2))
    C12, Ct12 = AtLayer(model.C[2], l), AtLayer(model.Ct[2], l)
    steps = ("E1", "E2", "E11", "E22", "E12")
    return [
        Prose(
            "Inserting the layer equations as delta functions with response fields, averaging "
            "over weights and biases and introducing the auxiliary field ",
            C12,
            " (the covariance of a neuron's step before scaling by ",
            model.r,
            ") with its conjugate ",
            Ct12,
            " decouples the ",
            N,
            " neurons: the partition function is an integral of ",
            sp.exp(N * sp.Symbol("S")),
            ". With ",
            sp.Symbol("g"),
            " the per-neuron quantity whose products define ",
            layered("C", l),
            " (",
            phi(layered("h", l - 1)),
            " for the full block), the cumulant expansion of the single-neuron generating "
            "function to first order in ",
            layered("Ct", l),
            " gives the action of one layer, here for two inputs and a generic activation ",
            phi(sp.Symbol("h")),
            "; expectations are over ",
            layered("h", l - 1),
            " with covariance ",
            layered("K", l - 1),
            ":",
        ),
        Display(("full", action_equation(full, 2))),
        Prose("The saddle-point equations are its derivatives:"),
        tagged(
            "full-eq",
            saddle_point_equations(full, 2),
            ("dC11", "dC22", "dC12", "dCt11", "dCt22", "dCt12"),
        ),
        Prose(
            "Their unique solution: the conjugate fields vanish and the auxiliary field is the "
            "activations' second moment, which drives the mean-field recursion (section ",
            "``Mean-field recursion''):",
        ),
        tagged(
            "full-sol",
            saddle_solution_equations(full, 2),
            ("Ct11", "Ct22", "Ct12", "C11", "C22", "C12"),
        ),
        Heading("Reduced block and input layer"),
        Prose(
            "There the weights act on ",
            layered("h", l - 1),
            " itself, so its "
            "second moments replace the Gaussian expectations; the same action gives",
        ),
        tagged("reduced-sol", saddle_solution_equations(reduced, 2)[3:], ("C11", "C22", "C12")),
        Heading("Several layers"),
        Prose(
            "The expectation at layer ",
            l,
            " depends on every earlier auxiliary field through "
            "the variance of the random walk (the memory of the residual network), so the "
            "derivative of the action with respect to an auxiliary field collects conjugate "
            "fields of later layers. On the three-layer action of one input:",
        ),
        *_multilayer(),
        Heading("The single-neuron step"),
        Prose(
            "Given ",
            C12,
            ", the step ",
            layered("Delta", l),
            " of a neuron "
            "is independent of its past. In the full block its cumulant generating function "
            "is the response-field term of the action, quadratic with covariance ",
            model.r**2 * layered("C", l),
            ":",
        ),
        tagged("step-full", increment_equations(action.full_block_increment(model.C, 2), 2), steps),
        Prose(
            "In the reduced block the step is ",
            model.r,
            " times the activation of a Gaussian with covariance ",
            layered("C", l),
            ", so it has a mean unless the activation is odd (compare ",
            Ref("action:step-full-E1"),
            "):",
        ),
        tagged("step-reduced", increment_equations(_reduced_increment(), 2), steps),
    ]


SECTION = Section("action", "Action and saddle point", build)
