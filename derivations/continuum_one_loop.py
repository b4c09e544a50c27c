"""The depth -> infinity limit of the one loop at fixed tau = r^2 sigma_w^2 l (full block).

With g = r^2 sigma_w^2 (``continuum.step_size``) every recursion of the discrete one loop
(``one_loop``, accumulated in ``codegen/templates/oneloop.tmpl``) advances a state by g times
something of order one per layer:

    K^{l+1}         = K^l + g F(K^l),                    F = (layer map - K) / g
    Y^{l+1}[m']     = T^l Y^l[m'] + g A^{l m'},          Y^l[m'] = sum_{m<l} c_{l,m} A^{m m'}
    U^{l+1}[l']     = T^l U^l[l'] + g B^{l l'},          U^l[l'] = sum_{m<l} c_{l,m} B^{m l'}
    V^{l,l'+1}      = V^{l,l'} T^{l' T} + g Y^l[l'],     V^{l,l'} = sum c A c^T
    R_k             = R_{k+1} T^{k+1},  R_{l-1} = 1,     c_{l,k} = g R_k       (self-feedback)
    Delta^{l+1}     = Delta^l + g (J^l Delta^l + (1/2) H^l : V^{l,l} + sum_{k<l} c_{l,k} : F^{lk}),

T = 1 + g J. Each is exactly one Euler step of size g (checked), so as g -> 0 with tau = g l fixed every state
has a finite limit and obeys the ODE whose right-hand side is the O(g) coefficient of
(update - state)/g (``limits`` derives them and checks that the O(1) coefficient vanishes):

    dK/dtau = F(K),  dP(tau, s)/dtau = J P,  dY/dtau = J Y + A(tau, s'),  dU/dtau = J U + B(tau, t'),
    dV(tau, tau')/dtau' = V J(tau')^T + Y(tau; tau'),  dR(sigma)/dsigma = -R J(sigma),
    dDelta/dtau = J Delta + (1/2) H : V(tau, tau) + W(tau),  W(tau) = int_0^tau P(tau, s) : F(s, tau) ds.

Scaling: c_{l,m} = g P(tau_l, tau_m) + O(g^2), so the A term is g^2 sum_{m, m'} ~ a double
integral of order one, the B term g sum_m ~ a single integral of order one and X pointwise of
order one: all three survive, and

    N Cov(Khat(tau), Khat(tau')) = V(tau, tau') + U(tau; tau') + U(tau'; tau)^T + X(K(min(tau, tau'))),
    N (E Khat - K)(tau)          = Delta(tau),

with the same coefficient functions (J, H, A, B, X, F of ``one_loop``) as the discrete one loop.
The discrete one loop is the Euler scheme of these ODEs, so it converges to them at rate g = tau/L.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import sympy as sp

from . import continuum, meanfield, model

tau = continuum.tau
tau_late = sp.Symbol("tau_2", nonnegative=True)
s = sp.Symbol("s", nonnegative=True)


@lru_cache(maxsize=None)
def kernel_flow(name: str, n_inputs: int) -> tuple:
    """F(K) of dK/dtau = F(K): the full block's layer map minus K, over g (no r left)."""
    lm = meanfield.layer_map("full", name, n_inputs)
    g = continuum.step_size()
    rhs = tuple(sp.simplify((u - k) / g) for k, u in zip(lm.state, lm.update))
    if any(f.has(model.r) for f in rhs):
        raise ValueError("the full block's layer map is not an Euler step in tau")
    return rhs


@dataclass(frozen=True)
class Limit:
    """One recursion of the discrete one loop and its g -> 0 limit.

    name: the state; update: the discrete update (matrices of symbols); rhs: the limit of
    (update - state)/g, the right-hand side of its ODE in tau (or sigma for R)."""

    name: str
    state: sp.Matrix
    update: sp.Matrix
    rhs: sp.Matrix
    direction: int  # +1: the recursion advances tau; -1: it runs backwards (R along sigma)


def _matrix(stem: str, d: int) -> sp.Matrix:
    return sp.Matrix(d, d, lambda i, j: sp.Symbol(f"{stem}_{i}{j}", real=True))


@lru_cache(maxsize=None)
def limits(d: int = 1) -> dict:
    """The recursions above for d x d pair-space matrices (d = 1: one input, d = 3: two)."""
    g = sp.Symbol("g", positive=True)
    J, A, B, Y, U, V, R, P = (_matrix(n, d) for n in "JABYUVRP")
    H, Feed = _matrix("HV", d)[:, :1], _matrix("W", d)[:, :1]  # H : V and sum c : F / g, (d, 1)
    Delta = _matrix("Delta", d)[:, :1]
    T = sp.eye(d) + g * J
    recursions = {
        "P": (P, T * P, 1),
        "Y": (Y, T * Y + g * A, 1),
        "U": (U, T * U + g * B, 1),
        "V": (V, V * T.T + g * Y, 1),
        "R": (R, R * T, -1),  # R_k = R_{k+1} T^{k+1}: the state at k from the one at k + 1
        "Delta": (Delta, Delta + g * (J * Delta + H / 2 + Feed), 1),
    }
    out = {}
    for name, (state, update, direction) in recursions.items():
        # Forward: (x_{next} - x)/g; backward: (x - x_{previous})/g with x_previous = update.
        difference = (update - state) if direction > 0 else (state - update)
        difference = difference.applyfunc(sp.expand)
        if difference.subs(g, 0) != sp.zeros(*state.shape):
            raise ValueError(f"{name}: the update is not of order g; no limit at fixed tau")
        rhs = (difference / g).applyfunc(lambda e: sp.expand(sp.limit(e, g, 0)))
        if rhs == sp.zeros(*state.shape):
            raise ValueError(f"{name}: no O(g) term")
        # Exactly one Euler step (no O(g^2) remainder): the discrete one loop is the Euler
        # scheme of the limit, so its error has an expansion in powers of g = tau/L.
        if (difference - g * rhs).applyfunc(sp.expand) != sp.zeros(*state.shape):
            raise ValueError(f"{name}: the update is not an Euler step of its limit")
        out[name] = Limit(name, state, update, rhs, direction)
    return out


@lru_cache(maxsize=None)
def propagator_scaling() -> sp.Expr:
    """c_{l,m}/g -> exp(J (tau - s)) for constant J (one input): the discrete propagator's limit.

    Checks the claim c_{l,m} = g P(tau_l, tau_m) + O(g^2) on the case where both are explicit:
    (1 + g J)^(l-m-1) with l = tau/g, m = s/g."""
    g, J = sp.symbols("g J", positive=True)
    discrete = (1 + g * J) ** ((tau - s) / g - 1)
    limit = sp.limit(discrete, g, 0)
    if sp.simplify(limit - sp.exp(J * (tau - s))) != 0:
        raise ValueError("the discrete propagator does not tend to exp(J (tau - s))")
    return limit
