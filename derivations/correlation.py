"""The correlation of a two-input kernel and its first and second derivatives (delta method).

A network's output correlation is chat = g(Khat) with g(K) = K12 / sqrt(K11 K22). At one loop,

    E[chat] - g(K) = grad g . (E Khat - K) + (1/2) Hess g : Cov(Khat) + O(1/N^2),

so the sensitivity and the optimal residual scale at width N need grad g and Hess g in the pair
order (11, 22, 12). g is homogeneous of degree 0 in K, which gives the checks below (Euler's
relation for g and for each component of its gradient).
"""

from __future__ import annotations

from functools import lru_cache

import sympy as sp

K11, K22 = sp.symbols("k11 k22", positive=True)
K12 = sp.Symbol("k12", real=True)
PAIR_ORDER = (K11, K22, K12)


def correlation() -> sp.Expr:
    return K12 / sp.sqrt(K11 * K22)


@lru_cache(maxsize=None)
def derivatives() -> tuple[sp.Matrix, sp.Matrix]:
    """(gradient (3,), Hessian (3, 3)) of the correlation in the pair order (11, 22, 12)."""
    g = correlation()
    v = sp.Matrix(PAIR_ORDER)
    grad = sp.Matrix([sp.simplify(sp.diff(g, x)) for x in PAIR_ORDER])
    hess = sp.Matrix(3, 3, lambda i, j: sp.simplify(sp.diff(grad[i], PAIR_ORDER[j])))
    # Degree-0 homogeneity: K . grad g = 0 and Hess g K = -grad g (Euler on each grad component,
    # homogeneous of degree -1).
    if sp.simplify(v.dot(grad)) != 0 or sp.simplify(hess * v + grad) != sp.zeros(3, 1):
        raise AssertionError("correlation derivatives fail Euler's relation")
    return grad, hess
