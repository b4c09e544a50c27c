"""Gaussian expectations as first-class SymPy objects.

``GaussianExpectation(Lambda((x1, ..., xn), f), *K)`` is <f(h)> over h ~ N(0, K). Its derivative
with respect to a covariance entry is Price's theorem, implemented as ``fdiff``:

    d<f>/dK_aa = <(1/2) d_a^2 f>,      d<f>/dK_ab = <d_a d_b f>   (a != b, K_ab = K_ba one variable).

So differentiating an action or a recursion that contains expectations needs no special casing:
SymPy's chain rule calls Price's theorem. Closed forms replace these nodes where they exist
(``closed_forms.py``); the code generator prints the remaining ones as quadrature.

Covariance entries are ordered like pair space: the diagonal first, then the upper triangle row by
row; for n = 2 that is (K11, K22, K12).
"""

from __future__ import annotations

from functools import lru_cache
from itertools import combinations

import sympy as sp

from .distributions import derivative, simplify_distributions


@lru_cache(maxsize=None)
def variables(n: int) -> tuple[sp.Symbol, ...]:
    """The canonical integration variables x1..xn (pre-activations h_1..h_n)."""
    return tuple(sp.Symbol(f"x{i + 1}", real=True) for i in range(n))


@lru_cache(maxsize=None)
def entry_positions(n: int) -> tuple[tuple[int, int], ...]:
    """Matrix position (a, b) of each covariance argument, in argument order."""
    return tuple((a, a) for a in range(n)) + tuple(combinations(range(n), 2))


def covariance_matrix(n: int, entries) -> sp.Matrix:
    """The symmetric n x n matrix whose entries are given in argument order."""
    mat = sp.zeros(n, n)
    for (a, b), value in zip(entry_positions(n), entries):
        mat[a, b] = mat[b, a] = value
    return mat


def n_entries(n: int) -> int:
    return n * (n + 1) // 2


class GaussianExpectation(sp.Function):
    """<f(h_1, ..., h_n)> with h ~ N(0, K); args = (Lambda, K entries in pair order)."""

    # A scalar despite its Lambda argument (SymPy would otherwise infer non-commutativity).
    is_commutative = True

    @classmethod
    def eval(cls, integrand, *entries):
        if not isinstance(integrand, sp.Lambda):
            raise TypeError("GaussianExpectation needs a Lambda integrand")
        n = len(integrand.variables)
        if len(entries) != n_entries(n):
            raise TypeError(f"{n}-dimensional expectation needs {n_entries(n)} covariance entries")
        body = integrand.expr
        xs = integrand.variables
        if not body.has(*xs):
            return body
        if isinstance(body, sp.Add):
            return sp.Add(*[cls(sp.Lambda(xs, t), *entries) for t in body.args])
        coeff, rest = body.as_independent(*xs, as_Add=False)
        if coeff != 1:
            return coeff * cls(sp.Lambda(xs, rest), *entries)
        # A jointly odd integrand has zero mean under the symmetric law h -> -h.
        if (
            not body.has(sp.Derivative)
            and sp.expand(body.xreplace({x: -x for x in xs}) + body) == 0
        ):
            return sp.S.Zero
        used = [a for a, x in enumerate(xs) if body.has(x)]
        if len(used) < n:
            return _marginal(body, xs, entries, used)
        for a, x in enumerate(xs):
            if sp.DiracDelta(x) in sp.Mul.make_args(body):
                return _condition_on_zero(body, xs, entries, a)
            for f in sp.Mul.make_args(body):
                if isinstance(f, sp.DiracDelta) and f.args[0] == x and len(f.args) > 1:
                    return _delta_derivative(body, f, xs, entries, a)
        return None

    @property
    def dimension(self) -> int:
        return len(self.args[0].variables)

    @property
    def integrand(self) -> sp.Lambda:
        return self.args[0]

    @property
    def entries(self) -> tuple:
        return self.args[1:]

    def fdiff(self, argindex=1):
        if argindex == 1:
            raise sp.ArgumentIndexError(self, argindex)
        a, b = entry_positions(self.dimension)[argindex - 2]
        return GaussianExpectation(price_operator(self.integrand, a, b), *self.entries)

    def _eval_is_real(self):
        return self.integrand.expr.is_real


