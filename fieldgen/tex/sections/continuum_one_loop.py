"""Section "continuum-one-loop": the depth -> infinity limit of the one loop at fixed tau.

Every equation is printed from ``derivations/continuum_one_loop.py``: the kernel flow F(K) of
the full block and the g -> 0 limits of the one-loop recursions (one input; for two inputs the
same equations hold for 3x3 pair-space matrices, ``limits(3)``).
"""

from __future__ import annotations

import sympy as sp

from ...derivations import continuum, model
from ...derivations import continuum_one_loop as col
from ..blocks import Prose, Ref, Section, tagged
from ..views import eq

TAU, TAU2, S, SIGMA = col.tau, col.tau_late, col.s, sp.Symbol("sigma", nonnegative=True)
K = sp.Function("K")
_F = {name: sp.Function(name) for name in ("J", "P", "Y", "U", "V", "R", "A", "B", "X", "H")}
DELTA, W = sp.Function("Delta"), sp.Function("W")


def _as_functions(limit: col.Limit) -> sp.Eq:
    """The one-input limit with its entries written as functions of the times they depend on."""
    f = _F
    args = {
        "P": (TAU, S),
        "Y": (TAU, TAU2),
        "U": (TAU, TAU2),
        "V": (TAU, TAU2),  # advanced along tau' at fixed tau
        "R": (SIGMA,),
        "Delta": (TAU,),
    }
    time = {"R": SIGMA, "V": TAU2}.get(limit.name, TAU)
    state = (DELTA if limit.name == "Delta" else f[limit.name])(*args[limit.name])
    values = {
        sp.Symbol("J_00", real=True): f["J"](time),
        sp.Symbol("A_00", real=True): f["A"](TAU, TAU2),
        sp.Symbol("B_00", real=True): f["B"](TAU, TAU2),
        sp.Symbol("Y_00", real=True): f["Y"](TAU, TAU2),
        sp.Symbol("HV_00", real=True): f["H"](TAU) * f["V"](TAU, TAU),
        sp.Symbol("W_00", real=True): W(TAU),
        limit.state[0, 0]: state,
    }
    return eq(sp.Derivative(state, time), limit.rhs[0, 0].xreplace(values))


def build() -> list:
    tau_def = eq(TAU, continuum.step_size() * model.layer)
    (flow,) = col.kernel_flow("erf", 1)
    lim = col.limits(1)
    f = _F
    covariance = eq(
        sp.Function("C")(TAU, TAU2),
        f["V"](TAU, TAU2) + f["U"](TAU, TAU2) + f["U"](TAU2, TAU) + f["X"](TAU, TAU2),
    )
    feedback = eq(
        W(TAU),
        sp.Integral(f["P"](TAU, SIGMA) * sp.Function("F")(SIGMA, TAU), (SIGMA, 0, TAU)),
    )
    return [
        Prose(
            "Depth-scaled networks keep ",
            tau_def,
            " fixed as the depth grows (",
            model.r,
            " proportional to the inverse square root of the depth). Every recursion of the "
            "one loop advances its state by ",
            continuum.step_size(),
            " times a quantity of order one per layer, so it is one Euler step of an ordinary "
            "differential equation in the depth-scaled time; the right-hand sides below are the "
            "limits of (update - state)/step derived in SymPy, with the O(1) part checked to "
            "vanish. The mean-field kernel of the full block flows as (shown for erf):",
        ),
        tagged("flow", [eq(sp.Derivative(K(TAU), TAU), flow.subs(model.K1, K(TAU)))], ("K",)),
        Prose(
            "The propagator P, the partial sums Y (four-point source A) and U (response source "
            "B), the covariance V of the conditional kernel along the second time, the backward "
            "propagator R of the self-feedback and the mean shift:",
        ),
        tagged(
            "limit",
            [_as_functions(lim[n]) for n in ("P", "Y", "U", "V", "R", "Delta")],
            ("P", "Y", "U", "V", "R", "Delta"),
        ),
        Prose(
            "with the self-feedback source",
        ),
        tagged("feedback", [feedback], ("W",)),
        Prose(
            "The discrete propagator is the step times P plus higher orders, so the four-point "
            "term, a double sum with two steps, tends to a double integral, the response term to "
            "a single integral and the sampling noise X is pointwise: all three are of order "
            "one; the covariance C of the empirical kernel at two depth-scaled times (the width "
            "times Cov, X evaluated at the earlier time's kernel) is",
        ),
        tagged("covariance", [covariance], ("C",)),
        Prose(
            "with the mean shift ",
            DELTA(TAU),
            " from ",
            Ref("continuum-one-loop:limit-Delta"),
            ". The discrete one loop is the Euler scheme of these equations and converges to "
            "them at rate one over the depth.",
        ),
    ]


SECTION = Section("continuum-one-loop", "The one loop at infinite depth", build)
