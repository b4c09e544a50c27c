"""Section "one-loop": the second order of the action, the fluctuation recursion checked against
the Hessian, the derived coefficients (A, F, B, X) and the covariance and mean-shift formulas.

The coefficients are the objects of ``derivations/one_loop.py`` that the code generator prints
into ``generated/oneloop_*.py``. The sums over layers are the structure of the generated
accumulation (``codegen/templates/oneloop.tmpl``): they are built here as SymPy sums of
pair-space matrices (``nodes.py``) from the same transfer matrix T = 1 + r^2 sigma_w^2 J.
"""

from __future__ import annotations

from functools import lru_cache

import sympy as sp

from ...derivations import continuum, gauss, model, one_loop, response
from ...derivations.expectation import Correlation, explicit_correlation
from ..blocks import Display, Heading, Prose, Ref, Section, tagged
from ..layer_sums import covariance_blocks, transfer_blocks
from ..nodes import AtLayer, AtLayers, Covariance, Subscripted, layered
from ..views import ACTION, LAYER, ONE_INPUT_CONJUGATE, eq, layer_action_equation, phi

# One input: the early and late kernel of a neuron's walk at layers k < m.
EARLY, LATE = sp.Symbol("k", integer=True), sp.Symbol("m", integer=True)
(_KE,), (_KL,) = one_loop.early_late_symbols(1)
WALK = {_KE: AtLayer(model.K1, EARLY), _KL: AtLayer(model.K1, LATE)}
RHO = sp.Symbol("rho_km", positive=True)  # the walk's correlation, rho_{km}
DEPTH = 3  # layers of the action whose Hessian is inverted


@lru_cache(maxsize=None)
def _step() -> sp.Expr:
    """r^2 sigma_w^2, read off the full block's layer Jacobian T = 1 + step * dP/dK (erf)."""
    T = response.layer_jacobian("full", "erf", 1).matrix[0, 0]
    step = sp.simplify((T - 1) / sp.diff(gauss.single("erf", model.K1), model.K1))
    if step != continuum.step_size():
        raise ValueError(f"the layer Jacobian is not 1 + r^2 sigma_w^2 J: step {step}")
    return step


# ---- second order of the action -----------------------------------------------------------------


def _action_rows() -> list:
    S = layer_action_equation(one_loop.layer_action_second_order(1), 1)
    Ct = AtLayer(ONE_INPUT_CONJUGATE, LAYER)
    return [S, eq(sp.Derivative(AtLayer(ACTION, LAYER), (Ct, 2)), sp.diff(S.rhs, Ct, 2))]


# ---- the Hessian check on three layers ----------------------------------------------------------


def _check_symbols():
    """hessian_covariance's J^n and A^{mm'} (one input, abstract) -> display nodes."""
    J = {sp.Symbol(f"J{n}", real=True): AtLayer(sp.Symbol("J"), n) for n in range(DEPTH)}
    A = {
        sp.Symbol(f"A{i}{j}", real=True): AtLayers(sp.Symbol("A"), i, j)
        for i in range(DEPTH)
        for j in range(i, DEPTH)
    }
    return J, A


def _collected(expr, A) -> sp.Expr:
    """expr collected in the A's, each coefficient factored: an exact rewrite for reading."""
    return sp.collect(sp.expand(expr), list(A), sp.factor)


def _fluctuation(l, lp) -> sp.Expr:
    dK = sp.Symbol("dK_C")
    return model.width * Covariance(AtLayer(dK, l), AtLayer(dK, lp))


