"""The action S[C, C~] and its saddle point.

Averaging the network over W and b and introducing the auxiliary field
C^l_ab = sigma_w^2/N sum_j g_ja g_jb + sigma_b^2 (g = phi(h^{l-1}) for the full block,
g = h^{l-1} for the reduced block) with conjugate C~^l decouples the neurons:

    Z = int dC dC~ exp(N S),   S = sum_l { -tr[C~^l (C^l - sigma_b^2)] + ln Omega_l },
    ln Omega_l = ln < exp(sigma_w^2 g^T C~^l g) >   (the single-neuron process at layer l-1).

ln Omega is built here by a cumulant expansion in C~ whose moments are Gaussian expectations
(``expectation.GaussianExpectation``); the saddle-point equations are its derivatives.
The single-neuron increment is described by its cumulant generating function: for the full block
the response-field term (r^2/2) h~.C h~ of Omega, for the reduced block r phi(a), a ~ N(0, C).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import sympy as sp

from . import model
from .expectation import expect, variables


def pair_fields(n_inputs: int):
    """(C, C~) pair-space entries used for n_inputs inputs: (11,) or (11, 22, 12)."""
    if n_inputs == 1:
        return model.C[:1], model.Ct[:1]
    return model.C, model.Ct


def source_symbols(n_inputs: int) -> tuple[sp.Symbol, ...]:
    """g_a: the per-neuron quantity whose products define C (phi(h) or h of the layer below)."""
    return tuple(sp.Symbol(f"g{a + 1}", real=True) for a in range(n_inputs))


def cumulant_expansion(exponent: sp.Expr, average, order: int) -> sp.Expr:
    """ln <exp(X)> = kappa_1 + kappa_2 / 2 + ... up to the given order in X."""
    first = average(exponent)
    if order == 1:
        return first
    if order == 2:
        return first + (average(sp.expand(exponent**2)) - first**2) / 2
    raise NotImplementedError("cumulant expansion beyond second order")


def moment_map(source_moment, sources):
    """Linear extension of a monomial -> expectation map to polynomials in the sources."""

    def average(poly: sp.Expr) -> sp.Expr:
        total = sp.S.Zero
        for term in sp.Add.make_args(sp.expand(poly)):
            coeff, monomial = term.as_independent(*sources)
            total += coeff * (source_moment(monomial) if monomial != 1 else 1)
        return total

    return average


def layer_action(n_inputs: int, source_moment, order: int = 1) -> sp.Expr:
    """S_l[C, C~] of one layer, ln Omega expanded to `order` in C~."""
    C, Ct = pair_fields(n_inputs)
    g = sp.Matrix(source_symbols(n_inputs))
    exponent = model.sigma_w2 * (g.T * model.kernel_matrix(Ct, n_inputs) * g)[0, 0]
    average = moment_map(source_moment, source_symbols(n_inputs))
    ln_omega = cumulant_expansion(sp.expand(exponent), average, order)
    weights = model.PAIR_TRACE_WEIGHTS[: len(C)]
    trace = sum(w * ct * (c - model.sigma_b2) for w, ct, c in zip(weights, Ct, C))
    return -trace + ln_omega


@dataclass(frozen=True)
class SaddlePoint:
    action: sp.Expr
    equations: tuple  # dS/dC~_p = 0 at C~ = 0
    conjugate_equations: tuple  # dS/dC_p = 0
    fields: dict  # C_p at the saddle
    conjugates: dict  # C~_p at the saddle


def saddle_point(n_inputs: int, source_moment) -> SaddlePoint:
    """Solve dS/dC~ = 0 and dS/dC = 0 for the layer action."""
    C, Ct = pair_fields(n_inputs)
    S = layer_action(n_inputs, source_moment)
    at_zero = {ct: 0 for ct in Ct}
    eqs = tuple(sp.diff(S, ct).xreplace(at_zero) for ct in Ct)
    conj_eqs = tuple(sp.diff(S, c) for c in C)
    fields = sp.solve(eqs, C, dict=True)
    conjugates = sp.solve(conj_eqs, Ct, dict=True)
    if len(fields) != 1 or len(conjugates) != 1:
        raise ValueError("the saddle-point equations do not have a unique solution")
    return SaddlePoint(S, eqs, conj_eqs, fields[0], conjugates[0])


# ---- sources of the two blocks -------------------------------------------------------------


def _monomial_powers(monomial: sp.Expr, n_inputs: int) -> tuple[int, ...]:
    powers = monomial.as_powers_dict()
    g = source_symbols(n_inputs)
    return tuple(int(powers.get(ga, 0)) for ga in g)


def phi_source(phi, kernel_entries, n_inputs: int):
    """Moments of g = phi(h), h ~ N(0, K): Gaussian expectations (full block)."""
    xs = variables(n_inputs)

    def moment(monomial):
        powers = _monomial_powers(monomial, n_inputs)
        body = sp.Mul(*[phi(x) ** k for x, k in zip(xs, powers)])
        used = [a for a, k in enumerate(powers) if k]
        if len(used) == 1:
            a = used[0]
            return expect(phi(xs[0]) ** powers[a], (kernel_entries[a],))
        return expect(body, kernel_entries)

    return moment


def second_moment_source(moments, n_inputs: int):
    """Moments of g = h of the layer below, given its second moments (reduced block, input layer)."""

    def moment(monomial):
        powers = _monomial_powers(monomial, n_inputs)
        if sum(powers) != 2:
            raise NotImplementedError("only second moments of h enter the saddle point")
        if n_inputs == 1:
            return moments[0]
        index = {(2, 0): 0, (0, 2): 1, (1, 1): 2}[powers]
        return moments[index]

    return moment


# ---- the single-neuron increment -----------------------------------------------------------


@dataclass(frozen=True)
class Increment:
    """Mean and second moments <Delta_a Delta_b> of h^l - h^{l-1}, given C at the saddle."""

    mean: tuple
    second: tuple  # pair order


def full_block_increment(C, n_inputs: int) -> Increment:
    """Increment r xi with cumulant generating function W(j) = (r^2/2) j.C j (response field)."""
    j = sp.symbols(f"j1:{n_inputs + 1}", real=True)
    Cmat = model.kernel_matrix(C, n_inputs)
    jvec = sp.Matrix(j)
    W = model.r**2 / 2 * (jvec.T * Cmat * jvec)[0, 0]
    at_zero = {ja: 0 for ja in j}
    mean = tuple(sp.diff(W, ja).xreplace(at_zero) for ja in j)
    cov = [[sp.diff(W, ja, jb).xreplace(at_zero) for jb in j] for ja in j]
    second = [cov[a][b] + mean[a] * mean[b] for a, b in model.pair_positions(n_inputs)]
    return Increment(mean, tuple(second))


def reduced_block_increment(phi, C, n_inputs: int, pair_expectation, mean_of) -> Increment:
    """Increment r phi(a) with a ~ N(0, C): moments are Gaussian expectations at C."""
    mean = tuple(model.r * mean_of(C[a] if n_inputs == 2 else C[0]) for a in range(n_inputs))
    second = tuple(model.r**2 * p for p in pair_expectation)
    return Increment(mean, second)


@lru_cache(maxsize=None)
def conjugate_vanishes_on_multilayer_action(depth: int = 3) -> dict:
    """Solve dS/dC^l = 0 and dS/dC~^l = 0 for a `depth`-layer action of one input.

    The expectation at layer l depends on all earlier C^k through the walk's variance
    K^{l-1} = K^0 + r^2 sum_{k<l} C^k, so dS/dC^k collects C~ of later layers; the solution has
    C~ = 0 and C^l = sigma_w^2 <phi^2>_{K^{l-1}} + sigma_b^2. Returned for the tests and the docs.
    """
    x1 = variables(1)[0]
    phi = sp.Function("phi")
    K0 = sp.Symbol("K0", positive=True)
    Cs = sp.symbols(f"C1:{depth + 1}", positive=True)
    Cts = sp.symbols(f"Ct1:{depth + 1}", real=True)
    S = sp.S.Zero
    for l in range(depth):
        variance = K0 + model.r**2 * sum(Cs[:l])
        S += -Cts[l] * (Cs[l] - model.sigma_b2) + model.sigma_w2 * Cts[l] * expect(
            phi(x1) ** 2, (variance,)
        )
    # dS/dC^k = 0 is linear and triangular in C~: its only solution is C~ = 0.
    conjugate_eqs = [sp.diff(S, c) for c in Cs]
    (conjugates,) = sp.linsolve(conjugate_eqs, Cts)
    at_zero = dict(zip(Cts, conjugates))
    # dS/dC~^l = 0 then fixes C^l layer by layer.
    fields = {}
    for l in range(depth):
        eq = sp.diff(S, Cts[l]).xreplace(at_zero).xreplace(fields)
        (value,) = sp.solve(eq, Cs[l])
        fields[Cs[l]] = value
    return {"action": S, "conjugates": at_zero, "fields": fields, "K0": K0, "phi": phi}
