"""The kernel response chi^{L,0} = dK^L/dK^0 and the sensitivity S = dc^L/dc^0 (mean field).

The per-layer response is the Jacobian of the mean-field layer map (``meanfield.layer_map``) with
respect to its state,

    T = d update / d state,      chi^{l+1,0} = T(state^l) chi^{l,0},   chi^{0,0} = dK^0/d(input),

so chi^{L,0} = T^{L-1} ... T^0 is propagated forward, column by column (forward-mode
differentiation), alongside the kernel. For the full block T = 1 + r^2 sigma_w^2 dP/dK in pair
space; for the reduced block the state also carries the pre-activation means when the activation
is not odd, and T includes them. Which tangent entries can be non-zero follows from the sparsity
of T (``tangent_recursion``): the K12 column of chi has only its 12 entry, because no diagonal
entry and no mean depends on K12, which is why the sensitivity is chi_{12,12} K^0 / K^L.

``layer_jacobian`` is the reusable derived object: the one-loop response (d E[Khat^L] / dK^0 at
width N) differentiates the same layer map.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import sympy as sp

from . import meanfield, model


@dataclass(frozen=True)
class LayerJacobian:
    """T[i, j] = d update_i / d state_j of a mean-field layer map, along the mean-field path."""

    layer: meanfield.LayerMap
    matrix: sp.Matrix


@lru_cache(maxsize=None)
def layer_jacobian(block: str, name: str, n_inputs: int) -> LayerJacobian:
    lm = meanfield.layer_map(block, name, n_inputs)
    return LayerJacobian(lm, sp.Matrix(lm.update).jacobian(lm.state))


@lru_cache(maxsize=None)
def equal_norm_layer_map(block: str, name: str) -> meanfield.LayerMap:
    """Two inputs of equal norm: K11 = K22 = K (symbol K11) and m1 = m2 stay equal at every layer.

    The state is (K, K12) plus the common mean when the block has one. The subspace is invariant
    (checked: the 22 update equals the 11 update on it), so tangents along K12 are those of the
    full pair map.
    """
    lm = meanfield.layer_map(block, name, 2)
    k11, k22, k12 = model.K
    on_subspace = {k22: k11}
    means = tuple(s for s in lm.state[lm.n_kernel :])
    if means:
        on_subspace[means[1]] = means[0]
    update = dict(zip(lm.state, (sp.sympify(u).xreplace(on_subspace) for u in lm.update)))
    dropped = [k22] + ([means[1]] if means else [])
    kept = [k11] + ([means[0]] if means else [])
    for lost, twin in zip(dropped, kept):
        if sp.simplify(update[lost] - update[twin]) != 0:
            raise ValueError(f"{block} block, {name}: equal norms are not preserved")
    state = (k11, k12) + ((means[0],) if means else ())
    fields = tuple(sp.sympify(c).xreplace(on_subspace) for c in lm.fields)
    return meanfield.LayerMap(
        block, name, 2, state, tuple(update[s] for s in state), 2, lm.saddle, fields
    )


@dataclass(frozen=True)
class TangentRecursion:
    """Forward-mode propagation of some columns of chi along the layers.

    ``entries`` are the structurally non-zero (row, column) positions, ``tangent`` their symbols
    and ``tangent_update`` their values after one more layer: V <- T(state) V. ``seeds`` are the
    positions given at layer 0 (rows of the kernel); every other entry starts at zero.
    """

    layer: meanfield.LayerMap
    jacobian: sp.Matrix
    n_columns: int
    seeds: tuple
    entries: tuple
    tangent: tuple
    tangent_update: tuple

    def symbol(self, row: int, column: int):
        """The tangent symbol at (row, column), or 0 where the entry vanishes identically."""
        try:
            return self.tangent[self.entries.index((row, column))]
        except ValueError:
            return sp.S.Zero


def structural_pattern(jacobian: sp.Matrix, seeds) -> tuple:
    """Positions (i, c) of chi^{l,0} V^0 that can be non-zero at some layer, given V^0's.

    T has ones plus O(r^2) on its diagonal, so the pattern only grows: iterate to the fixed point.
    An entry counts as zero only when SymPy's derivative is exactly 0: a cancellation missed here
    costs one tangent entry that stays 0, while simplifying every entry cost minutes for
    activations with long closed forms (GELU's reduced block) and found no extra zero for the
    package's activations.
    """
    nonzero = {
        (i, j) for i in range(jacobian.rows) for j in range(jacobian.cols) if jacobian[i, j] != 0
    }
    pattern = set(seeds)
    while True:
        grown = pattern | {(i, c) for (i, j) in nonzero for (jj, c) in pattern if jj == j}
        if grown == pattern:
            return tuple(sorted(pattern))
        pattern = grown


def tangent_recursion(layer: meanfield.LayerMap, seeds, n_columns: int) -> TangentRecursion:
    jac = sp.Matrix(layer.update).jacobian(layer.state)
    entries = structural_pattern(jac, seeds)
    names = [s.name for s in layer.state]
    symbols = tuple(sp.Symbol(f"V_{names[i]}_{c}", real=True) for i, c in entries)
    at = dict(zip(entries, symbols))
    updates = tuple(
        sum((jac[i, j] * at[(j, c)] for j in range(jac.cols) if (j, c) in at), sp.S.Zero)
        for i, c in entries
    )
    return TangentRecursion(layer, jac, n_columns, tuple(sorted(seeds)), entries, symbols, updates)


def input_arguments(mode: str, n_inputs: int) -> tuple:
    """What the caller passes as K0: the input kernel, or the input Gram matrix G = x.x'/d."""
    if mode == "kernel":
        return meanfield.kernel_symbols(n_inputs)
    return (model.G1,) if n_inputs == 1 else model.G


@lru_cache(maxsize=None)
def input_jacobian(mode: str, n_inputs: int) -> sp.Matrix:
    """dK^0 / d(K0 argument): the identity for a given kernel, the input layer's saddle otherwise."""
    return sp.Matrix(meanfield.input_kernel(mode, n_inputs)).jacobian(
        input_arguments(mode, n_inputs)
    )


def input_seeds(n_inputs: int) -> tuple:
    """Positions where dK^0/d(input) can be non-zero, over every input mode."""
    seeds = set()
    for mode in model.INPUT_MODES:
        jac = input_jacobian(mode, n_inputs)
        seeds |= {(i, c) for i in range(jac.rows) for c in range(jac.cols) if jac[i, c] != 0}
    return tuple(sorted(seeds))


@lru_cache(maxsize=None)
def kernel_response(block: str, name: str, n_inputs: int) -> TangentRecursion:
    """The kernel columns of chi^{L,0} dK^0/d(input), seeded with the input Jacobian's entries."""
    lm = meanfield.layer_map(block, name, n_inputs)
    return tangent_recursion(lm, input_seeds(n_inputs), lm.n_kernel)


@lru_cache(maxsize=None)
def correlation_response(block: str, name: str) -> TangentRecursion:
    """The K12 column of chi for two inputs of equal norm, seeded by dK^0_12/dc^0."""
    lm = equal_norm_layer_map(block, name)
    return tangent_recursion(lm, [(1, 0)], 1)


def correlation(entries) -> sp.Expr:
    k11, k22, k12 = entries
    return k12 / sp.sqrt(k11 * k22)


@lru_cache(maxsize=None)
def sensitivity(block: str, name: str) -> sp.Expr:
    """S = dc^L/dc^0 by the chain rule through c = K12/sqrt(K11 K22), in the final state and
    tangent of ``correlation_response`` (which already carries dK^0/dc^0 in its seed)."""
    tr = correlation_response(block, name)
    k11, k22, k12 = model.K
    c = correlation(model.K)
    # Equal norms: dK11 = dK22 = the tangent of K; dK12 its own.
    v = {k11: tr.symbol(0, 0), k22: tr.symbol(0, 0), k12: tr.symbol(1, 0)}
    dc = sum(sp.diff(c, s) * v[s] for s in model.K)
    return sp.simplify(dc.xreplace({k22: k11}))
