"""Section "response": the layer Jacobian, chi as the ordered product, the sensitivity, the
continuum flow and the optimum condition with its first-order correction, and the sign limit."""

from __future__ import annotations

import sympy as sp

from ...derivations import action, activations, closed_forms, continuum, model, response, saturated
from ...derivations.expectation import variables
from ..blocks import Display, Heading, Prose, Ref, Section
from ..nodes import AtLayer, AtLayers, OrderedProduct, Subscripted, layered
from ..views import eq, phi, unevaluated_expectation

L = sp.Symbol("L", positive=True)
K, K12 = model.K1, model.K[2]
# The equal-norm state (K11, K12) of response and continuum is shown as (K, K12).
EQUAL_NORM = {model.K[0]: K}
SHOWN = "erf"  # the activation whose closed forms are displayed
STAR = {name: sp.Symbol(f"{name}_star", positive=True) for name in ("tau", "u", "r")}


def _matrix(name: str) -> sp.Symbol:
    return sp.Symbol(name, commutative=False)


def _chi(late, early) -> AtLayers:
    return AtLayers(_matrix("chi"), late, early)


def _chi_12(late, early) -> Subscripted:
    """The K12 entry of the K12 column of chi (a number: commutative)."""
    return Subscripted(AtLayers(sp.Symbol("chi"), late, early), sp.Integer(12), sp.Integer(12))


# ---- the layer Jacobian ------------------------------------------------------------------------


def _generic_jacobian() -> sp.Matrix:
    """J = (T - 1)/(r^2 sigma_w^2) of the full block for a generic activation: Price's theorem on
    the layer map K + r^2 C(K); its zeros are checked to be zeros for every closed-form
    activation (linear has more)."""
    saddle = action.saddle_point(2, action.phi_source(phi, model.K, 2))
    increment = action.full_block_increment(tuple(saddle.fields[c] for c in model.C), 2)
    update = sp.Matrix([k + second for k, second in zip(model.K, increment.second)])
    J = ((update.jacobian(model.K) - sp.eye(3)) / continuum.step_size()).applyfunc(sp.simplify)
    if J.has(model.r):
        raise ValueError("the full block's layer Jacobian is not 1 + r^2 sigma_w^2 J")
    for name in closed_forms.recipes():
        T = response.layer_jacobian("full", name, 2).matrix
        if any(J[i] == 0 and sp.simplify(T[i] - sp.eye(3)[i]) != 0 for i in range(9)):
            raise ValueError(f"{name}: the layer Jacobian lacks a zero of the generic one")
    return J


def _generic_rows() -> list:
    """J as its pattern of entries J_{p,s} = dP_p/dK_s, then each non-zero entry."""
    J = _generic_jacobian()
    labels = [sp.Integer(p) for p in model.PAIRS]

    def entry(i, j):
        return Subscripted(sp.Symbol("J"), labels[i], labels[j])

    pattern = sp.ImmutableMatrix(3, 3, lambda i, j: 0 if J[i, j] == 0 else entry(i, j))
    rows = [("J-generic", eq(_matrix("J"), pattern))]
    return rows + [
        (f"J-{labels[i]}-{labels[j]}", eq(entry(i, j), J[i, j]))
        for i in range(3)
        for j in range(3)
        if J[i, j] != 0
    ]


def _equal_norm_jacobian() -> sp.Matrix:
    """T of the equal-norm map (state K, K12) for the shown activation, simplified for reading."""
    T = response.correlation_response("full", SHOWN).jacobian
    one = sp.eye(T.rows)
    return sp.ImmutableMatrix(one + (T - one).applyfunc(sp.simplify)).xreplace(EQUAL_NORM)


