"""The one-loop formulas as SymPy sums over layers of pair-space matrices (section "one-loop").

These are structural definitions, not single expressions of the derivation module: the sums over
layers and the contractions are what the generated accumulation runs
(``codegen/templates/oneloop.tmpl``), and the quantities summed are the derived coefficients.
Matrices are non-commutative symbols, so every product keeps its order; the step
r^2 sigma_w^2 of T = 1 + r^2 sigma_w^2 J is passed in as derived from the layer map.
"""

from __future__ import annotations

import sympy as sp

from ..derivations import model
from .blocks import Display, Prose, Ref
from .nodes import (
    AtLayer,
    AtLayers,
    Contraction,
    Covariance,
    Mean,
    OrderedProduct,
    Subscripted,
    Transposed,
)
from .views import eq

l, N = model.layer, model.width
l2 = sp.Symbol("l'", integer=True, nonnegative=True)
k, m, m2 = (sp.Symbol(name, integer=True, nonnegative=True) for name in ("k", "m", "m'"))


def matrix(name: str) -> sp.Symbol:
    """A pair-space matrix (one number for one input)."""
    return sp.Symbol(name, commutative=False)


def c(late, early) -> Subscripted:
    """c_{l,m}: how the noise injected at layer m reaches the kernel of layer l."""
    return Subscripted(matrix("c"), late, early)


def _half(expr) -> sp.Expr:
    # A coefficient 1/2 in front of the contraction, not a fraction around it.
    return sp.Mul(sp.UnevaluatedExpr(sp.Rational(1, 2)), expr, evaluate=False)


def transfer_blocks(step) -> list:
    """T, the c recursion, the conditional kernel and its fluctuations."""
    T, J, eta, dK, C = matrix("T"), matrix("J"), matrix("eta"), matrix("dK_C"), matrix("C")
    K_C, K = matrix("K_C"), matrix("K")
    return [
        Display(
            ("transfer-T", eq(AtLayer(T, l), 1 + step * AtLayer(J, l))),
            ("transfer-c-first", eq(c(m + 1, m), step)),
            ("transfer-c-next", eq(c(l + 1, m), AtLayer(T, l) * c(l, m))),
            ("transfer-c", eq(c(l, m), step * OrderedProduct(T, l - 1, m + 1))),
        ),
        Prose(
            "The conditional kernel adds up the auxiliary fields; its fluctuation is the "
            "injected noise carried forward, and the noise of different layers is correlated "
            "through the four-point covariance, so"
        ),
        Display(
            (
                "transfer-K_C",
                eq(AtLayer(K_C, l), AtLayer(K, 0) + model.r**2 * sp.Sum(AtLayer(C, k), (k, 1, l))),
            ),
            (
                "transfer-fluctuation",
                eq(AtLayer(dK, l), sp.Sum(c(l, m) * AtLayer(eta, m), (m, 0, l - 1))),
            ),
            (
                "transfer-conditional",
                eq(
                    N * Covariance(AtLayer(dK, l), AtLayer(dK, l2)),
                    sp.Sum(
                        c(l, m) * AtLayers(matrix("A"), m, m2) * Transposed(c(l2, m2)),
                        (m2, 0, l2 - 1),
                        (m, 0, l - 1),
                    ),
                ),
            ),
        ),
    ]