def _hessian_rows():
    """Both sides of the check, the recursion's with its c_{l,m} as symbols, and the c values.

    Raises if substituting the c values does not give the action's covariance."""
    check = one_loop.hessian_covariance(DEPTH)
    J, A = _check_symbols()
    step = _step()

    def a(m, mp):
        return AtLayers(sp.Symbol("A"), min(m, mp), max(m, mp))

    def c_value(l, m):
        return step * sp.Mul(*[1 + step * AtLayer(sp.Symbol("J"), n) for n in range(m + 1, l)])

    c = {(l, m): Subscripted(sp.Symbol("c"), l, m) for l in range(1, DEPTH + 1) for m in range(l)}
    pairs = [(l, lp) for l in range(1, DEPTH + 1) for lp in range(l, DEPTH + 1)]
    action_rows, recursion_rows = [], []
    for l, lp in pairs:
        from_action = check.from_action[l - 1, lp - 1].xreplace(J).xreplace(A)
        summed = sp.Add(*[c[l, m] * a(m, mp) * c[lp, mp] for m in range(l) for mp in range(lp)])
        substituted = summed.xreplace({c[k]: c_value(*k) for k in c})
        recursion = check.from_recursion[l - 1, lp - 1].xreplace(J).xreplace(A)
        if sp.expand(substituted - from_action) != 0 or sp.expand(recursion - from_action) != 0:
            raise ValueError(f"Hessian and recursion disagree at layers {l}, {lp}")
        action_rows.append(
            (f"action-{l}{lp}", eq(_fluctuation(l, lp), _collected(from_action, A.values())))
        )
        recursion_rows.append((f"recursion-{l}{lp}", eq(_fluctuation(l, lp), summed)))
    values = [(f"c{l}{m}", eq(c[l, m], c_value(l, m))) for (l, m) in c if m < l - 1]
    return action_rows, recursion_rows, values


# ---- the derived coefficients --------------------------------------------------------------------


def _noise_rows() -> list:
    """X = Cov(h h, h' h') for two inputs (a pair-space matrix) and one input."""
    X = sp.Symbol("X")
    return [
        ("X-pair", eq(X, sp.ImmutableMatrix(one_loop.sampling_noise(2)))),
        ("X-single", eq(X, one_loop.sampling_noise(1)[0, 0])),
    ]


def _cross_rows() -> list:
    """B_{p,q} in terms of J_{p,s} = dP_p/dK_s; one input first, then the pair entries."""
    B, J = sp.Symbol("B"), sp.Symbol("J")
    rows = [
        ("B-single", eq(B, one_loop.response_cross(1)[0, 0].xreplace({one_loop.JACOBIAN[0, 0]: J})))
    ]
    labels = [sp.Integer(p) for p in model.PAIRS]
    shown = {
        one_loop.JACOBIAN[i, j]: Subscripted(J, labels[i], labels[j])
        for i in range(3)
        for j in range(3)
    }
    cross = one_loop.response_cross(2)
    rows += [
        (
            f"B-{labels[i]}-{labels[j]}",
            eq(Subscripted(B, labels[i], labels[j]), cross[i, j].xreplace(shown)),
        )
        for i in range(3)
        for j in range(3)
    ]
    return rows


def _walk() -> sp.Expr:
    return sp.ImmutableMatrix(one_loop.walk_covariance((_KE,), (_KL,), 1).xreplace(WALK))


def _relu_rows() -> list:
    """rho_{km}, A^{km} and F^{mk} of relu, one input, with the walk's correlation named."""
    corr = Correlation(_KE, _KL, _KE)
    named = {corr: RHO}
    A = one_loop.four_point("relu", 1)[0, 0]
    F = one_loop.self_feedback("relu", 1)[0][0][0]
    return [
        ("rho", eq(RHO, explicit_correlation(corr).xreplace(WALK))),
        ("A-relu", eq(AtLayers(sp.Symbol("A"), EARLY, LATE), A.xreplace(named).xreplace(WALK))),
        ("F-relu", eq(AtLayers(sp.Symbol("F"), LATE, EARLY), F.xreplace(named).xreplace(WALK))),
    ]


