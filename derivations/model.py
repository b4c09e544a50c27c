"""The model: symbols, parameters and the discrete choices of the random ResNet.

    h^0 = input layer,   h^l = h^{l-1} + r (W^l phi(h^{l-1}) + b^l)        (block "full")
                         h^l = h^{l-1} + r phi(W^l h^{l-1} + b^l)          (block "reduced")
    W^l_ij ~ N(0, sigma_w^2 / N),  b^l_i ~ N(0, sigma_b^2).

Kernels of two inputs live in "pair space": the three independent entries of a symmetric 2x2
matrix in the fixed order (11, 22, 12). One input uses the single entry 11.
"""

from __future__ import annotations

import sympy as sp

BLOCKS = ("full", "reduced")
INPUT_MODES = ("kernel", "layer")
PAIRS = ("11", "22", "12")
# tr[A B] for symmetric 2x2 matrices written in pair space: the off-diagonal entry counts twice.
PAIR_TRACE_WEIGHTS = (1, 1, 2)

r = sp.Symbol("r", nonnegative=True)
sigma_w2 = sp.Symbol("sigma_w2", positive=True)
sigma_b2 = sp.Symbol("sigma_b2", nonnegative=True)
width = sp.Symbol("N", positive=True, integer=True)
layer = sp.Symbol("l", integer=True, nonnegative=True)


def pair_symbols(stem: str, **assumptions) -> tuple[sp.Symbol, sp.Symbol, sp.Symbol]:
    """Symbols stem11, stem22, stem12 for a symmetric 2x2 matrix in pair space."""
    diag = dict(assumptions)
    off = {k: v for k, v in assumptions.items() if k not in ("positive", "nonnegative")}
    off["real"] = True
    return (
        sp.Symbol(f"{stem}11", **diag),
        sp.Symbol(f"{stem}22", **diag),
        sp.Symbol(f"{stem}12", **off),
    )


def pair_matrix(entries) -> sp.Matrix:
    """The symmetric 2x2 matrix with pair-space entries (11, 22, 12)."""
    e11, e22, e12 = entries
    return sp.Matrix([[e11, e12], [e12, e22]])


def pair_positions(n_inputs: int) -> tuple:
    """Matrix positions of the kernel entries in pair order: (0, 0) for one input; 11, 22, 12."""
    return ((0, 0),) if n_inputs == 1 else ((0, 0), (1, 1), (0, 1))


def kernel_matrix(entries, n_inputs: int) -> sp.Matrix:
    """The kernel as a matrix: 1x1 for one input, the symmetric 2x2 from pair entries."""
    return sp.Matrix([[entries[0]]]) if n_inputs == 1 else pair_matrix(entries)


def pair_entries(matrix: sp.Matrix) -> tuple:
    """Pair-space entries (11, 22, 12) of a symmetric 2x2 matrix."""
    return (matrix[0, 0], matrix[1, 1], matrix[0, 1])


# The mean-field kernel K^{l-1} entering a layer, and the state of the reduced block's mean.
K = pair_symbols("K", positive=True)
K1 = sp.Symbol("K", positive=True)  # one input
m = (sp.Symbol("m1", real=True), sp.Symbol("m2", real=True))
m1 = sp.Symbol("m", real=True)  # one input
# Auxiliary field C^l (covariance of the layer's increment before scaling by r) and its conjugate.
C = pair_symbols("C", positive=True)
Ct = pair_symbols("Ct", real=True)
# Input Gram matrix x.x'/d for input="layer".
G = pair_symbols("G", positive=True)
G1 = sp.Symbol("G", positive=True)