def _chi_rows() -> list:
    """chi^{l+1,0} = T^l chi^{l,0}, the ordered product, and the K12 entry as a scalar product,
    which holds because the K12 column has only its 12 entry (response.correlation_response)."""
    tr = response.correlation_response("full", SHOWN)
    if tr.entries != ((1, 0),) or tr.tangent_update[0] != tr.jacobian[1, 1] * tr.tangent[0]:
        raise ValueError("the K12 column of chi is no longer its 12 entry alone")
    l, T = model.layer, _matrix("T")
    T_12 = Subscripted(AtLayer(sp.Symbol("T"), l), sp.Integer(12), sp.Integer(12))
    return [
        ("chi-step", eq(_chi(l + 1, 0), AtLayer(T, l) * _chi(l, 0))),
        ("chi-product", eq(_chi(L, 0), OrderedProduct(T, L - 1, 0))),
        ("chi-12", eq(_chi_12(L, 0), sp.Product(T_12, (l, 0, L - 1)))),
    ]


def _sensitivity() -> sp.Eq:
    """S = dc^L/dc^0 from response.sensitivity; its tangent carries dK^0_12/dc^0 = K^0."""
    tr = response.correlation_response("full", SHOWN)
    S = response.sensitivity("full", SHOWN)
    shown = {tr.tangent[0]: _chi_12(L, 0) * AtLayer(K, 0), model.K[0]: AtLayer(K, L)}
    return eq(sp.Symbol("S"), S.xreplace(shown))


# ---- continuum limit ---------------------------------------------------------------------------


def _flow_rows() -> list:
    fl = continuum.flow("full", SHOWN)
    tau = continuum.tau
    rows = [
        (
            f"flow-{s.name}",
            eq(sp.Derivative(sp.Function(s.name)(tau), tau), sp.expand(f).xreplace(EQUAL_NORM)),
        )
        for s, f in zip((K, K12), fl.rhs)
    ]
    rows.append(("flow-a", eq(sp.Symbol("a"), sp.simplify(fl.chi_rate).xreplace(EQUAL_NORM))))
    return rows


def _rate() -> sp.Eq:
    """d ln S/dtau = a - F_K/K for S = chi K^0/K with chi' = a chi, K' = F_K (generic)."""
    a, F_K = sp.Symbol("a"), Subscripted(sp.Symbol("F"), K)
    S = sp.Function("S", positive=True)(continuum.tau)
    return eq(sp.Derivative(sp.log(S), continuum.tau), continuum.log_sensitivity_rate(a, F_K, K))


def _optimum() -> sp.Eq:
    """The condition as derived, each side simplified for reading (the round trip compares the
    printed sides with the unsimplified ones)."""
    condition = continuum.optimum_condition(continuum.flow("full", SHOWN))
    return eq(*(sp.simplify(side).xreplace(EQUAL_NORM) for side in condition.args))


def _l0() -> sp.Eq:
    tau_star = STAR["tau"]
    Phi, Psi = sp.Function("Phi"), sp.Function("Psi")
    curvature = sp.Derivative(Phi(tau_star), (tau_star, 2))
    shift = Psi(tau_star) + tau_star * sp.Derivative(Psi(tau_star), tau_star)
    return eq(sp.Symbol("L0"), continuum.l0_formula()(tau_star, curvature, shift))


def _r_star() -> sp.Eq:
    """r* from eps (L - L0) = tau*, eps = r^2 sigma_w^2, solved for r > 0 at L > L0."""
    r, remaining = sp.Symbol("r", positive=True), sp.Symbol("remaining", positive=True)
    (solution,) = sp.solve(
        sp.Eq(continuum.step_size().subs(model.r, r) * remaining, STAR["tau"]), r
    )
    return eq(STAR["r"], solution.xreplace({remaining: L - sp.Symbol("L0")}))


def _modified_flow() -> sp.Eq:
    G, F, DF = continuum.modified_flow_correction(2)
    return eq(sp.ImmutableMatrix(sp.symbols("G1:3")), sp.ImmutableMatrix(G))


# ---- the sign limit ----------------------------------------------------------------------------


