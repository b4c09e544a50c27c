"""One loop (order 1/N): the Gaussian fluctuations around the saddle point (full block).

Second order of the action. With the cumulant expansion of ln Omega to second order in C~
(``action.layer_action(order=2)``) the Hessian at the saddle (C~ = 0) has three kinds of blocks:

    d2S / dC~^l dC~^l'  = sigma_w^4 A^{l-1, l'-1},  A^{mm'} = Cov(phi phi(h^m), phi phi(h^m'))
    d2S / dC~^l dC^k    = -delta_lk + r^2 sigma_w^2 J^{l-1}   (k < l: the causal response block)
    d2S / dC^k dC^k'    = 0

and the observable Khat^l adds the sampling noise of h h, X^{ll'} = Cov(h^l h^l, h^l' h^l').
Inverting the response block gives the linear fluctuation recursion of the conditional kernel
K_C^l = K^0 + r^2 sum_{k<=l} C^k,

    dK_C^l = sum_{m<l} c_{l,m} eta^m,   c_{l,m} = r^2 sigma_w^2 T^{l-1} ... T^{m+1},  T = 1 + r^2 sigma_w^2 J,

with N Cov(eta^m, eta^m') = A^{mm'} (``hessian_covariance`` checks this on a 3-layer action), and

    N Cov(Khat^l, Khat^l') = sum c A c^T + sum_m c_{l,m} B^{m l'} + (sum_m' c_{l',m'} B^{m' l})^T + X^{ll'},
    B^{ml} = Cov(phi phi(h^m), h^l h^l).

Mean shift: E[Khat^l] - K^l = r^2 sigma_w^2 sum_{m<l} mu^m exactly, mu^m = E[Phihat^m] - P(K^m), and

    N mu^m = J^m N Delta^m + (1/2) H^m : N Cov(K_C^m) + sum_{k<m} c_{m,k} : F^{mk},
    F^{mk}_{s,p,q} = Cov(D_s[phi phi_p](h^m), phi phi_q(h^k))            (self-feedback)

The tadpole uses the covariance of the conditional kernel K_C^m (the first term above), not of
Khat^m as it is usually written: the neuron's h^m is Gaussian with the conditional kernel, and at
m = 0 (K_C^0 = K^0 fixed) the Khat form would give mu^0 != 0 although E[Phihat^0] = P(K^0) exactly
(docs/theory, "The tadpole correction").

Along one neuron the walk has Cov(h^m, h^m') = K^{min(m, m')}: every two-time moment below is an
expectation over (early, late) pre-activations with cross-covariance equal to the early kernel.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import sympy as sp

from . import activations, closed_forms, gauss, model
from .distributions import derivative, simplify_distributions
from .expectation import (
    Correlation,
    GaussianExpectation,
    covariance_matrix,
    entry_positions,
    price_operator,
    variables,
)
from .meanfield import kernel_symbols


def early_late_symbols(n_inputs: int):
    """Kernel entries of the early layer (Ke) and the late layer (Kl), pair order."""
    if n_inputs == 1:
        return (sp.Symbol("Ke", positive=True),), (sp.Symbol("Kl", positive=True),)
    return model.pair_symbols("Ke", positive=True), model.pair_symbols("Kl", positive=True)


def walk_covariance(early, late, n_inputs: int) -> sp.Matrix:
    """Joint covariance of (h^early, h^late) along one neuron: [[Ke, Ke], [Ke, Kl]]."""
    Ke, Kl = model.kernel_matrix(early, n_inputs), model.kernel_matrix(late, n_inputs)
    return sp.Matrix(sp.BlockMatrix([[Ke, Ke], [Ke, Kl]]))


PATH = sp.Symbol("s", nonnegative=True)


def _close_kinked(expr: sp.Expr) -> sp.Expr:
    """Close 3-D expectations of polynomials times steps (relu's kinked moments after a delta
    has conditioned one variable away) by Stein's lemma in the sense of distributions,

        <x_a R(x)> = sum_b K_ab <d_b R(x)>,   d_b Theta(x_b) = delta(x_b),

    each delta conditioning a variable to 0 (``GaussianExpectation``): the polynomial degree drops
    by one per step and what is left are 2-D orthant moments, which ``closed_forms`` closes.
    (``closed_forms.stein`` leaves kinked integrands alone: in 2-D its form is the better one.)
    """

    def rule(node):
        xs = node.integrand.variables
        body = simplify_distributions(node.integrand.expr, xs)
        if node.dimension != 3 or not body.has(sp.Heaviside) or body.has(sp.Derivative):
            return node
        K = covariance_matrix(len(xs), node.entries)
        for a, x in enumerate(xs):
            for factor in sp.Mul.make_args(body):
                base, power = factor.as_base_exp()
                if base == x and power.is_Integer and power > 0:
                    rest = body / x
                    terms = [
                        K[a, b]
                        * GaussianExpectation(
                            sp.Lambda(xs, derivative(rest, xs[b], 1, xs)), *node.entries
                        )
                        for b in range(len(xs))
                        if K[a, b] != 0
                    ]
                    return _close_kinked(closed_forms.close(sp.Add(*terms)))
        return node

    return expr.replace(lambda e: isinstance(e, GaussianExpectation), rule)


def _two_time(body_early, body_late, early, late, n_inputs):
    """<f(h^early) g(h^late)> along the walk, in the most explicit form available.

    1. Closed form (Price chains, delta reduction, tilting, Stein).
    2. Otherwise the cross-covariance path: scaling the early-late block by s in [0, 1],
       Price's theorem for cross entries gives
           <f g> = <f><g> + int_0^1 ds sum_ij Kc_ij <d_i f(h) d_j g(h')>_s,
       and if the inner expectations close (erf: their Gaussian factors tilt away) the moment is a
       one-dimensional integral of a closed form (printed as Gauss-Legendre quadrature).
       For kinked activations an open inner moment is differentiated along s again (up to
       fourth order, Taylor's formula with integral remainder) until every term closes.
    3. Otherwise an expectation node (printed as multi-dimensional quadrature).
    """
    n = 2 * n_inputs
    xs = variables(n)
    x, y = xs[:n_inputs], xs[n_inputs:]
    f, g = body_early(x), body_late(y)

    def node(body, scale):
        cov = walk_covariance(early, late, n_inputs)
        for a in range(n_inputs):
            for b in range(n_inputs):
                cov[a, n_inputs + b] = cov[n_inputs + b, a] = scale * cov[a, n_inputs + b]
        entries = [cov[i, j] for i, j in entry_positions(n)]
        return _close_kinked(closed_forms.close(GaussianExpectation(sp.Lambda(xs, body), *entries)))

    direct = node(f * g, 1)
    if not direct.has(GaussianExpectation):
        return direct
    Kc = model.kernel_matrix(early, n_inputs)
    pairs = [(i, j) for i in range(n_inputs) for j in range(n_inputs)]
    # Kinked activations (relu): an open inner moment is differentiated along s again (each
    # order trades a step for a delta, which conditions a variable away), term by term, with
    #   int_0^1 (1-s)^(k-1)/(k-1)! t(s) ds = t(0)/k! + int_0^1 (1-s)^k/k! t'(s) ds,
    # t(0) a product of one-time moments (s = 0 decouples the layers).
    kinked = any(
        derivative(body, v, 1, vs).has(sp.Heaviside, sp.DiracDelta)
        for body, vs in ((f, x), (g, y))
        for v in vs
    )
    max_order = 4 if kinked else 1

    def expand(a, b, weight, k):
        """(boundary, integrand) of int_0^1 (1-s)^(k-1)/(k-1)! weight <a b>_s ds, or None."""
        at_s = node(a * b, PATH)
        if not at_s.has(GaussianExpectation):
            return sp.S.Zero, weight * (1 - PATH) ** (k - 1) / sp.factorial(k - 1) * at_s
        at_0 = node(a * b, 0)
        if k == max_order or at_0.has(GaussianExpectation):
            return None
        boundary, integrand = weight * at_0 / sp.factorial(k), []
        for i, j in pairs:
            da, db = derivative(a, x[i], 1, x), derivative(b, y[j], 1, y)
            if da == 0 or db == 0 or Kc[i, j] == 0:
                continue
            if (
                da.has(sp.Derivative)
                or db.has(sp.Derivative)
                or any(len(e.args) > 1 for e in (da * db).atoms(sp.DiracDelta))
            ):
                return None  # a delta's derivative: not closed
            part = expand(da, db, weight * Kc[i, j], k + 1)
            if part is None:
                return None
            boundary, integrand = boundary + part[0], integrand + [part[1]]
        return boundary, sp.Add(*integrand)

    boundary, inner = node(f * g, 0), []
    if boundary.has(GaussianExpectation):
        return direct
    for i, j in pairs:
        part = expand(derivative(f, x[i], 1, x), derivative(g, y[j], 1, y), Kc[i, j], 1)
        if part is None:
            return direct
        boundary, inner = boundary + part[0], inner + [part[1]]
    return boundary + sp.Integral(sp.Add(*inner), (PATH, 0, 1))


def _phiphi(phi, p):
    a, b = p
    return lambda h: phi(h[a]) * phi(h[b])


@lru_cache(maxsize=None)
def four_point(name: str, n_inputs: int) -> sp.Matrix:
    """A_{pq} = Cov(phi phi_p(h^early), phi phi_q(h^late)) as a function of (Ke, Kl)."""
    phi = activations.get(name).numeric
    early, late = early_late_symbols(n_inputs)
    P_early = _pair_expectation(name, early, n_inputs)
    P_late = _pair_expectation(name, late, n_inputs)
    pairs = model.pair_positions(n_inputs)
    return sp.Matrix(
        len(pairs),
        len(pairs),
        lambda i, j: (
            _two_time(_phiphi(phi, pairs[i]), _phiphi(phi, pairs[j]), early, late, n_inputs)
            - P_early[i] * P_late[j]
        ),
    )


def _pair_expectation(name, entries, n_inputs):
    if n_inputs == 1:
        return (gauss.single(name, entries[0]),)
    return gauss.pair(name, entries)


@lru_cache(maxsize=None)
def self_feedback(name: str, n_inputs: int) -> tuple:
    """F[s][p][q] = Cov(D_s[phi phi_p](h^late), phi phi_q(h^early)), functions of (Ke, Kl).

    A neuron's own phi phi_q at an early layer enters the step variance that later drives the
    same neuron; D_s is the Price operator of the perturbed kernel entry s.
    """
    phi = activations.get(name).numeric
    early, late = early_late_symbols(n_inputs)
    pairs = model.pair_positions(n_inputs)
    P_early = _pair_expectation(name, early, n_inputs)
    late_kernel = dict(zip(kernel_symbols(n_inputs), late))
    jac = _jacobian(name, n_inputs).xreplace(late_kernel)
    out = []
    for si, s in enumerate(pairs):
        rows = []
        for pi, p in enumerate(pairs):

            def late_body(h, p=p, s=s):
                return price_operator(sp.Lambda(h, _phiphi(phi, p)(h)), *s).expr

            rows.append(
                [
                    _with_stalled_limit(
                        _two_time(_phiphi(phi, q), late_body, early, late, n_inputs),
                        _phiphi(phi, q),
                        late_body,
                        early,
                        late,
                        n_inputs,
                    )
                    - jac[pi, si] * P_early[qi]
                    for qi, q in enumerate(pairs)
                ]
            )
        out.append(rows)
    return tuple(tuple(tuple(r) for r in rows) for rows in out)


def conditional_variance(early, late, i: int) -> sp.Expr:
    """Var(h^early_i | h^late_i = 0) = Ke_ii - Ke_ii^2 / Kl_ii of two inputs, the Schur complement
    exactly as ``expectation._condition_on_zero`` writes it when a delta of the late layer
    conditions."""
    cov = walk_covariance(early, late, 2)
    return cov[i, i] - cov[i, 2 + i] * cov[2 + i, i] / cov[2 + i, 2 + i]


def _divides_by(expr: sp.Expr, v: sp.Expr) -> bool:
    """Whether expr divides by an expression containing v (a power with a negative exponent, or a
    correlation with v in a variance)."""
    for e in sp.preorder_traversal(expr):
        if e.is_Pow and e.exp.is_negative and e.base.has(v):
            return True
        if isinstance(e, Correlation) and any(arg.has(v) for arg in e.args[:2]):
            return True
    return False


def stalled_two_time(body_early, body_late, early, late, i: int) -> sp.Expr:
    """<f(h^early) g(h^late)> of two inputs where component i of the walk takes no step.

    With Kl_ii = Ke_ii, h^late_i - h^early_i has variance Kl_ii - 2 Ke_ii + Ke_ii = 0, so
    h^late_i = h^early_i and the moment is a 3-D expectation over (h^early_1, h^early_2, h^late_j),
    j the other component: Cov = Ke on the early block, Cov(h^early, h^late_j) = Ke[:, j],
    Var(h^late_j) = Kl_jj. A delta of h^late_i then sits on h^early_i (relu: delta(x) relu(x) = 0).
    """
    j = 1 - i
    xs = variables(3)
    x = xs[:2]
    y = [xs[2], xs[2]]
    y[i] = x[i]
    Ke = model.kernel_matrix(early, 2)
    cov = sp.zeros(3, 3)
    cov[:2, :2] = Ke
    for a in range(2):
        cov[a, 2] = cov[2, a] = Ke[a, j]
    cov[2, 2] = late[j]
    entries = [cov[a, b] for a, b in entry_positions(3)]
    body = simplify_distributions(body_early(x) * body_late(tuple(y)), xs)
    return _close_kinked(closed_forms.close(GaussianExpectation(sp.Lambda(xs, body), *entries)))


def _with_stalled_limit(general, body_early, body_late, early, late, n_inputs):
    """The two-time moment, with its value where the walk takes no step where the closed form
    divides by the vanishing conditional variance (0/0 there).

    A delta of the late layer, delta(h^late_i), conditions h^early_i on h^late_i = 0 with variance
    V_i = Ke_ii (Kl_ii - Ke_ii) / Kl_ii, which is 0 where component i takes no step (Kl_ii = Ke_ii).
    There the moment is ``stalled_two_time``: Piecewise((general, V_i > 0), (stalled, True)), V_i
    written factored inside the general form too (exactly 0 at Kl_ii = Ke_ii, no cancellation
    near it), so that the printed code shares it and takes the branch where it is 0. (V_i < 0,
    Kl_ii < Ke_ii, is no walk.) Where the stalled moment is not defined (sign: delta'(x) sign(x))
    or does not close, the general form stays as it is.
    """
    if n_inputs != 2:
        return general
    late_vars = variables(2)
    conditioned = {d.args[0] for d in body_late(late_vars).atoms(sp.DiracDelta)}
    out = general
    for i in range(2):
        if late_vars[i] not in conditioned:
            continue
        v = conditional_variance(early, late, i)
        if not _divides_by(out, v):
            continue
        try:
            stalled = stalled_two_time(body_early, body_late, early, late, i)
        except ValueError:  # sign: delta'(x) sign(x) is not defined (the moment diverges)
            continue
        if stalled.has(GaussianExpectation, sp.zoo, sp.nan, sp.oo):
            continue  # no finite limit derived: the 0/0 stays (a clear error downstream)
        factored = sp.factor(v)
        general_f = out.xreplace({v: factored})
        if any(e == v for e in sp.preorder_traversal(general_f)):
            raise AssertionError(f"conditional variance {v} left unfactored")
        out = sp.Piecewise((general_f, factored > 0), (stalled, True))
    return out


@lru_cache(maxsize=None)
def _jacobian(name: str, n_inputs: int) -> sp.Matrix:
    """J_{ps} = dP_p/dK_s at model.K (or model.K1)."""
    if n_inputs == 1:
        return sp.Matrix([[sp.diff(gauss.single(name, model.K1), model.K1)]])
    return sp.Matrix(gauss.pair(name)).jacobian(model.K)


@lru_cache(maxsize=None)
def hessian(name: str, n_inputs: int) -> tuple:
    """H[p][q][s] = d2 P_p / dK_q dK_s."""
    K = kernel_symbols(n_inputs)
    jac = _jacobian(name, n_inputs)
    n = len(K)
    return tuple(
        tuple(tuple(sp.diff(jac[p, s], K[q]) for s in range(n)) for q in range(n)) for p in range(n)
    )


# ---- Gaussian moments of h: Isserlis and Stein, derived by differentiation -----------------


def _moment(cov: sp.Matrix, indices) -> sp.Expr:
    """E[prod x_i] for x ~ N(0, cov): derivatives of the generating function exp(t.cov.t / 2)."""
    t = sp.symbols(f"t0:{cov.shape[0]}", real=True)
    tv = sp.Matrix(t)
    mgf = sp.exp((tv.T * cov * tv)[0, 0] / 2)
    return sp.diff(mgf, *[t[i] for i in indices]).subs({ti: 0 for ti in t})


@lru_cache(maxsize=None)
def sampling_noise(n_inputs: int) -> sp.Matrix:
    """X_{pq} = Cov(h_a h_b, h'_g h'_d) for Cov(h, h') = Kc (symbols model.K / model.K1)."""
    Kc = kernel_symbols(n_inputs)
    cov = walk_covariance(Kc, Kc, n_inputs)
    pairs = model.pair_positions(n_inputs)
    off = n_inputs
    return sp.Matrix(
        len(pairs),
        len(pairs),
        lambda i, j: sp.expand(
            _moment(cov, (pairs[i][0], pairs[i][1], off + pairs[j][0], off + pairs[j][1]))
            - _moment(cov, pairs[i]) * _moment(cov, (off + pairs[j][0], off + pairs[j][1]))
        ),
    )


JACOBIAN = sp.IndexedBase("J", shape=(3, 3))
JACOBIAN_ARG = {d: sp.IndexedBase("J", shape=(d, d)) for d in (1, 3)}


def jacobian_arg_map(d: int) -> dict:
    """Entries of the generic Jacobian -> entries of a (d, d) array argument."""
    return {JACOBIAN[i, j]: JACOBIAN_ARG[d][i, j] for i in range(d) for j in range(d)}


@lru_cache(maxsize=None)
def response_cross(n_inputs: int) -> sp.Matrix:
    """B_{p,gd} = Cov(phi phi_p(h), h'_g h'_d) for Cov(h, h') = Kc (model.K / model.K1 symbols),
    in terms of the Jacobian J_{ps} = dP_p/dK_s at the kernel of h (the IndexedBase ``J``).

    Stein's lemma twice, E[h'_g h'_d f(h)] = Kc'_gd E f + sum_jk Kc_gj Kc_dk E[d_j d_k f], and
    Price's theorem, E[d_j d_k f] = (2 - delta_jk) dP/dK_jk. For the walk Kc = K^min.
    """
    Kc = model.kernel_matrix(kernel_symbols(n_inputs), n_inputs)
    pairs = model.pair_positions(n_inputs)
    index = {pr: i for i, pr in enumerate(pairs)}

    def d2(p_i, j, k):
        """E[d_j d_k phi phi_p] through the Jacobian (Price's theorem)."""
        return (2 if j == k else 1) * JACOBIAN[p_i, index[(min(j, k), max(j, k))]]

    return sp.Matrix(
        len(pairs),
        len(pairs),
        lambda i, q: sp.expand(
            sum(
                Kc[pairs[q][0], j] * Kc[pairs[q][1], k] * d2(i, j, k)
                for j in range(n_inputs)
                for k in range(n_inputs)
            )
        ),
    )


# ---- the fluctuation covariance from the action's Hessian (a check of the recursion) -------


@dataclass(frozen=True)
class HessianCheck:
    from_action: sp.Matrix  # Cov(dK_C^l, dK_C^l') for l, l' = 1..depth from inverting S2
    from_recursion: sp.Matrix  # sum_{m<l, m'<l'} c_{l,m} A^{mm'} c_{l',m'}


def hessian_covariance(depth: int = 3) -> HessianCheck:
    """One input, abstract J^m and A^{mm'}: invert the quadratic action and compare.

    S2 = (1/2) C~.Sigma.C~ + C~.M.dC with Sigma = sigma_w^4 A (the C~C~ block) and
    M = d2S/dC~dC = -1 + r^2 sigma_w^2 J^{l-1} on k < l (dK^{l-1}/dC^k = r^2). The Gaussian
    (MSR) integral gives Cov(dC) = M^{-1} Sigma M^{-T} / N; dK_C^l = r^2 sum_{k<=l} dC^k.
    """
    g = model.r**2 * model.sigma_w2
    J = sp.symbols(f"J0:{depth}", real=True)
    A = sp.Matrix(depth, depth, lambda i, j: sp.Symbol(f"A{min(i, j)}{max(i, j)}", real=True))
    M = sp.Matrix(
        depth,
        depth,
        lambda l, k: -1 if l == k else (model.r**2 * model.sigma_w2 * J[l] if k < l else 0),
    )
    # Rows/columns: layers l = 1..depth, C~^l pairs with phi phi(h^{l-1}) -> A^{l-1, l'-1}.
    Sigma = model.sigma_w2**2 * A
    Minv = M.inv()
    cov_C = Minv * Sigma * Minv.T
    S = sp.Matrix(depth, depth, lambda l, k: model.r**2 if k <= l else 0)
    from_action = (S * cov_C * S.T).applyfunc(sp.simplify)

    def c(l, m):  # l, m layer indices, m < l
        prod_ = g
        for n in range(m + 1, l):
            prod_ *= 1 + g * J[n]
        return prod_

    from_recursion = sp.Matrix(
        depth,
        depth,
        lambda i, j: sp.expand(
            sum(c(i + 1, m) * A[m, mp] * c(j + 1, mp) for m in range(i + 1) for mp in range(j + 1))
        ),
    )
    return HessianCheck(from_action, from_recursion)


def layer_action_second_order(n_inputs: int = 1):
    """The layer action with ln Omega to second order in C~ (its C~C~ block is sigma_w^4 Cov)."""
    from . import action

    phi = sp.Function("phi")
    K = kernel_symbols(n_inputs)
    return action.layer_action(n_inputs, action.phi_source(phi, K, n_inputs), order=2)