def _marginal(body, xs, entries, used):
    """Drop integration variables the integrand does not depend on."""
    n = len(xs)
    cov = covariance_matrix(n, entries)
    k = len(used)
    sub = variables(k)
    new_body = body.xreplace({xs[a]: sub[i] for i, a in enumerate(used)})
    new_entries = [cov[used[i], used[j]] for i, j in entry_positions(k)]
    return GaussianExpectation(sp.Lambda(sub, new_body), *new_entries)


def _condition_on_zero(body, xs, entries, a):
    """<delta(x_a) g(x)> = N(0; K_aa) <g(x)>_{x | x_a = 0}, conditional covariance by Schur complement.

    The integrand has been sifted (``distributions``), so g does not depend on x_a.
    """
    n = len(xs)
    cov = covariance_matrix(n, entries)
    rest = body / sp.DiracDelta(xs[a])
    if rest.has(xs[a]):
        raise ValueError(f"cannot condition {body} on {xs[a]} = 0")
    others = [b for b in range(n) if b != a]
    density = 1 / sp.sqrt(2 * sp.pi * cov[a, a])
    if not others:
        return density * rest
    k = len(others)
    sub = variables(k)
    schur = [
        cov[others[i], others[j]] - cov[others[i], a] * cov[a, others[j]] / cov[a, a]
        for i, j in entry_positions(k)
    ]
    new_body = rest.xreplace({xs[b]: sub[i] for i, b in enumerate(others)})
    return density * GaussianExpectation(sp.Lambda(sub, new_body), *schur)


def _delta_derivative(body, delta, xs, entries, a):
    """<delta^(n)(x_a) g(x)> = (-1)^n d^n/dt^n [N(t; 0, K_aa) <g(x)>_{x | x_a = t}] at t = 0.

    Given x_a = t the other variables are Gaussian with mean (K_ba / K_aa) t and the Schur
    complement as covariance, so the t-derivatives fall on the density and on g's shifted
    arguments (in the sense of distributions: a step in g gives a delta). g does not depend on x_a
    (the integrand has been sifted).
    """
    n = int(delta.args[1])
    rest = body / delta
    if rest.has(xs[a]):
        raise ValueError(f"cannot condition {body} on {xs[a]} = 0")
    cov = covariance_matrix(len(xs), entries)
    others = [b for b in range(len(xs)) if b != a]
    t = sp.Dummy("t", real=True)
    density = sp.exp(-(t**2) / (2 * cov[a, a])) / sp.sqrt(2 * sp.pi * cov[a, a])
    shifted = rest.xreplace({xs[b]: xs[b] + cov[b, a] / cov[a, a] * t for b in others})
    total = sp.S.Zero
    for k in range(n + 1):
        g_k = sp.diff(shifted, t, k).subs(t, 0)
        if g_k == 0:
            continue
        # N^(n-k)(0) <g_k>_{|x_a = 0} = (N^(n-k)(0) / N(0)) <delta(x_a) g_k>
        weight = sp.simplify(sp.diff(density, t, n - k).subs(t, 0) / density.subs(t, 0))
        if weight == 0:
            continue
        body_k = simplify_distributions(sp.DiracDelta(xs[a]) * g_k, xs)
        total += sp.binomial(n, k) * weight * GaussianExpectation(sp.Lambda(xs, body_k), *entries)
    return (-1) ** n * total


def price_operator(integrand: sp.Lambda, a: int, b: int) -> sp.Lambda:
    """D_ab f: (1/2) d_a^2 f on the diagonal, d_a d_b f off it (Price's theorem).

    Derivatives are taken in the sense of distributions, so relu's step and delta are handled.
    """
    xs = integrand.variables
    body = integrand.expr
    if a == b:
        derived = derivative(body, xs[a], 2, xs) / 2
    else:
        derived = derivative(derivative(body, xs[a], 1, xs), xs[b], 1, xs)
    return sp.Lambda(xs, derived)


def expect(integrand_body, entries) -> sp.Expr:
    """<integrand_body> for an expression in the canonical variables x1..xn."""
    n = {1: 1, 3: 2, 6: 3, 10: 4}[len(entries)]
    return GaussianExpectation(sp.Lambda(variables(n), integrand_body), *entries)