def _saturated_rows() -> list:
    lam, c = sp.Symbol("lambda", positive=True), saturated.c
    x1, x2 = variables(2)
    erf = activations.get("erf")
    scaled = (lam * K, lam * K, lam * c * K)
    p11, p12 = saturated.saturated_pair()
    f, c_x = sp.Function("f"), sp.Symbol("c_x")
    return [
        (
            "sign-P11",
            eq(sp.Limit(unevaluated_expectation(erf(x1) ** 2, (lam * K,)), lam, sp.oo), p11),
        ),
        (
            "sign-P12",
            eq(sp.Limit(unevaluated_expectation(erf(x1) * erf(x2), scaled), lam, sp.oo), p12),
        ),
        ("sign-flow", eq(f(c), saturated.correlation_flow())),
        ("sign-S", eq(sp.Symbol("S"), f(layered("c", L)) / f(layered("c", 0)))),
        ("sign-cx", eq(c_x, saturated.optimal_correlation())),
        # f and c_x are the rows above: naming them in u* is an exact rewrite.
        (
            "sign-u",
            eq(
                STAR["u"],
                saturated.log_growth().xreplace(
                    {
                        saturated.correlation_flow(): f(c),
                        saturated.optimal_correlation(): c_x,
                        saturated.c0: layered("c", 0),
                    }
                ),
            ),
        ),
    ]


def _saturated_r(block: str) -> Display:
    shown = {saturated.u: STAR["u"], sp.Symbol("K0", positive=True): AtLayer(K, 0)}
    return Display(
        *(
            (
                f"sign-r-{block}-{mode}",
                eq(STAR["r"], saturated.optimal_r(block, mode).xreplace(shown)),
            )
            for mode in model.INPUT_MODES
        )
    )


# ---- the section -------------------------------------------------------------------------------