def covariance_blocks(step, tadpole_observable) -> list:
    """N Cov(Khat^l, Khat^l'), the mean shift and its three parts, and the tadpole correction.

    ``tadpole_observable``: the shift at l = 1 of the tadpole written with Cov(Khat^m), the
    form this project corrects (from the derived X and the step)."""
    Khat, K, A, B, X = (matrix(n) for n in ("Khat", "K", "A", "B", "X"))
    J, H, F, mu, Delta, K_C = (matrix(n) for n in ("J", "H", "F", "mu", "Delta", "K_C"))
    covariance = (
        sp.Sum(c(l, k) * AtLayers(A, k, m) * Transposed(c(l2, m)), (m, 0, l2 - 1), (k, 0, l - 1))
        + sp.Sum(c(l, k) * AtLayers(B, k, l2), (k, 0, l - 1))
        + Transposed(sp.Sum(c(l2, m) * AtLayers(B, m, l), (m, 0, l2 - 1)))
        + AtLayers(X, l, l2)
    )
    mean = (
        AtLayer(J, m) * N * AtLayer(Delta, m)
        + _half(Contraction(AtLayer(H, m), N * Covariance(AtLayer(K_C, m), AtLayer(K_C, m))))
        + sp.Sum(Contraction(c(m, k), AtLayers(F, m, k)), (k, 0, m - 1))
    )
    shift = Mean(AtLayer(Khat, l)) - AtLayer(K, l)
    return [
        Prose(
            "The observable's covariance adds to the conditional kernel's the cross terms and "
            "the sampling noise; for ",
            sp.Gt(k, m),
            " the four-point covariance is the transpose, ",
            eq(AtLayers(A, k, m), Transposed(AtLayers(A, m, k))),
            ":",
        ),
        Display(
            ("covariance", eq(N * Covariance(AtLayer(Khat, l), AtLayer(Khat, l2)), covariance))
        ),
        Prose(
            "The mean shift is exactly a sum over layers of the shifts ",
            AtLayer(mu, m),
            " of the expected activation products, ",
            eq(
                AtLayer(mu, m),
                Mean(AtLayer(matrix("Phihat"), m))
                - sp.Function("P", commutative=False)(AtLayer(K, m)),
            ),
            ", because the layer map is linear in them. At order ",
            1 / N,
            " each has three parts: the earlier shift ",
            AtLayer(Delta, m),
            " carried through the Jacobian, the tadpole (the curvature ",
            AtLayer(H, m),
            " of the expectation times the conditional kernel's covariance ",
            Ref("one-loop:transfer-conditional"),
            ") and the self-feedback:",
        ),
        Display(
            ("shift", eq(shift, step * sp.Sum(AtLayer(mu, m), (m, 0, l - 1)))),
            ("Delta", eq(AtLayer(Delta, m), Mean(AtLayer(Khat, m)) - AtLayer(K, m))),
            ("mu", eq(N * AtLayer(mu, m), mean)),
        ),
        Prose(
            "Here ",
            Contraction(AtLayer(H, m), matrix("V")),
            " contracts the Hessian's two derivative indices with the matrix, ",
            Contraction(matrix("c"), matrix("F")),
            " the self-feedback's perturbed entry and early product with the transfer "
            "matrix. Structural definitions: the sums over layers, the transfer matrices ",
            Ref("one-loop:transfer-c"),
            " and these contractions are the accumulation that "
            "\\texttt{generated/oneloop\\_*.py} runs in ",
            sp.Function("O")(sp.Symbol("L") ** 2),
            " operations; the quantities summed are the derived objects: ",
            A,
            " and ",
            F,
            " above, ",
            B,
            " and ",
            X,
            " from Stein's and Isserlis' theorems, ",
            J,
            " and ",
            H,
            " the derivatives of the closed forms (section ``Gaussian closed forms''), ",
            matrix("T"),
            " the layer Jacobian (section ``Response and the optimal residual scale'').",
        ),
        Prose(
            "Correction to the usual one-loop tadpole: the form ",
            _half(Contraction(AtLayer(H, m), N * Covariance(AtLayer(Khat, m), AtLayer(Khat, m)))),
            " uses the covariance of the observable. A neuron's pre-activation at layer ",
            m,
            " is Gaussian with the conditional "
            "kernel, so the curvature acts on the conditional kernel's covariance, the first "
            "term of ",
            Ref("one-loop:covariance"),
            ". The two differ already at the first layer: ",
            eq(AtLayer(K_C, 0), AtLayer(K, 0)),
            " is fixed, so ",
            eq(AtLayer(mu, 0), 0),
            " and ",
            eq(Mean(AtLayer(Khat, 1)), AtLayer(K, 1)),
            " exactly, while the observable-kernel form predicts the shift ",
            tadpole_observable,
            " (one input). Simulation of erf networks rejects that shift and agrees with zero "
            "(\\texttt{tests/test\\_one\\_loop.py}).",
        ),
    ]