class Correlation(sp.Function):
    """rho = K12 / sqrt(K11 K22), the correlation coefficient of a 2x2 covariance.

    Closed forms are written through rho so that generated code can keep it inside [-1, 1]
    against round-off (arcsin, sqrt(1 - rho^2)) and define it as 0 when a variance vanishes.
    Its derivatives are those of the explicit quotient.
    """

    nargs = 3

    @classmethod
    def eval(cls, k11, k22, k12):
        if k11 == k22 == k12:
            return sp.S.One
        if k12.is_zero:
            return sp.S.Zero
        if all(arg.is_number for arg in (k11, k22, k12)):
            return k12 / sp.sqrt(k11 * k22)
        return None

    def fdiff(self, argindex=1):
        k11, k22, k12 = self.args
        if argindex == 1:
            return -self / (2 * k11)
        if argindex == 2:
            return -self / (2 * k22)
        if argindex == 3:
            return 1 / sp.sqrt(k11 * k22)
        raise sp.ArgumentIndexError(self, argindex)

    def _eval_is_real(self):
        return True


def explicit_correlation(expr: sp.Expr) -> sp.Expr:
    """Replace Correlation nodes by the explicit quotient K12 / sqrt(K11 K22)."""
    return expr.replace(Correlation, lambda k11, k22, k12: k12 / sp.sqrt(k11 * k22))


# ---- Gaussian integrals done by completing the square -------------------------------------


def integrate_gaussian(expr: sp.Expr, z: sp.Symbol) -> sp.Expr:
    """int_{-oo}^{oo} A exp(Q(z)) dz for A free of z and Q quadratic in z with Q'' < 0."""
    expr = sp.powsimp(sp.expand_power_exp(sp.sympify(expr)), combine="exp")
    factors = sp.Mul.make_args(expr)
    exponent = sp.S.Zero
    prefactor = sp.S.One
    for f in factors:
        if isinstance(f, sp.exp):
            exponent += f.args[0]
        else:
            prefactor *= f
    if prefactor.has(z):
        raise ValueError("integrate_gaussian needs a prefactor free of the integration variable")
    q = sp.Poly(sp.expand(exponent), z)
    if q.degree() != 2:
        raise ValueError("integrate_gaussian needs an exponent quadratic in the variable")
    a2, a1, a0 = (q.coeff_monomial(z**k) for k in (2, 1, 0))
    return prefactor * sp.sqrt(sp.pi / (-a2)) * sp.exp(a0 - a1**2 / (4 * a2))


def cholesky_expectation(body: sp.Expr, entries) -> sp.Expr:
    """<body(x1, x2)> for an exp-quadratic body, integrated exactly over x = L z.

    Writes x1 = l11 z1, x2 = l21 z1 + l22 z2 with positive l11, l22 so that each step is a
    one-dimensional Gaussian integral, then expresses the result through K = L L^T.
    """
    x1, x2 = variables(2)
    l11, l22 = sp.symbols("l11 l22", positive=True)
    l21 = sp.Symbol("l21", real=True)
    z1, z2 = sp.symbols("z1 z2", real=True)
    weight = sp.exp(-(z1**2 + z2**2) / 2) / (2 * sp.pi)
    integrand = body.xreplace({x1: l11 * z1, x2: l21 * z1 + l22 * z2}) * weight
    inner = integrate_gaussian(integrand, z2)
    result = integrate_gaussian(inner, z1)
    k11, k22, k12 = entries
    back = {l11: sp.sqrt(k11), l21: k12 / sp.sqrt(k11), l22: sp.sqrt(k22 - k12**2 / k11)}
    # The integrand is positive, so the result is the positive root of a rational function of K.
    num, den = sp.fraction(sp.factor(sp.cancel(sp.expand(result**2).xreplace(back))))
    num, den = sp.expand(num), sp.expand(den)
    if sp.Poly(den, *entries).LC() < 0:
        num, den = -num, -den
    return sp.sqrt(num) / sp.sqrt(den)


def gaussian_density(xs, cov: sp.Matrix) -> sp.Expr:
    """The density of N(0, cov) at the point xs."""
    x = sp.Matrix(xs)
    n = len(xs)
    quad = (x.T * cov.inv() * x)[0, 0]
    return sp.exp(-quad / 2) / sp.sqrt((2 * sp.pi) ** n * cov.det())


def integrate_1d(body: sp.Expr, variance: sp.Expr) -> sp.Expr:
    """<body(x1)> for x1 ~ N(0, variance), by SymPy's integrator (the variance is positive)."""
    (x1,) = variables(1)
    v = sp.Dummy("v", positive=True)
    density = sp.exp(-(x1**2) / (2 * v)) / sp.sqrt(2 * sp.pi * v)
    result = sp.integrate(body * density, (x1, -sp.oo, sp.oo), conds="none")
    return sp.simplify(result).xreplace({v: variance})
