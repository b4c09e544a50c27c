"""Continuum limit of the mean-field recursion, the optimal residual scale and its corrections.

With eps = r^2 sigma_w^2 the equal-norm layer map (``response.equal_norm_layer_map``) is exactly
one Euler step x <- x + eps F(x) of the flow dx/dtau = F(x), tau = eps l, whenever the state has no
mean drift (full block; reduced block with an odd activation). The sensitivity
S = chi_{12,12} K^0/K^L then depends on (r, L) only through tau = r^2 sigma_w^2 L up to O(eps),
and maximising over r at fixed L is maximising over tau:

    d ln S/dtau = a - F_K/K = 0,      a = dF_12/dK12   (``Flow.rate``),

the local edge-of-chaos condition at the output layer, so r* = sqrt(tau*/(sigma_w^2 (L - L0))).

L0 is derived, not fitted: Euler iterates follow the modified flow y' = F - (eps/2) DF F + O(eps^2)
(backward error analysis, ``modified_flow``); summing ln(1 + eps a) along them with the
Euler-Maclaurin formula gives ln S = Phi(tau) + eps Psi(tau) + O(eps^2) at fixed tau, and the
maximum over eps at fixed L is at eps (L - L0) = tau* + O(1/L) with L0 from ``l0_formula``.
``corrected_flow`` is the ODE system whose solution carries Phi, Psi and their derivatives.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import sympy as sp

from . import model, response

tau = sp.Symbol("tau", nonnegative=True)
eps = sp.Symbol("epsilon", positive=True)


@dataclass(frozen=True)
class Flow:
    """dx/dtau = rhs(x) for x = (K, K12): two inputs of equal norm K and cross kernel K12."""

    block: str
    activation: str
    state: tuple
    rhs: tuple
    chi_rate: sp.Expr  # a = d ln chi_{12,12}/dtau = dF_12/dK12
    rate: sp.Expr  # d ln S/dtau


def step_size() -> sp.Expr:
    return model.r**2 * model.sigma_w2


def log_sensitivity_rate(chi_rate: sp.Expr, kernel_rhs: sp.Expr, kernel: sp.Symbol) -> sp.Expr:
    """d ln S/dtau for S(tau) = chi(tau) K^0/K(tau), chi' = a chi, K' = F_K."""
    chi, K = sp.Function("chi"), sp.Function("K")
    log_s = sp.log(chi(tau)) + sp.log(sp.Symbol("K0", positive=True)) - sp.log(K(tau))
    derivative = sp.diff(log_s, tau)
    derivative = derivative.subs(
        {sp.Derivative(chi(tau), tau): chi_rate * chi(tau), sp.Derivative(K(tau), tau): kernel_rhs}
    )
    return sp.simplify(derivative.subs(K(tau), kernel))


@lru_cache(maxsize=None)
def flow(block: str, name: str) -> Flow | None:
    """The continuum flow, or None when the layer map is not an Euler step in tau (mean drift:
    reduced block with a non-odd activation, whose means grow like r l, not r^2 l)."""
    lm = response.equal_norm_layer_map(block, name)
    if len(lm.state) != lm.n_kernel:
        return None
    rhs = tuple((u - s) / step_size() for s, u in zip(lm.state, lm.update))
    if any(f.has(model.r) for f in rhs):
        return None
    K, K12 = lm.state
    a = sp.diff(rhs[1], K12)
    return Flow(block, name, lm.state, rhs, a, log_sensitivity_rate(a, rhs[0], K))


def optimum_condition(fl: Flow) -> sp.Eq:
    """d ln S/dtau = 0 at the output layer, written as the local edge-of-chaos condition (times
    sigma_w^2; docs/theory, "Continuum limit and the optimal residual scale")."""
    K = fl.state[0]
    return sp.Eq(model.sigma_w2 * fl.chi_rate, model.sigma_w2 * fl.rhs[0] / K)


# ---- first-order correction in eps ---------------------------------------------------------


def along(expr: sp.Expr, state, rhs) -> sp.Expr:
    """d expr/dtau along the flow d state/dtau = rhs."""
    return sum((sp.diff(expr, s) * f for s, f in zip(state, rhs)), sp.S.Zero)


@lru_cache(maxsize=None)
def modified_flow_correction(dimension: int = 2) -> tuple:
    """G in y' = F + eps G, such that the flow over time eps matches one Euler step to O(eps^2).

    Derived for generic F: y(t + eps) = y + eps y' + eps^2/2 y'' + O(eps^3), y'' = DF F + O(eps).
    Returned as expressions in the symbols F_i and dF_i/dx_j (``jacobian_symbols``).
    """
    F = sp.symbols(f"F1:{dimension + 1}")
    DF = sp.Matrix(dimension, dimension, lambda i, j: sp.Symbol(f"DF{i + 1}{j + 1}"))
    G = sp.symbols(f"G1:{dimension + 1}")
    Fv, Gv = sp.Matrix(F), sp.Matrix(G)
    flow_step = eps * (Fv + eps * Gv) + eps**2 / 2 * (DF * Fv)
    euler_step = eps * Fv
    eqs = [sp.expand(a - b).coeff(eps, 2) for a, b in zip(flow_step, euler_step)]
    (solution,) = sp.solve(eqs, G, dict=True)
    return tuple(solution[g] for g in G), F, DF


@lru_cache(maxsize=None)
def euler_maclaurin_endpoint() -> sp.Expr:
    """c in sum_{l<L} eps f(l eps) = int_0^tau f + c eps (f(tau) - f(0)) + O(eps^2), tau = eps L.

    The coefficient is universal, so it is read off f = exp(k t), where the sum is geometric.
    """
    k = sp.Symbol("k", positive=True)
    total = eps * (sp.exp(k * tau) - 1) / (sp.exp(k * eps) - 1)  # geometric sum
    integral = (sp.exp(k * tau) - 1) / k
    difference = sp.series(total - integral, eps, 0, 2).removeO()
    return sp.simplify(difference.coeff(eps, 1) / (sp.exp(k * tau) - 1))


@dataclass(frozen=True)
class CorrectedFlow:
    """The flow, its first-order perturbation and the quadratures that give Phi and Psi.

    state = (K, K12, yK, y12, A, B): y = O(eps) correction of the Euler iterates, A = int a,
    B = int [grad a . y - a^2/2] + c (a(tau) - a(0)) (Euler-Maclaurin, c = -1/2).
    ln S = Phi + eps Psi + O(eps^2), Phi = A - ln(K/K0), Psi = B - yK/K.
    ``terms``: rate = Phi', curvature = Phi'', log_sensitivity = A - ln K, l0 (see l0_formula).
    """

    flow: Flow
    state: tuple
    rhs: tuple
    terms: dict


@lru_cache(maxsize=None)
def corrected_flow(block: str, name: str) -> CorrectedFlow | None:
    fl = flow(block, name)
    if fl is None:
        return None
    x, F = fl.state, fl.rhs
    yK, y12, A, B = sp.symbols("yK y12 A B", real=True)
    y = (yK, y12)
    DF = sp.Matrix(F).jacobian(x)
    G, F_sym, DF_sym = modified_flow_correction(2)
    values = dict(zip(F_sym, F))
    values.update({DF_sym[i, j]: DF[i, j] for i in range(2) for j in range(2)})
    correction = [g.xreplace(values) for g in G]
    # y' = DF y + G: the O(eps) part of the modified flow, linearised about the eps = 0 solution.
    y_rhs = [sum(DF[i, j] * y[j] for j in range(2)) + correction[i] for i in range(2)]
    a = fl.chi_rate
    grad_a_y = sum(sp.diff(a, s) * v for s, v in zip(x, y))
    c = euler_maclaurin_endpoint()
    # ln(1 + eps a) = eps a - eps^2 a^2/2; the endpoint term c (a(tau) - a(0)) is carried in B.
    B_rhs = grad_a_y - a**2 / 2 + c * along(a, x, F)
    state = x + (yK, y12, A, B)
    rhs = tuple(F) + tuple(y_rhs) + (a, B_rhs)
    K = x[0]
    phi = A - sp.log(K)
    psi = B - yK / K
    rate = along(phi, state, rhs)
    curvature = along(rate, state, rhs)
    shift = psi + tau * along(psi, state, rhs)
    terms = {
        "rate": rate,
        "curvature": curvature,
        "log_sensitivity": phi,
        "l0": l0_formula()(tau, curvature, shift),
    }
    return CorrectedFlow(fl, state, rhs, terms)


@lru_cache(maxsize=None)
def l0_formula() -> sp.Lambda:
    """L0(tau*, Phi''(tau*), Psi + tau Psi' at tau*) from maximising J = Phi(eps L) + eps Psi(eps L)
    over eps at fixed L.

    Phi and Psi are Taylor polynomials about tau* (enough orders for O(1) in 1/L); the ansatz
    eps = tau*/(L - L0) makes dJ/deps = L Phi'(tau*) + [tau* Phi'' L0 + Psi + tau* Psi'] + O(1/L),
    so Phi'(tau*) = 0 and the bracket fixes L0.
    """
    t, L0, delta, e, X = sp.symbols("tau_star L0 delta e X", positive=True)  # delta = 1/L
    p = sp.symbols("phi0:4")
    q = sp.symbols("psi0:3")
    Phi = sum(p[k] * (X - t) ** k / sp.factorial(k) for k in range(4))
    Psi = sum(q[k] * (X - t) ** k / sp.factorial(k) for k in range(3))
    objective = Phi.subs(X, e / delta) + e * Psi.subs(X, e / delta)
    stationary = sp.diff(objective, e).subs(e, t * delta / (1 - delta * L0))
    series = sp.expand(sp.series(stationary, delta, 0, 1).removeO())
    if series.coeff(delta, -1) != p[1]:
        raise ValueError("unexpected leading order of the stationarity condition")
    (l0,) = sp.solve(series.coeff(delta, 0).subs(p[1], 0), L0)
    curvature, shift = sp.symbols("curvature shift")
    l0 = sp.simplify(l0.subs(q[0], shift - t * q[1]))
    if l0.has(q[1]):
        raise ValueError("L0 should depend on Psi only through Psi + tau Psi'")
    return sp.Lambda((t, curvature, shift), l0.subs(p[2], curvature))
