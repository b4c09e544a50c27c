"""Build generated functions (codegen AST) from derived SymPy expressions.

Every builder lowers Gaussian-expectation nodes to quadrature helpers, applies common-subexpression
elimination (canonical order, so output is deterministic) and returns a ``JitFunction``.
"""
from __future__ import annotations

import sympy as sp
from sympy.codegen.ast import Assignment, For, Return

from .nodes import Allocate, ArrayShape, JitFunction, TupleReturn, combine_roots
from .quadrature import HelperLibrary, lower_expectations

FLOAT = "float64"


def cse_block(exprs, library: HelperLibrary, prefix: str = "t"):
    """(assignments, reduced expressions) for a list of expressions."""
    # sqrt(a) sqrt(b) -> sqrt(a b) for non-negative a, b: fewer square roots per layer.
    lowered = [combine_roots(lower_expectations(sp.sympify(e), library)) for e in exprs]
    replacements, reduced = sp.cse(lowered, symbols=sp.numbered_symbols(prefix), order="canonical")
    return [Assignment(s, e) for s, e in replacements], reduced


def scalar_function(name: str, params, exprs, doc: str, library: HelperLibrary) -> JitFunction:
    """float64 function of float64 scalars returning one value or a tuple."""
    assignments, reduced = cse_block(exprs, library)
    args = ", ".join([FLOAT] * len(params))
    if len(exprs) == 1:
        sig, ret = f"{FLOAT}({args})", Return(reduced[0])
    else:
        sig, ret = f"UniTuple({FLOAT}, {len(exprs)})({args})", TupleReturn(tuple(reduced))
    return JitFunction(name, tuple(params), sig, tuple(assignments) + (ret,), doc)


def array_function(name: str, params, entries: dict, shape: tuple, doc: str,
                   library: HelperLibrary) -> JitFunction:
    """Fill out[index] = expr for a dict {index tuple: expr}; scalar float64 parameters."""
    out = sp.IndexedBase("out", shape=shape)
    keys = sorted(entries)
    assignments, reduced = cse_block([entries[k] for k in keys], library)
    stores = [Assignment(out[k], v) for k, v in zip(keys, reduced)]
    dims = ", ".join([":"] * (len(shape) - 1) + ["::1"])
    sig = "void({}, {}[{}])".format(", ".join([FLOAT] * len(params)), FLOAT, dims)
    return JitFunction(name, tuple(params) + (out,), sig, tuple(assignments + stores), doc)


def recursion_function(name: str, *, params, state, update, initial, n_kernel: int, doc: str,
                       library: HelperLibrary) -> JitFunction:
    """Iterate state -> update over layers for a grid of parameter points.

    Arguments of the generated function: one float64[::1] array per parameter (the grid), the
    initial kernel ``k0`` ((n,) for one entry, (n_kernel, n) otherwise) and ``out`` of shape
    (depth + 1, n) or (depth + 1, n_kernel, n). The layer loop is outside the grid loop, and the
    state lives in one (n_state, n) array, so LLVM vectorises each layer across grid points with
    few runtime alias checks; the layer's kernel is then copied to ``out`` in a separate loop.
    """
    n = sp.Symbol("n", integer=True)
    depth = sp.Symbol("depth", integer=True)
    i = sp.Symbol("i", integer=True)
    l = sp.Symbol("l", integer=True)
    p = sp.Symbol("p", integer=True)
    single = n_kernel == 1
    grids = [sp.IndexedBase(f"{q.name}_grid", shape=(n,)) for q in params]
    k0 = sp.IndexedBase("k0", shape=(n,) if single else (n_kernel, n))
    out = sp.IndexedBase("out", shape=(depth + 1, n) if single else (depth + 1, n_kernel, n))
    work = sp.IndexedBase("state", shape=(len(state), n))

    def k0_at(q):
        return k0[i] if single else k0[q, i]

    def store_layer(layer):
        if single:
            return For(i, sp.Range(0, n), [Assignment(out[layer, i], work[0, i])])
        return For(p, sp.Range(0, n_kernel), [
            For(i, sp.Range(0, n), [Assignment(out[layer, p, i], work[p, i])])])

    load_params = [Assignment(q, g[i]) for q, g in zip(params, grids)]
    init_values = [initial(s, k0_at) for s in state]
    used = set().union(*(sp.sympify(v).free_symbols for v in init_values))
    init_loop = For(i, sp.Range(0, n), [a for a in load_params if a.lhs in used] + [
        Assignment(work[k, i], v) for k, v in enumerate(init_values)])

    assignments, reduced = cse_block(update, library)
    nxt = [sp.Symbol(f"next_{s.name}", real=True) for s in state]
    step = (load_params + [Assignment(s, work[k, i]) for k, s in enumerate(state)] + assignments
            + [Assignment(x, e) for x, e in zip(nxt, reduced)]
            + [Assignment(work[k, i], x) for k, x in enumerate(nxt)])
    layer_loop = For(l, sp.Range(1, depth + 1), [For(i, sp.Range(0, n), step), store_layer(l)])

    body = [Assignment(n, ArrayShape(grids[0], 0)),
            Assignment(depth, ArrayShape(out, 0) - 1),
            Allocate(work, (len(state), n)),
            init_loop, store_layer(0), layer_loop]
    grid_sig = ", ".join([f"{FLOAT}[::1]"] * len(params))
    k0_sig = f"{FLOAT}[::1]" if single else f"{FLOAT}[:, ::1]"
    out_sig = f"{FLOAT}[:, ::1]" if single else f"{FLOAT}[:, :, ::1]"
    sig = f"void({grid_sig}, {k0_sig}, {out_sig})"
    return JitFunction(name, tuple(grids) + (k0, out), sig, tuple(body), doc)


def grid_map_function(name: str, *, params, inputs, exprs, doc: str,
                      library: HelperLibrary) -> JitFunction:
    """out[.., i] = expr(params[i], inputs[.., i]) for every grid point i."""
    n = sp.Symbol("n", integer=True)
    i = sp.Symbol("i", integer=True)
    single = len(exprs) == 1
    grids = [sp.IndexedBase(f"{p.name}_grid", shape=(n,)) for p in params]
    shape = (n,) if single else (len(exprs), n)
    src = sp.IndexedBase("source", shape=shape)
    out = sp.IndexedBase("out", shape=shape)

    def at(array, p):
        return array[i] if single else array[p, i]

    assignments, reduced = cse_block(exprs, library)
    body = ([Assignment(p, g[i]) for p, g in zip(params, grids)]
            + [Assignment(x, at(src, p)) for p, x in enumerate(inputs)]
            + assignments + [Assignment(at(out, p), e) for p, e in enumerate(reduced)])
    arr = f"{FLOAT}[::1]" if single else f"{FLOAT}[:, ::1]"
    sig = "void({}, {}, {})".format(", ".join([f"{FLOAT}[::1]"] * len(params)), arr, arr)
    return JitFunction(name, tuple(grids) + (src, out), sig,
                       (Assignment(n, ArrayShape(grids[0], 0)), For(i, sp.Range(0, n), body)), doc)