def _erf_rows() -> list:
    """A^{km} of erf as the path integral over s in [0, 1], its integrand simplified for reading
    with D(s) = det(1 + 2 Sigma_s) (the tilted Gaussian's normalisation) named; exact rewrites."""
    integral = one_loop.four_point("erf", 1)[0, 0]
    ((s, lo, hi),) = integral.limits
    scaled = one_loop.walk_covariance((_KE,), (_KL,), 1)
    scaled[0, 1] = scaled[1, 0] = s * scaled[0, 1]
    det = sp.expand((sp.eye(2) + 2 * scaled).det())
    D = sp.Function("D", positive=True)(s)
    body = sp.simplify(integral.function)
    if not body.has(det):
        raise ValueError("the erf four-point integrand no longer has det(1 + 2 Sigma_s)")
    body = body.xreplace({det: D}).replace(
        lambda e: e.is_Add and e.has(s) and not e.has(D), lambda e: 2 * D + sp.expand(e - 2 * det)
    )
    difference = body.xreplace({D: det}) - integral.function
    for point in (
        (sp.Rational(3, 7), sp.Rational(5, 3), sp.Rational(2, 5)),
        (sp.Rational(11, 4), sp.Rational(13, 5), sp.Rational(9, 10)),
    ):
        if abs(difference.xreplace(dict(zip((_KE, _KL, s), point))).evalf(30)) > 1e-25:
            raise ValueError("the rewritten erf integrand differs from the derived one")
    sigma = sp.Symbol("Sigma")
    return [
        ("Sigma-s", eq(Subscripted(sigma, s), sp.ImmutableMatrix(scaled.xreplace(WALK)))),
        ("D", eq(D, det.xreplace(WALK))),
        (
            "A-erf",
            eq(
                AtLayers(sp.Symbol("A"), EARLY, LATE), sp.Integral(body, (s, lo, hi)).xreplace(WALK)
            ),
        ),
    ]


def _observable_kernel_tadpole() -> sp.Expr:
    """The tadpole written with the observable kernel, at l = 1, one input: step (1/2) H^0 : N Cov(Khat^0),
    N Cov = X(K^0) (the form docs/theory, "The tadpole correction", rejects)."""
    X = one_loop.sampling_noise(1)[0, 0].xreplace({model.K1: AtLayer(model.K1, 0)})
    return _step() * sp.Rational(1, 2) * layered("H", 0) * X


# ---- the section ---------------------------------------------------------------------------------


