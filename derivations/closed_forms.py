"""Closed forms of Gaussian expectations, derived by integrating Price's theorem.

For a separable integrand f(x1) g(x2) of a bivariate Gaussian with covariance (K11, K22, K12),
d/dK12 <f g> = <f' g'>, and at K12 = 0 the variables are independent. So if some derivative order
d gives an expectation <f^(d) g^(d)> that closes exactly (a delta reduces it to a density times a
one-dimensional integral, or it is a Gaussian integral), then d integrations in K12,

    <f^(j) g^(j)>(K12) = <f^(j)>_{K11} <g^(j)>_{K22} + int_0^{K12} <f^(j+1) g^(j+1)>(k) dk,

give <f g> in closed form. With f = g = phi this is P12 (one input is its diagonal); with
f = phi^2 at one layer and g = phi^2 at another it is the four-point moment across layers, whose
covariance is K^{min}. Nothing here is typed in as a final formula; tests compare the results with
quadrature and Price's theorem.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import sympy as sp

from . import activations, model
from .distributions import derivative, simplify_distributions
from .expectation import (
    Correlation,
    GaussianExpectation,
    covariance_matrix,
    entry_positions,
    expect,
    integrate_1d,
    variables,
)

MAX_ORDER = 4
MAX_INTEGRAND_OPS = 40


# ---- closing individual expectation nodes ------------------------------------------------


def _closable_1d(body: sp.Expr, x: sp.Symbol) -> bool:
    """Polynomials times steps and Gaussian factors: SymPy integrates these exactly."""
    for f in body.atoms(sp.Function):
        if isinstance(f, sp.Heaviside) and f.args[0] == x:
            continue
        if isinstance(f, sp.exp) and sp.Poly(f.args[0], x).degree() <= 2:
            continue
        if not f.has(x):
            continue
        return False
    return True


def _exponent_polynomial(body: sp.Expr, xs):
    """(Poly of the summed exponents of the exp factors that depend on x, the other factors), or
    None if there is no such factor or the exponent is not a polynomial in x. The one place that
    splits an integrand into exp(Q(x)) rest, for ``tilt`` and ``shift``."""
    body = sp.powsimp(body, combine="exp")
    exponent, rest = sp.S.Zero, sp.S.One
    for factor in sp.Mul.make_args(body):
        if isinstance(factor, sp.exp) and factor.args[0].has(*xs):
            exponent += factor.args[0]
        else:
            rest *= factor
    if exponent == 0:
        return None
    try:
        return sp.Poly(sp.expand(exponent), *xs), rest
    except sp.PolynomialError:
        return None


def _split_exponentials(body: sp.Expr, xs):
    """(D, rest) with body = exp(-x.D.x) rest for a symmetric matrix D != 0, or None.

    Exponents linear in x stay in `rest` (``shift`` removes them)."""
    found = _exponent_polynomial(body, xs)
    if found is None:
        return None
    poly, rest = found
    if any(sum(m) > 2 for m in poly.monoms()) or not any(sum(m) == 2 for m in poly.monoms()):
        return None
    n = len(xs)
    D = sp.Matrix(
        n, n, lambda i, j: -poly.coeff_monomial(xs[i] * xs[j]) * (1 if i == j else sp.S.Half)
    )
    linear = sum(poly.coeff_monomial(x) * x for x in xs) + poly.coeff_monomial(1)
    return D, rest * sp.exp(linear)


def factorize(node: GaussianExpectation) -> sp.Expr | None:
    """<f(x_A) g(x_B)> = <f><g> when the blocks A and B are uncorrelated."""
    xs = node.integrand.variables
    n = len(xs)
    K = covariance_matrix(n, node.entries)
    # connected components of the variables under non-zero covariance
    group = list(range(n))

    def root(i):
        while group[i] != i:
            i = group[i]
        return i

    for i in range(n):
        for j in range(i + 1, n):
            if K[i, j] != 0:
                group[root(j)] = root(i)
    blocks = {}
    for i in range(n):
        blocks.setdefault(root(i), []).append(i)
    if len(blocks) < 2:
        return None
    parts = {key: sp.S.One for key in blocks}
    for factor in sp.Mul.make_args(node.integrand.expr):
        owners = {root(i) for i, x in enumerate(xs) if factor.has(x)}
        if len(owners) > 1:
            return None
        parts[owners.pop() if owners else next(iter(parts))] *= factor
    out = sp.S.One
    for key, members in blocks.items():
        sub = variables(len(members))
        body = parts[key].xreplace({xs[m]: sub[i] for i, m in enumerate(members)})
        out *= GaussianExpectation(
            sp.Lambda(sub, body),
            *[K[members[a], members[b]] for a, b in entry_positions(len(members))],
        )
    return out


def _diagonal_chain(body: sp.Expr, x: sp.Symbol, variance: sp.Expr) -> sp.Expr | None:
    """<f(x) g(x)> as the Price chain of <f(x1) g(x2)> on the diagonal K11 = K22 = K12."""
    factors = []
    for factor in sp.Mul.make_args(body):
        base, power = factor.as_base_exp()
        factors += [base] * int(power) if power.is_Integer and power > 0 else [factor]
    if len(factors) != 2:
        return None
    (y,) = variables(1)
    levels = price_chain(
        sp.Lambda(y, factors[0].xreplace({x: y})), sp.Lambda(y, factors[1].xreplace({x: y}))
    )
    if levels is None:
        return None
    k11, k22, k12 = model.K
    return tidy_roots(levels[0].xreplace({k11: variance, k22: variance, k12: variance}))


def tilt(node: GaussianExpectation) -> sp.Expr | None:
    """<exp(-x.D.x) h(x)>_K = det(1 + 2 D K)^(-1/2) <h(x)>_{K'},  K' = K (1 + 2 D K)^(-1).

    Absorbing Gaussian factors of the integrand into the covariance (erf's derivatives are
    Gaussians) leaves an expectation of the remaining factors under a tilted covariance.
    """
    xs = node.integrand.variables
    split = _split_exponentials(node.integrand.expr, xs)
    if split is None:
        return None
    D, rest = split
    n = len(xs)
    K = covariance_matrix(n, node.entries)
    M = sp.eye(n) + 2 * D * K
    tilted = (K * M.inv()).applyfunc(sp.cancel)
    entries = [tilted[a, b] for a, b in entry_positions(n)]
    return GaussianExpectation(sp.Lambda(xs, rest), *entries) / sp.sqrt(sp.factor(M.det()))


def _linear_exponent(body: sp.Expr, xs):
    """(l, rest) with body = exp(l.x) rest, l constant (possibly complex), rest polynomial in x;
    or None."""
    found = _exponent_polynomial(body, xs)
    if found is None:
        return None
    poly, rest = found
    if not rest.is_polynomial(*xs) or poly.total_degree() != 1:
        return None
    return [poly.coeff_monomial(x) for x in xs], rest * sp.exp(poly.coeff_monomial(1))


def shift(node: GaussianExpectation) -> sp.Expr | None:
    """<exp(l.x) P(x)>_K = exp(l.K.l / 2) <P(x + K l)>_K for a polynomial P (Cameron-Martin).

    sin and cos of linear arguments are first written as complex exponentials; the sum of the
    resulting terms is real again (``real_form``).
    """
    xs = node.integrand.variables
    body = node.integrand.expr
    if body.has(sp.Heaviside, sp.DiracDelta):
        return None
    if body.has(sp.sin, sp.cos):
        if any(
            not sp.Poly(f.args[0], *xs).is_linear for f in body.atoms(sp.sin, sp.cos) if f.has(*xs)
        ):
            return None
        rewritten = sp.expand(body.rewrite(sp.exp))
        return sp.Add(
            *[
                GaussianExpectation(sp.Lambda(xs, t), *node.entries)
                for t in sp.Add.make_args(rewritten)
            ]
        )
    found = _linear_exponent(body, xs)
    if found is None:
        return None
    l, rest = found
    K = covariance_matrix(len(xs), node.entries)
    lv = sp.Matrix(l)
    moved = K * lv
    shifted = sp.expand(rest.xreplace({x: x + moved[i] for i, x in enumerate(xs)}))
    return sp.exp(sp.expand((lv.T * K * lv)[0, 0] / 2)) * GaussianExpectation(
        sp.Lambda(xs, shifted), *node.entries
    )


def real_form(expr: sp.Expr) -> sp.Expr:
    """A real expression written with complex exponentials -> exp, cosh, sinh, cos, sin."""
    if not expr.has(sp.I):
        return expr
    return sp.simplify(sp.expand_complex(sp.expand(expr)).rewrite(sp.cosh))


def stein(node: GaussianExpectation) -> sp.Expr | None:
    """<x_a R(x)> = sum_b K_ab <d_b R(x)> (Gaussian integration by parts) for a polynomial factor.

    Only for smooth integrands: on relu's x Theta(x) it would trade a kink for steps and deltas,
    expectations that are harder, not easier.
    """
    xs = node.integrand.variables
    body = node.integrand.expr
    if body.has(sp.Heaviside, sp.DiracDelta):
        return None
    for a, x in enumerate(xs):
        for factor in sp.Mul.make_args(body):
            base, power = factor.as_base_exp()
            if base == x and power.is_Integer and power > 0:
                rest = body / x
                K = covariance_matrix(len(xs), node.entries)
                return sp.Add(
                    *[
                        K[a, b]
                        * GaussianExpectation(
                            sp.Lambda(xs, derivative(rest, xs[b], 1, xs)), *node.entries
                        )
                        for b in range(len(xs))
                        if K[a, b] != 0
                    ]
                )
    return None


def close(expr: sp.Expr, chains: bool = True) -> sp.Expr:
    """Replace every expectation node that has an exact closed form by that form.

    Rules, cheapest first: uncorrelated blocks factorise; Gaussian factors are absorbed into the
    covariance (``tilt``); polynomial factors are removed by Stein's lemma; separable integrands
    close by a Price chain (two variables, or one variable on the diagonal); one-dimensional
    integrals of steps and polynomials by SymPy. What is left stays a node (quadrature).
    """
    return expr.replace(
        lambda e: isinstance(e, GaussianExpectation), lambda node: _close_node(node, chains)
    )


@lru_cache(maxsize=None)
def _close_node(node: GaussianExpectation, chains: bool) -> sp.Expr:
    xs = node.integrand.variables
    body = simplify_distributions(node.integrand.expr, xs)
    node = GaussianExpectation(sp.Lambda(xs, body), *node.entries)
    if not isinstance(node, GaussianExpectation):
        return close(node, chains)
    for rule in (factorize, tilt, shift, stein):
        reduced = rule(node)
        if reduced is not None:
            return close(reduced, chains)
    if node.dimension == 1 and chains:
        on_diagonal = _diagonal_chain(body, xs[0], node.entries[0])
        if on_diagonal is not None:
            return on_diagonal
    if node.dimension == 2 and chains:
        split = _separate(body, xs)
        if split is not None:
            levels = price_chain(*split)
            if levels is not None:
                return levels[0].xreplace(dict(zip(model.K, node.entries)))
    if node.dimension == 1 and _closable_1d(body, xs[0]):
        return integrate_1d(body, node.entries[0])
    return node


def _separate(body: sp.Expr, xs):
    """(f, g) as Lambdas of one variable with body = f(x1) g(x2), or None."""
    x1, x2 = xs
    f, g = sp.S.One, sp.S.One
    for factor in sp.Mul.make_args(body):
        if factor.has(x1) and factor.has(x2):
            return None
        if factor.has(x2):
            g *= factor
        else:
            f *= factor
    (x,) = variables(1)
    return sp.Lambda(x, f.xreplace({x1: x})), sp.Lambda(x, g.xreplace({x2: x}))


# ---- the Price chain -----------------------------------------------------------------------


def _integrate_in_k12(expr: sp.Expr, k: sp.Symbol) -> sp.Expr:
    """int_0^k expr(k') dk' with the k-free part of sqrt(A - B k^2) made positive for SymPy."""
    kp = sp.Dummy("k", real=True)
    integrand = merge_roots(sp.expand(expr.xreplace({k: kp})))
    # SymPy finds arcsin primitives when the constant under a square root is known positive.
    positives = {}
    for root in integrand.atoms(sp.Pow):
        if root.exp in (sp.S.Half, -sp.S.Half):
            try:
                poly = sp.Poly(sp.expand(root.base), kp)
            except sp.PolynomialError:
                continue
            if poly.degree() == 2 and poly.coeff_monomial(kp) == 0:
                const = poly.coeff_monomial(1)
                if not const.is_number:
                    positives[const] = sp.Dummy("A", positive=True)
    sub = sp.expand(integrand)
    for const, symbol in positives.items():
        sub = sub.subs(const, symbol)
    result = sp.integrate(sub, (kp, 0, k), conds="none")
    for const, symbol in positives.items():
        result = result.xreplace({symbol: const})
    if result.has(sp.Integral):
        raise ValueError(f"SymPy could not integrate {expr} in K12")
    return result


def merge_roots(expr: sp.Expr) -> sp.Expr:
    """In every product, sqrt(a) sqrt(b) / sqrt(c) -> sqrt(a b / c) with the radicand cancelled.

    The radicands here are variances and determinants, positive on the domain, so the merge is
    valid; it turns 1/(sqrt(K11) sqrt(K22 - k^2/K11)) into 1/sqrt(K11 K22 - k^2), the form SymPy
    integrates to an arcsin.
    """

    def merge(term):
        roots = [f for f in sp.Mul.make_args(term) if f.is_Pow and f.exp in (sp.S.Half, -sp.S.Half)]
        if len(roots) < 2:
            return term
        rest = sp.Mul(*[f for f in sp.Mul.make_args(term) if f not in roots])
        radicand = sp.cancel(sp.Mul(*[f.base ** (1 if f.exp > 0 else -1) for f in roots]))
        num, den = sp.fraction(radicand)
        return rest * sp.sqrt(sp.expand(num)) / sp.sqrt(sp.expand(den))

    return sp.Add(*[merge(t) for t in sp.Add.make_args(expr)])


def tidy_roots(expr: sp.Expr) -> sp.Expr:
    """Factor the radicands, so sqrt((1 + 2K)^2) becomes 1 + 2K for positive K."""
    return sp.simplify(expr).replace(
        lambda e: e.is_Pow and e.exp in (sp.S.Half, -sp.S.Half),
        lambda e: sp.Pow(sp.factor(e.base), e.exp),
    )


def singular_at_full_correlation(expr: sp.Expr) -> bool:
    """True if a square root vanishes or an arcsin/arccos argument reaches +-1 at K12^2 = K11 K22.

    There round-off can push the argument out of the domain (a NaN), so such forms are written
    through the clamped correlation.
    """
    k11, k22, k12 = model.K
    at_boundary = {k12: sp.sqrt(k11 * k22)}
    for e in sp.preorder_traversal(expr):
        if e.is_Pow and e.exp.is_Rational and e.exp.q == 2:
            if sp.simplify(e.base.subs(at_boundary)) == 0:
                return True
        if isinstance(e, (sp.asin, sp.acos)):
            if sp.simplify(e.args[0].subs(at_boundary) ** 2 - 1) == 0:
                return True
    return False


def in_correlation(expr: sp.Expr) -> sp.Expr:
    """Rewrite through rho = Correlation(K11, K22, K12), so generated code can clamp it."""
    k11, k22, k12 = model.K
    rho = sp.Symbol("rho", real=True)
    s = sp.sqrt(k11 * k22)
    written = sp.simplify(expr.subs(k12, rho * s))
    written = sp.simplify(written.subs(sp.sqrt(k11) * sp.sqrt(k22), s))
    return sp.collect(written, s).xreplace({rho: Correlation(k11, k22, k12)})


@lru_cache(maxsize=None)
def price_chain(f: sp.Lambda, g: sp.Lambda):
    """levels[j] = <f^(j)(x1) g^(j)(x2)> in closed form (model.K entries), or None if none found."""
    (x,) = variables(1)
    x1, x2 = variables(2)
    k11, k22, k12 = model.K
    k = sp.Symbol("k", real=True)
    fd, gd = [f(x)], [g(x)]
    for order in range(MAX_ORDER + 1):
        if order:
            fd.append(derivative(fd[-1], x))
            gd.append(derivative(gd[-1], x))
        base = close(
            expect(fd[order].xreplace({x: x1}) * gd[order].xreplace({x: x2}), (k11, k22, k)),
            chains=False,
        )
        if not base.has(GaussianExpectation):
            break
    else:
        return None
    levels = [base]
    for j in range(order - 1, -1, -1):
        boundary = close(expect(fd[j], (k11,)) * expect(gd[j], (k22,)), chains=False)
        # Large integrands (arcsin of rational functions, from tilted covariances) have no
        # elementary primitive and SymPy spends minutes to find that out: leave them to the
        # numeric path integral of one_loop.
        if boundary.has(GaussianExpectation) or sp.count_ops(levels[0]) > MAX_INTEGRAND_OPS:
            return None
        try:
            levels.insert(0, sp.simplify(boundary + _integrate_in_k12(levels[0], k)))
        except ValueError:
            return None
    levels = tuple(tidy_roots(c.xreplace({k: k12})) for c in levels)
    if any(singular_at_full_correlation(c) for c in levels[:2]):
        levels = tuple(in_correlation(c) for c in levels)
    return levels


# ---- the activations' own expectations -----------------------------------------------------


@dataclass(frozen=True)
class PairClosedForms:
    """<phi^(j)(h1) phi^(j)(h2)> for j = 0 .. order, in terms of (K11, K22, K12)."""

    name: str
    chain: tuple

    @property
    def phiphi(self) -> sp.Expr:
        return self.chain[0]

    @property
    def dphi_dphi(self) -> sp.Expr:
        return self.chain[1]


def closable(expr: sp.Expr, x: sp.Symbol) -> bool:
    """Whether the rules above can reach <phi phi>: polynomials times steps at 0 (relu, abs,
    sign), or, without steps, polynomials with erf of linear arguments, exponentials of
    polynomials of degree <= 2, sin and cos of linear arguments.

    A cheap structural test, so that an activation outside these families (tanh, softplus, a
    user's expression) goes to the generic path at once instead of SymPy searching for minutes.
    """
    expr = simplify_distributions(expr, (x,))
    steps = expr.has(sp.Heaviside)
    for f in expr.atoms(sp.Function):
        if not f.has(x) or isinstance(f, sp.Heaviside):
            continue
        if steps or len(f.args) != 1:
            return False
        try:
            degree = sp.Poly(f.args[0], x).degree()
        except sp.PolynomialError:
            return False
        if isinstance(f, (sp.erf, sp.sin, sp.cos)) and degree == 1:
            continue
        if isinstance(f, sp.exp) and degree <= 2:
            continue
        return False
    return all(p.exp.is_Integer and p.exp > 0 for p in expr.atoms(sp.Pow) if p.base.has(x))


def _finish(level: sp.Expr) -> tuple:
    level = tidy_roots(sp.powsimp(sp.expand(real_form(level)), combine="exp"))
    return (in_correlation(level),) if singular_at_full_correlation(level) else (level,)


@lru_cache(maxsize=None)
def pair_chain(name: str) -> PairClosedForms | None:
    """The Price chain of <phi phi>, or None if phi has no closed form.

    Integrands that close without a chain (polynomials, exponentials, sin, cos) give a chain of
    one level; then the Price chain (steps, erf); last the rules with inner chains (GELU: Stein's
    lemma leaves expectations of erf products, each closed by its own chain).
    """
    phi = activations.get(name).phi
    (x,) = variables(1)
    if not closable(phi(x), x):
        return None
    x1, x2 = variables(2)
    pair = expect(phi(x1) * phi(x2), model.K)
    direct = close(pair, chains=False)
    if not direct.has(GaussianExpectation):
        return PairClosedForms(name, _finish(direct))
    levels = price_chain(sp.Lambda(x, phi(x)), sp.Lambda(x, phi(x)))
    if levels is not None:
        return PairClosedForms(name, levels)
    nested = close(pair, chains=True)
    if not nested.has(GaussianExpectation):
        return PairClosedForms(name, _finish(nested))
    return None


@lru_cache(maxsize=None)
def has_closed_form(name: str) -> bool:
    return pair_chain(name) is not None


@dataclass(frozen=True)
class Recipe:
    """How an activation's chain starts: derivative order and what closes its expectation."""

    order: int
    base: str  # "density" (a delta), "gaussian" (Gaussian factors tilt away), "polynomial"


@lru_cache(maxsize=None)
def recipes() -> dict:
    """name -> Recipe for every activation with closed forms (derived, not declared)."""
    (x,) = variables(1)
    out = {}
    for name in sorted(activations.ACTIVATIONS):
        forms = pair_chain(name)
        if forms is None:
            continue
        order = len(forms.chain) - 1
        top = derivative(activations.get(name)(x), x, order)
        base = (
            "density" if top.has(sp.DiracDelta) else "gaussian" if top.has(sp.exp) else "polynomial"
        )
        out[name] = Recipe(order, base)
    return out


@lru_cache(maxsize=None)
def pair_expectation(name: str) -> tuple[sp.Expr, sp.Expr, sp.Expr]:
    """(P11, P22, P12) of two inputs, closed form, in terms of model.K."""
    k11, k22, k12 = model.K
    return (single_expectation(name, k11), single_expectation(name, k22), pair_chain(name).phiphi)


def single_expectation(name: str, variance: sp.Expr) -> sp.Expr:
    """P(K) = <phi(h)^2> of one input: the pair form on the diagonal."""
    k11, k22, k12 = model.K
    diagonal = pair_chain(name).phiphi.xreplace({k11: variance, k22: variance, k12: variance})
    return tidy_roots(diagonal)


def mean(name: str, variance: sp.Expr) -> sp.Expr:
    """<phi(h)> for h ~ N(0, variance): the drift of the reduced block."""
    (x1,) = variables(1)
    return close(expect(activations.get(name)(x1), (variance,)))