def build() -> list:
    l, r, sw2 = model.layer, model.r, model.sigma_w2
    T, J = _matrix("T"), _matrix("J")
    tau, eps = continuum.tau, continuum.eps
    c = saturated.c
    dK = {block: saturated._diagonal_step(block) for block in model.BLOCKS}
    return [
        Prose(
            "The response of the kernel to its input, ",
            eq(_chi(L, 0), sp.Derivative(layered("K", L), layered("K", 0))),
            ", is the product of the Jacobians ",
            AtLayer(T, l),
            " of the mean-field layer "
            "map (section ``Mean-field recursion'') with respect to its state, along the "
            "mean-field path. For the full "
            "block the map is ",
            eq(layered("K", l + 1), layered("K", l) + r**2 * layered("C", l + 1)),
            " with the auxiliary field of section ``Action and saddle "
            "point'', so in pair space (11, 22, 12), for any activation (Price's theorem):",
        ),
        Display(("T", eq(T, 1 + continuum.step_size() * J)), *_generic_rows()),
        Prose(
            "No diagonal entry depends on ",
            K12,
            ". For two inputs of equal norm ",
            K,
            " the diagonal entries stay equal, the state is ",
            sp.Tuple(K, K12),
            ", and for ",
            SHOWN,
            " the closed forms give",
        ),
        Display(("T-" + SHOWN, eq(T, _equal_norm_jacobian()))),
        Prose(
            "The response is propagated forward with the kernel (forward-mode differentiation); ",
            _chi(0, 0),
            " is the identity for a given kernel and the input layer's ",
            eq(
                sp.Derivative(layered("K", 0), sp.Symbol("G")),
                response.input_jacobian("layer", 1)[0, 0],
            ),
            " otherwise. Because ",
            T,
            " is lower triangular in ",
            sp.Tuple(K, K12),
            ", the ",
            K12,
            " column of ",
            _chi(L, 0),
            " has only its 12 entry, a product of numbers:",
        ),
        Display(*_chi_rows()),
        Prose(
            "The sensitivity ",
            eq(sp.Symbol("S"), sp.Derivative(layered("c", L), layered("c", 0))),
            " of the output correlation to "
            "the input correlation follows by the chain rule through ",
            eq(sp.Symbol("c"), K12 / K),
            "; at equal norms ",
            eq(sp.Derivative(layered("K_12", 0), layered("c", 0)), layered("K", 0)),
            ":",
        ),
        Display(("sensitivity", _sensitivity())),
        Heading("Continuum limit and the optimum condition"),
        Prose(
            "With ",
            eq(eps, continuum.step_size()),
            " the equal-norm layer map is exactly one Euler step of a flow in ",
            eq(tau, eps * l),
            " (full block; for the reduced "
            "block with an activation that is not odd the means grow like ",
            r * l,
            " and there is no such flow). For ",
            SHOWN,
            ":",
        ),
        Display(*_flow_rows()),
        Prose(
            "Here ",
            sp.Symbol("a"),
            " is the rate of ",
            sp.log(_chi_12(l, 0)),
            " per unit ",
            tau,
            ". With ",
            sp.Symbol("S"),
            " of ",
            Ref("response:sensitivity"),
            " a function of ",
            tau,
            " alone up to order ",
            eps,
            ", maximising over ",
            r,
            " at fixed depth is maximising over ",
            tau,
            ":",
        ),
        Display(("rate", _rate())),
        Prose(
            "Setting it to zero at the output layer is the local edge-of-chaos condition, "
            "which fixes ",
            STAR["tau"],
            " (",
            SHOWN,
            ", times ",
            sw2,
            "):",
        ),
        Display(("optimum", _optimum())),
        Prose(
            "At finite step the iterates follow the modified flow ",
            eq(sp.Derivative(sp.Function("y")(tau), tau), sp.Symbol("F") + eps * sp.Symbol("G")),
            " (backward error analysis) with",
        ),
        Display(("modified-flow", _modified_flow())),
        Prose(
            "and summing the per-layer logarithms with the Euler-Maclaurin formula (endpoint "
            "coefficient ",
            continuum.euler_maclaurin_endpoint(),
            ") gives ",
            eq(sp.log(sp.Symbol("S")), sp.Function("Phi")(tau) + eps * sp.Function("Psi")(tau)),
            " up to order ",
            eps**2,
            ". Maximising over ",
            eps,
            " at fixed ",
            L,
            " puts the optimum at ",
            eq(eps * (L - sp.Symbol("L0")), STAR["tau"]),
            " up to order ",
            1 / L,
            ", with",
        ),
        Display(("L0", _l0()), ("r-star", _r_star())),
        Heading("The saturated limit"),
        Prose(
            "The sign activation is erf at pre-activation scales large against its width: its "
            "expectations are the limits of erf's closed forms, for two inputs of norm ",
            K,
            " and correlation ",
            c,
            ". Without bias the diagonal then grows by a constant, ",
            dK["full"],
            " per layer in the full block and ",
            dK["reduced"],
            " in the reduced block, and in ",
            eq(sp.Symbol("u"), sp.log(layered("K", l) / layered("K", 0))),
            " the correlation follows an autonomous flow ",
            eq(
                sp.Derivative(sp.Function("c")(sp.Symbol("u")), sp.Symbol("u")), sp.Function("f")(c)
            ),
            " for both blocks. Hence ",
            sp.Symbol("S"),
            " is largest where ",
            sp.Derivative(sp.Function("f")(c), c),
            " vanishes, at ",
            sp.Symbol("c_x"),
            ", reached after ",
            STAR["u"],
            " (only for ",
            sp.Gt(sp.Abs(layered("c", 0)), sp.Symbol("c_x")),
            "):",
        ),
        Display(*_saturated_rows()),
        Prose(
            "With ",
            eq(layered("K", L) / layered("K", 0), sp.exp(STAR["u"])),
            " the optimal "
            "residual scale of the full block, for a given kernel and for an input layer on "
            "inputs of Gram ",
            sp.Symbol("G"),
            ", is",
        ),
        _saturated_r("full"),
        Prose("and of the reduced block"),
        _saturated_r("reduced"),
    ]


SECTION = Section("response", "Response and the optimal residual scale", build)