def build() -> list:
    l, N, sw2 = model.layer, model.width, model.sigma_w2
    Ct, J, A = layered("Ct", l), sp.Symbol("J"), sp.Symbol("A")
    k, lp = sp.Symbol("k", integer=True), sp.Symbol("l'", integer=True)
    action_rows, recursion_rows, c_values = _hessian_rows()
    s = sp.Symbol("s", nonnegative=True)
    return [
        Prose(
            "At width ",
            N,
            " the kernel fluctuates by order ",
            1 / sp.sqrt(N),
            " and its mean moves by order ",
            1 / N,
            ". Both come from the Gaussian fluctuations around the "
            "saddle point (full block). Expanding the cumulant generating function to second "
            "order in ",
            Ct,
            " gives the action of a layer, here for one input and a generic activation:",
        ),
        tagged("action", _action_rows(), ("S2", "ddCt")),
        Prose(
            "The second derivative in ",
            Ct,
            " is ",
            sw2**2,
            " times the variance of ",
            phi(layered("h", l - 1)) ** 2,
            "; between the conjugate fields of layers ",
            l,
            " and ",
            lp,
            " it is ",
            sw2**2,
            " times the four-point covariance ",
            AtLayers(A, l - 1, lp - 1),
            " below. The mixed derivative in ",
            Ct,
            " and ",
            layered("C", k),
            " is ",
            sp.S.NegativeOne,
            " for ",
            eq(k, l),
            ", ",
            _step() * layered("J", l - 1),
            " for ",
            sp.Lt(k, l),
            " (the causal response; ",
            AtLayer(J, l - 1),
            " is the Jacobian of the expectation at the kernel ",
            layered("K", l - 1),
            ") and zero for ",
            sp.Gt(k, l),
            "; the second derivatives in the auxiliary fields vanish.",
        ),
        Heading("The fluctuation recursion"),
        Prose(
            "Inverting the response block gives a linear recursion for the fluctuations of the "
            "conditional kernel ",
            layered("K_C", l),
            " (the kernel given the auxiliary fields of all layers up to ",
            l,
            "): the noise ",
            layered("eta", sp.Symbol("m")),
            " a layer injects, with ",
            N * Covariance(layered("eta", sp.Symbol("m")), layered("eta", sp.Symbol("m'"))),
            " equal to the four-point covariance, is carried to later layers by the transfer "
            "matrices of the mean-field map. In pair space (matrices; one number for one "
            "input):",
        ),
        *transfer_blocks(_step()),
        Prose(
            "The check: on three layers with one input, abstract Jacobians ",
            layered("J", sp.Symbol("n")),
            " and covariances ",
            AtLayers(A, sp.Symbol("m"), sp.Symbol("m'")),
            ", inverting the quadratic action "
            "(the Gaussian integral over the fields) gives the covariance of ",
            layered("dK_C", l),
            " (collected in the ",
            A,
            "'s for reading):",
        ),
        Display(*action_rows),
        Prose(
            "The recursion's sum ",
            Ref("one-loop:transfer-conditional"),
            " on the same three layers, with the transfer coefficients ",
            Subscripted(sp.Symbol("c"), l, sp.Symbol("m")),
            " kept as symbols:",
        ),
        Display(*recursion_rows),
        Prose("With ", Ref("one-loop:transfer-c-first"), " and"),
        Display(*c_values),
        Prose(
            "each row equals the corresponding row from the action: the fluctuation recursion "
            "is the inverse of the action's Hessian. The section checks this when it is built "
            "and \\texttt{tests/test\\_one\\_loop.py} checks it in the test suite."
        ),
        Heading("Sampling noise and the response cross term"),
        Prose(
            "The observable ",
            layered("Khat", l),
            " averages products of the pre-activations over the ",
            N,
            " neurons, which adds the sampling noise of the products, ",
            AtLayers(sp.Symbol("X"), l, sp.Symbol("l'")),
            ", and a cross term ",
            AtLayers(sp.Symbol("B"), sp.Symbol("m"), l),
            " between a layer's injected noise and a later product. For two pre-activations "
            "with cross-covariance ",
            model.K1,
            " (along one neuron, the kernel of the earlier "
            "layer), Isserlis' theorem gives the sampling noise in pair order (11, 22, 12):",
        ),
        Display(*_noise_rows()),
        Prose(
            "Stein's lemma twice and Price's theorem give the cross term ",
            AtLayers(sp.Symbol("B"), sp.Symbol("m"), l),
            " through the Jacobian ",
            Subscripted(J, sp.Symbol("p"), sp.Symbol("s")),
            " of the expectations at the kernel ",
            layered("K", sp.Symbol("m")),
            " of the product's layer, with ",
            model.K1,
            " again the cross-covariance ",
            layered("K", sp.Min(sp.Symbol("m"), l)),
            "; one input first:",
        ),
        Display(*_cross_rows()),
        Heading("Two-layer moments along a neuron's walk"),
        Prose(
            "A neuron's pre-activations at layers ",
            sp.Lt(EARLY, LATE),
            " have the joint covariance ",
            _walk(),
            ", so every two-layer moment is an expectation over the "
            "early and the late kernel. The four-point covariance of the products ",
            phi(sp.Symbol("h")) ** 2,
            " at the two layers is ",
            AtLayers(A, EARLY, LATE),
            "; the self-feedback ",
            AtLayers(sp.Symbol("F"), LATE, EARLY),
            " is the covariance "
            "of a neuron's early product with the Price derivative (section ``Price's "
            "theorem'') of its late product: its own past enters the step variance that later "
            "drives it. For relu the reduction rules give closed forms in the walk's "
            "correlation:",
        ),
        Display(*_relu_rows()),
        Prose(
            "For erf the moment does not close directly. Scaling the early-late covariance by ",
            s,
            " from 0 to 1 and applying Price's theorem to the cross entry, the inner "
            "expectations tilt into closed forms and the four-point covariance is a "
            "one-dimensional integral (Gauss-Legendre quadrature in the generated code):",
        ),
        Display(*_erf_rows()),
        Heading("Covariance and mean shift"),
        *covariance_blocks(_step(), _observable_kernel_tadpole()),
    ]


SECTION = Section("one-loop", "One loop: kernel fluctuations and mean shift", build)
