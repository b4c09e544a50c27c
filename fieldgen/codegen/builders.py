"""Build generated functions (codegen AST) from derived SymPy expressions.

Every builder lowers Gaussian-expectation nodes to quadrature helpers, applies common-subexpression
elimination (canonical order, so output is deterministic) and returns a ``JitFunction``.
"""

from __future__ import annotations

import hashlib

import sympy as sp
from sympy.codegen.ast import Assignment, For, Return

from .folding import fold_kinked_expectations
from .hermite import fused_hermite_moments
from .nodes import (
    Allocate,
    ArrayShape,
    Evaluate,
    JitFunction,
    StoreFence,
    StreamStore,
    TupleAssign,
    TupleReturn,
    combine_roots,
    helper_call,
)
from .quadrature import HelperLibrary, TextHelper, lower_expectations

FLOAT = "float64"


def cse_block(exprs, library: HelperLibrary, prefix: str = "t"):
    """(assignments, reduced expressions) for a list of expressions."""
    # sqrt(a) sqrt(b) -> sqrt(a b) for non-negative a, b: fewer square roots per layer.
    lowered = [
        combine_roots(lower_expectations(fold_kinked_expectations(sp.sympify(e)), library))
        for e in exprs
    ]
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


def array_function(
    name: str, params, entries: dict, shape: tuple, doc: str, library: HelperLibrary
) -> JitFunction:
    """Fill out[index] = expr for a dict {index tuple: expr}; scalar float64 parameters."""
    out = sp.IndexedBase("out", shape=shape)
    keys = sorted(entries)
    assignments, reduced = cse_block([entries[k] for k in keys], library)
    stores = [Assignment(out[k], v) for k, v in zip(keys, reduced)]
    dims = ", ".join([":"] * (len(shape) - 1) + ["::1"])
    sig = "void({}, {}[{}])".format(", ".join([FLOAT] * len(params)), FLOAT, dims)
    return JitFunction(name, tuple(params) + (out,), sig, tuple(assignments + stores), doc)


# Grid points advanced together through all layers: large enough to vectorise, small enough
# that their state stays in L1.
BLOCK = 128
# The kernel path (recursion_function) is computed for LAYER_CHUNK layers of PATH_BLOCK points into
# a buffer, then written to `out` point by point in contiguous runs. The buffer (16 x 3 x 16
# doubles, 6 KiB) stays in L1 while it is transposed; with 32 x 3 x 128 (96 KiB) the copy ran from
# L2 (bench_kernel: 16 x 16 1.2-1.35x faster). Two inputs write a 32-byte 2x2 kernel per layer step:
# there the buffer is double, the previous chunk is written while the next is computed (one point
# per layer step, so the stores run under the arithmetic), and with streaming stores, which do not
# read `out` into the cache first: the path is written once and is far larger than any cache
# (bench_kernel: 1.25x for erf and relu). One input writes 8 bytes per layer step; ordinary stores
# after each chunk were faster there (scalar streaming stores: relu 0.8x).
PATH_BLOCK = 16
LAYER_CHUNK = 16
# Pair-order entry (11, 22, 12) behind each element of a 2x2 kernel out[..., a, b], row-major.
OUT_ORDER = (0, 2, 2, 1)


def recursion_function(
    name: str, *, params, state, update, initial, n_kernel: int, doc: str, library: HelperLibrary
) -> JitFunction:
    """Iterate state -> update over layers for a grid of parameter points.

    Arguments of the generated function: one float64[::1] array per parameter (the grid), the
    initial kernel ``k0`` ((n,) for one input, (n, 3) in pair order for two) and ``out``, the
    kernel path in the layout the public API returns: (n, depth + 1) or (n, depth + 1, 2, 2).
    Blocks of PATH_BLOCK grid points go through the layers together; within a layer the update is a
    loop over the block (vectorised by LLVM, state in one small array). Kernels are buffered for
    LAYER_CHUNK layers and written to ``out`` in contiguous runs per point: after each chunk (one
    input), or while the next chunk is computed, with streaming stores (two inputs; a 2x2 kernel
    goes out as one 32-byte store when ``out`` is 32-byte aligned). Any grid slice is an
    independent call, so callers can use threads.
    """
    n = sp.Symbol("n", integer=True)
    depth = sp.Symbol("depth", integer=True)
    start, size, first, count = (
        sp.Symbol(x, integer=True) for x in ("start", "size", "first", "count")
    )
    # two inputs: first layer and number of layers of the buffered chunk (0: none); buffer half
    done_first, done_count, half = (
        sp.Symbol(x, integer=True) for x in ("done_first", "done_count", "half")
    )
    i, j, t, u = (sp.Symbol(x, integer=True) for x in "ijtu")
    single = n_kernel == 1
    grids = [sp.IndexedBase(f"{q.name}_grid", shape=(n,)) for q in params]
    k0 = sp.IndexedBase("k0", shape=(n,) if single else (n, n_kernel))
    out = sp.IndexedBase("out", shape=(n, depth + 1) if single else (n, depth + 1, 2, 2))
    work = sp.IndexedBase("state", shape=(len(state), PATH_BLOCK))
    buffer_shape = (
        (LAYER_CHUNK, n_kernel, PATH_BLOCK) if single else (2, LAYER_CHUNK, n_kernel, PATH_BLOCK)
    )
    buf = sp.IndexedBase("buffer", shape=buffer_shape)

    def k0_at(q):
        return k0[i] if single else k0[i, q]

    def store(layer, source):
        """out[i, layer] = K (entry q of pair order is source(q)) with ordinary stores."""
        if single:
            return [Assignment(out[i, layer], source(0))]
        return [
            Assignment(out[i, layer, a, b], source(q))
            for (a, b), q in zip(((0, 0), (0, 1), (1, 0), (1, 1)), OUT_ORDER)
        ]

    point = Assignment(i, start + j)
    load_params = [Assignment(q, g[i]) for q, g in zip(params, grids)]
    init_values = [initial(s, k0_at) for s in state]
    used = set().union(*(sp.sympify(v).free_symbols for v in init_values))
    init_loop = For(
        j,
        sp.Range(0, size),
        [point]
        + [a for a in load_params if a.lhs in used]
        + [Assignment(work[k, j], v) for k, v in enumerate(init_values)]
        + store(0, lambda q: work[q, j]),
    )

    assignments, reduced = cse_block(update, library)
    nxt = [sp.Symbol(f"next_{s.name}", real=True) for s in state]
    if not single:
        # |K12| <= sqrt(K11 K22) holds exactly for a Gram matrix; keep round-off from breaking
        # it, so that every layer's correlation lies in [-1, 1] (identical inputs: c^l = 1).
        reduced = list(reduced)
        reduced[2] = helper_call("_cauchy_schwarz", nxt[0], nxt[1], reduced[2])
    slot = (t,) if single else (half, t)
    step = (
        [point]
        + load_params
        + [Assignment(s, work[k, j]) for k, s in enumerate(state)]
        + assignments
        + [Assignment(x, e) for x, e in zip(nxt, reduced)]
        + [Assignment(work[k, j], x) for k, x in enumerate(nxt)]
        + [Assignment(buf[slot + (q, j)], nxt[q]) for q in range(n_kernel)]
    )

    if single:
        chunk_loop = For(
            first,
            sp.Range(1, depth + 1, LAYER_CHUNK),
            [
                Assignment(count, sp.Min(LAYER_CHUNK, depth + 1 - first)),
                For(t, sp.Range(0, count), [For(j, sp.Range(0, size), step)]),
                For(
                    j,
                    sp.Range(0, size),
                    [point, For(t, sp.Range(0, count), store(first + t, lambda q: buf[t, q, j]))],
                ),
            ],
        )
        block = [chunk_loop]
        finish = []
    else:
        # Point j's run of the buffered chunk: done_count layers from done_first, half 1 - half.
        write_done = [
            point,
            Evaluate(
                helper_call(PAIR_RUN_WRITER, out, buf, 1 - half, j, i, done_first, done_count)
            ),
        ]
        chunk_loop = For(
            first,
            sp.Range(1, depth + 1, LAYER_CHUNK),
            [
                Assignment(count, sp.Min(LAYER_CHUNK, depth + 1 - first)),
                For(
                    t,
                    sp.Range(0, count),
                    [
                        For(j, sp.Range(0, size), step),
                        For(j, sp.Range(t, sp.Min(t + 1, size)), write_done),
                    ],
                ),
                # a last chunk shorter than the block has not passed every point yet
                For(j, sp.Range(count, size), write_done),
                Assignment(done_first, first),
                Assignment(done_count, count),
                Assignment(half, 1 - half),
            ],
        )
        # after the last chunk, half has flipped once more: 1 - half is the last chunk's
        block = [
            Assignment(done_first, 0),
            Assignment(done_count, 0),
            Assignment(half, 0),
            chunk_loop,
            For(j, sp.Range(0, size), write_done),
        ]
        finish = [StoreFence()]
    block_loop = For(
        start,
        sp.Range(0, n, PATH_BLOCK),
        [Assignment(size, sp.Min(PATH_BLOCK, n - start)), init_loop] + block,
    )

    body = [
        Assignment(n, ArrayShape(grids[0], 0)),
        Assignment(depth, ArrayShape(out, 1) - 1),
        Allocate(work, (len(state), PATH_BLOCK)),
        Allocate(buf, buffer_shape),
        block_loop,
    ] + finish
    grid_sig = ", ".join([f"{FLOAT}[::1]"] * len(params))
    k0_sig = f"{FLOAT}[::1]" if single else f"{FLOAT}[:, ::1]"
    out_sig = f"{FLOAT}[:, ::1]" if single else f"{FLOAT}[:, :, :, ::1]"
    sig = f"void({grid_sig}, {k0_sig}, {out_sig})"
    return JitFunction(name, tuple(grids) + (k0, out), sig, tuple(body), doc)


PAIR_RUN_WRITER = "_write_pair_run"


def pair_run_writer() -> JitFunction:
    """The helper that writes one point's run of a buffered two-input chunk (recursion_function).

    out[i, first + u] = K of buffer[half, u, :, j] for u < count, each 2x2 kernel (pair order 11,
    22, 12 in the buffer) one streaming store. One definition shared by every generated module.
    """
    n, depth = sp.Symbol("n", integer=True), sp.Symbol("depth", integer=True)
    half, j, i, first, count, u = (
        sp.Symbol(x, integer=True) for x in ("half", "j", "i", "first", "count", "u")
    )
    out = sp.IndexedBase("out", shape=(n, depth + 1, 2, 2))
    buf = sp.IndexedBase("buffer", shape=(2, LAYER_CHUNK, 3, PATH_BLOCK))
    body = (
        For(
            u,
            sp.Range(0, count),
            [StreamStore(out[i, first + u, 0, 0], tuple(buf[half, u, q, j] for q in OUT_ORDER))],
        ),
    )
    sig = f"void({FLOAT}[:, :, :, ::1], {FLOAT}[:, :, :, ::1], int64, int64, int64, int64, int64)"
    return JitFunction(
        PAIR_RUN_WRITER,
        (out, buf, half, j, i, first, count),
        sig,
        body,
        pair_run_writer.__doc__.split("\n")[0],
        inline=True,
    )


def grid_map_function(
    name: str, *, params, inputs, exprs, doc: str, library: HelperLibrary
) -> JitFunction:
    """out[i, ..] = exprs(params[i], source[i, ..]) for every grid point i (1-D when one)."""
    n = sp.Symbol("n", integer=True)
    i = sp.Symbol("i", integer=True)
    grids = [sp.IndexedBase(f"{p.name}_grid", shape=(n,)) for p in params]
    src = sp.IndexedBase("source", shape=(n,) if len(inputs) == 1 else (n, len(inputs)))
    out = sp.IndexedBase("out", shape=(n,) if len(exprs) == 1 else (n, len(exprs)))

    def at(array, p, count):
        return array[i] if count == 1 else array[i, p]

    def layout(count):
        return f"{FLOAT}[::1]" if count == 1 else f"{FLOAT}[:, ::1]"

    assignments, reduced = cse_block(exprs, library)
    body = (
        [Assignment(p, g[i]) for p, g in zip(params, grids)]
        + [Assignment(x, at(src, p, len(inputs))) for p, x in enumerate(inputs)]
        + assignments
        + [Assignment(at(out, p, len(exprs)), e) for p, e in enumerate(reduced)]
    )
    sig = "void({}, {}, {})".format(
        ", ".join([f"{FLOAT}[::1]"] * len(params)), layout(len(inputs)), layout(len(exprs))
    )
    return JitFunction(
        name,
        tuple(grids) + (src, out),
        sig,
        (Assignment(n, ArrayShape(grids[0], 0)), For(i, sp.Range(0, n), body)),
        doc,
    )


def _array_sig(ndim: int) -> str:
    return f"{FLOAT}[{', '.join([':'] * (ndim - 1) + ['::1'])}]"


def packed_function(
    name: str,
    *,
    inputs,
    entries: dict,
    shape: tuple,
    doc: str,
    library: HelperLibrary,
    arrays=(),
    fuse_paths: bool = False,
) -> JitFunction:
    """out[index] = expr for {index: expr}; scalar inputs arrive packed in 1-D arrays.

    `inputs` is a list of (array name, symbols): array[i] is unpacked into symbols[i]. `arrays`
    are IndexedBase arguments used as such in the expressions (e.g. a Jacobian). With
    `fuse_paths`, the entries' path integrals are summed in one loop over the nodes
    (fused_path_integrals) rather than one helper each.
    """
    packed = [(sp.IndexedBase(array, shape=(len(symbols),)), symbols) for array, symbols in inputs]
    out = sp.IndexedBase("out", shape=shape)
    keys = sorted(entries)
    exprs = [entries[k] for k in keys]
    fused: list = []
    if fuse_paths:
        fused, exprs = fused_path_integrals(exprs, library)
    moments, exprs = fused_hermite_moments(exprs, library)
    fused += moments
    assignments, reduced = cse_block(exprs, library)
    unpack = [Assignment(sym, arr[i]) for arr, symbols in packed for i, sym in enumerate(symbols)]
    stores = [Assignment(out[k], v) for k, v in zip(keys, reduced)]
    params = tuple(arr for arr, _ in packed) + tuple(arrays) + (out,)
    sig = "void({})".format(", ".join(_array_sig(len(p.shape)) for p in params))
    return JitFunction(name, params, sig, tuple(unpack + fused + assignments + stores), doc)


def packed_outputs_function(
    name: str, *, inputs, outputs, doc: str, library: HelperLibrary, fuse_paths: bool = False
) -> JitFunction:
    """Several output arrays from one body: `outputs` is a list of (array name, shape,
    {index: expr}); one CSE (and with `fuse_paths` one path-integral loop) over all their
    entries, so coefficients of the same arguments share their work. Inputs as packed_function."""
    packed = [(sp.IndexedBase(array, shape=(len(symbols),)), symbols) for array, symbols in inputs]
    targets, exprs = [], []
    for array, shape, entries in outputs:
        base = sp.IndexedBase(array, shape=shape)
        for k in sorted(entries):
            targets.append(base[k])
            exprs.append(entries[k])
    fused: list = []
    if fuse_paths:
        fused, exprs = fused_path_integrals(exprs, library)
    moments, exprs = fused_hermite_moments(exprs, library)
    fused += moments
    assignments, reduced = cse_block(exprs, library)
    unpack = [Assignment(sym, arr[i]) for arr, symbols in packed for i, sym in enumerate(symbols)]
    stores = [Assignment(t, v) for t, v in zip(targets, reduced)]
    params = tuple(arr for arr, _ in packed) + tuple(
        sp.IndexedBase(array, shape=shape) for array, shape, _ in outputs
    )
    sig = "void({})".format(", ".join(_array_sig(len(p.shape)) for p in params))
    return JitFunction(name, params, sig, tuple(unpack + fused + assignments + stores), doc)


def fused_path_integrals(exprs, library: HelperLibrary):
    """(statements, exprs): every integral over s in [0, 1] in `exprs` replaced by one output of
    a single helper that sums all of them over the same nodes (generated/quadrature.py's path
    rule, that of the one-integral helpers), its integrands sharing sub-expressions and
    transcendental calls (one CSE over all). One loop instead of one per integral: relu's pair
    four-point entries share their conditional variances and correlations along the path.
    Expressions without integrals come back unchanged and no statement is added.
    """
    exprs = [sp.sympify(e) for e in exprs]
    found = set().union(*(e.atoms(sp.Integral) for e in exprs)) if exprs else set()
    integrals = sorted(found, key=sp.default_sort_key)
    if not integrals:
        return [], exprs
    s = sp.Symbol("s", real=True)
    integrands = []
    for integral in integrals:
        ((var, lo, hi),) = integral.limits
        if (lo, hi) != (0, 1):
            raise NotImplementedError("path integrals run over [0, 1]")
        integrands.append(lower_expectations(integral.function.xreplace({var: s}), library))
    args = tuple(
        sorted(set().union(*(f.free_symbols for f in integrands)) - {s}, key=sp.default_sort_key)
    )
    key = sp.srepr(sp.Tuple(sp.Tuple(s, *args), *integrands)).encode()
    helper = f"_paths_{hashlib.sha256(key).hexdigest()[:12]}"
    replacements, reduced = sp.cse(integrands, symbols=sp.numbered_symbols("u"), order="canonical")
    n = len(integrands)
    lines = [
        '@njit(cache=True, nogil=True, error_model="numpy", fastmath=PATH_FASTMATH)',
        "def {}({}):".format(helper, ", ".join(str(a) for a in args)),
        '    """Gauss-Legendre integrals over the cross-covariance path s in [0, 1], one loop."""',
    ]
    lines += [f"    acc{j} = 0.0" for j in range(n)]
    lines += [
        "    for k in range(PATH_ORDER):",
        f"        {s} = PATH_NODES[k]",
        "        w = PATH_WEIGHTS[k]",
    ]
    texts = []
    for a, b in replacements:
        lines.append(f"        {a} = @{len(texts)}@")
        texts.append(b)
    for j, e in enumerate(reduced):
        lines.append(f"        acc{j} += w*(@{len(texts)}@)")
        texts.append(e)
    lines.append("    return ({},)".format(", ".join(f"acc{j}" for j in range(n))))
    library.imports.add(
        "from .quadrature import PATH_FASTMATH, PATH_NODES, PATH_ORDER, PATH_WEIGHTS"
    )
    library.add(TextHelper(helper, "\n".join(lines), tuple(texts), ()))
    targets = sp.symbols(f"v0:{n}", real=True)
    at = dict(zip(integrals, targets))
    return [TupleAssign(tuple(targets), helper_call(helper, *args))], [
        e.xreplace(at) for e in exprs
    ]


def tangent_recursion_function(
    name: str,
    *,
    params,
    state,
    update,
    n_kernel: int,
    tangent,
    tangent_update,
    seeds,
    outputs,
    doc: str,
    library: HelperLibrary,
) -> JitFunction:
    """Carry a state and tangent entries through `depth` layers; write derived outputs at the end.

    Arguments of the generated function: one float64[::1] grid per parameter, ``k0`` (n, n_kernel)
    the initial kernel (means start at zero), ``v0`` (n, len(seeds)) the initial values of the
    tangent entries listed in ``seeds`` (indices into ``tangent``; the others start at zero), the
    number of layers ``depth`` and ``out`` (n, len(outputs)). As in ``recursion_function``, blocks
    of BLOCK grid points go through the layers together with their state in one small array, and
    any grid slice is an independent call.
    """
    n, depth = sp.Symbol("n", integer=True), sp.Symbol("depth", integer=True)
    start, size = sp.Symbol("start", integer=True), sp.Symbol("size", integer=True)
    i, j, t = (sp.Symbol(x, integer=True) for x in "ijt")
    carried = tuple(state) + tuple(tangent)
    grids = [sp.IndexedBase(f"{q.name}_grid", shape=(n,)) for q in params]
    k0 = sp.IndexedBase("k0", shape=(n, n_kernel))
    v0 = sp.IndexedBase("v0", shape=(n, len(seeds)))
    out = sp.IndexedBase("out", shape=(n, len(outputs)))
    work = sp.IndexedBase("work", shape=(len(carried), BLOCK))

    point = Assignment(i, start + j)
    load_params = [Assignment(q, g[i]) for q, g in zip(params, grids)]
    load = [Assignment(s, work[k, j]) for k, s in enumerate(carried)]

    def initial(k):
        if k < n_kernel:
            return k0[i, k]
        if k >= len(state) and (k - len(state)) in seeds:
            return v0[i, seeds.index(k - len(state))]
        return sp.Float(0.0)

    init_loop = For(
        j,
        sp.Range(0, size),
        [point] + [Assignment(work[k, j], initial(k)) for k in range(len(carried))],
    )

    assignments, reduced = cse_block(tuple(update) + tuple(tangent_update), library)
    nxt = [sp.Symbol(f"next_{s.name}", real=True) for s in carried]
    step = (
        [point]
        + load_params
        + load
        + assignments
        + [Assignment(x, e) for x, e in zip(nxt, reduced)]
        + [Assignment(work[k, j], x) for k, x in enumerate(nxt)]
    )
    layer_loop = For(t, sp.Range(0, depth), [For(j, sp.Range(0, size), step)])

    out_assignments, out_reduced = cse_block(outputs, library, prefix="u")
    used = set().union(
        *(sp.sympify(e).free_symbols for e in out_reduced),
        *(a.rhs.free_symbols for a in out_assignments),
    )
    final = (
        [point]
        + [a for a in load_params if a.lhs in used]
        + [a for a in load if a.lhs in used]
        + out_assignments
        + [Assignment(out[i, k], e) for k, e in enumerate(out_reduced)]
    )
    block_loop = For(
        start,
        sp.Range(0, n, BLOCK),
        [
            Assignment(size, sp.Min(BLOCK, n - start)),
            init_loop,
            layer_loop,
            For(j, sp.Range(0, size), final),
        ],
    )

    body = [
        Assignment(n, ArrayShape(grids[0], 0)),
        Allocate(work, (len(carried), BLOCK)),
        block_loop,
    ]
    grid_sig = ", ".join([f"{FLOAT}[::1]"] * len(params))
    sig = f"void({grid_sig}, {FLOAT}[:, ::1], {FLOAT}[:, ::1], int64, {FLOAT}[:, ::1])"
    return JitFunction(name, tuple(grids) + (k0, v0, depth, out), sig, tuple(body), doc)


# Classical Runge-Kutta (order 4): stage offsets and weights.
RK4_OFFSETS = (0, sp.Rational(1, 2), sp.Rational(1, 2), 1)
RK4_WEIGHTS = (sp.Rational(1, 6), sp.Rational(1, 3), sp.Rational(1, 3), sp.Rational(1, 6))


def ode_path_function(
    name: str, *, params, state, rhs, terms, time: sp.Symbol, doc: str, library: HelperLibrary
) -> JitFunction:
    """Integrate d state/d time = rhs (autonomous) with RK4 on a given grid of times.

    Arguments of the generated function: the scalar parameters, ``z0`` (the state at times[0]),
    ``times`` (m,), ``path`` (m, len(state)) and ``values`` (m, len(terms)): the state and the
    derived terms (expressions in time and state) at every grid time. The right-hand side is a
    helper called once per stage, compiled once: inlined into the four stages in Numba's IR it
    made the first call compile for 2 s (erf); called, the integrator is ~7 % slower per step, a
    few microseconds on the grids it runs (Brent's single steps are called from Python).
    """
    m, k, q = (sp.Symbol(x, integer=True) for x in ("m", "k", "q"))
    h = sp.Symbol("h", real=True)
    z0 = sp.IndexedBase("z0", shape=(len(state),))
    times = sp.IndexedBase("times", shape=(m,))
    path = sp.IndexedBase("path", shape=(m, len(state)))
    values = sp.IndexedBase("values", shape=(m, len(terms)))
    helper = scalar_function(
        f"_{name}_rhs",
        tuple(params) + tuple(state),
        list(rhs),
        f"d state/d {time} for {name}.",
        library,
    )
    library.add(helper)

    stages = [[sp.Symbol(f"k{s + 1}_{z.name}", real=True) for z in state] for s in range(4)]
    rk = []
    for s, (offset, stage) in enumerate(zip(RK4_OFFSETS, stages)):
        at = [z + offset * h * kp for z, kp in zip(state, stages[s - 1])] if s else list(state)
        rk.append(TupleAssign(tuple(stage), helper_call(helper.name, *params, *at)))
    rk += [
        Assignment(z, z + h * sum(w * st[p] for w, st in zip(RK4_WEIGHTS, stages)))
        for p, z in enumerate(state)
    ]

    assignments, reduced = cse_block(terms, library, prefix="u")
    record = (
        [Assignment(time, times[k])]
        + assignments
        + [Assignment(values[k, p], e) for p, e in enumerate(reduced)]
        + [Assignment(path[k, p], z) for p, z in enumerate(state)]
        # The last grid time takes a step of zero length.
        + [Assignment(h, times[sp.Min(k + 1, m - 1)] - time)]
        + rk
    )
    body = (
        [Assignment(m, ArrayShape(times, 0))]
        + [Assignment(z, z0[p]) for p, z in enumerate(state)]
        + [For(k, sp.Range(0, m), record)]
    )
    sig = "void({}, {}[::1], {}[::1], {}[:, ::1], {}[:, ::1])".format(
        ", ".join([FLOAT] * len(params)), FLOAT, FLOAT, FLOAT, FLOAT
    )
    return JitFunction(name, tuple(params) + (z0, times, path, values), sig, tuple(body), doc)


def state_path_function(
    name: str, *, params, state, update, doc: str, library: HelperLibrary
) -> JitFunction:
    """The whole state of a one-input layer map at every layer, for many inputs at one point.

    Arguments of the generated function: the scalar parameters, ``s0`` (len(state), n) the state
    at layer 0 of each input and ``out`` (depth + 1, len(state), n). Inputs go through a layer
    together (contiguous, the loop vectorises); the diagonal paths of a Gram matrix.
    """
    n, depth = sp.Symbol("n", integer=True), sp.Symbol("depth", integer=True)
    i, t = sp.Symbol("i", integer=True), sp.Symbol("t", integer=True)
    s0 = sp.IndexedBase("s0", shape=(len(state), n))
    out = sp.IndexedBase("out", shape=(depth + 1, len(state), n))
    assignments, reduced = cse_block(update, library)
    init = For(i, sp.Range(0, n), [Assignment(out[0, k, i], s0[k, i]) for k in range(len(state))])
    step = (
        [Assignment(s, out[t, k, i]) for k, s in enumerate(state)]
        + assignments
        + [Assignment(out[t + 1, k, i], e) for k, e in enumerate(reduced)]
    )
    body = [
        Assignment(n, ArrayShape(s0, 1)),
        Assignment(depth, ArrayShape(out, 0) - 1),
        init,
        For(t, sp.Range(0, depth), [For(i, sp.Range(0, n), step)]),
    ]
    sig = "void({}, {}[:, ::1], {}[:, :, ::1])".format(
        ", ".join([FLOAT] * len(params)), FLOAT, FLOAT
    )
    return JitFunction(name, tuple(params) + (s0, out), sig, tuple(body), doc)


def gram_offdiagonal_function(
    name: str,
    *,
    params,
    state,
    update,
    carried,
    diagonal,
    clamp,
    written: int,
    doc: str,
    library: HelperLibrary,
) -> JitFunction:
    """Off-diagonal entries of a Gram matrix at selected layers, pairs of inputs vectorised.

    A two-input layer map splits into entries of one input (11, 22, means...) and entries of the
    pair (12): given each input's path (``state_path_function``), only the pair's entries need a
    recursion. ``carried`` are the indices into ``state`` of the pair's entries; ``diagonal`` maps
    the other state symbols to (side, index): side 0 the first input of the pair, 1 the second,
    index into the one-input state; ``clamp`` maps a carried position to (i11, i22) one-input
    indices for the Cauchy-Schwarz clamp with the next layer's diagonal.

    Arguments of the generated function: the scalar parameters, ``diag`` (depth + 1, s, n) the
    one-input paths, ``init`` (len(carried), n, n) the carried entries at layer 0, ``layers`` (q,)
    int64 ascending, the rows ``row_start`` to ``row_stop`` to compute, and ``out`` (q, n, n):
    out[k, a, b] = out[k, b, a] = carried entry ``written`` at layer layers[k]. Row a's pairs
    (a, b > a) go through the layers together: the second input's entries are contiguous loads,
    the first's are loaded once per layer. Rows are independent (threads); memory O(n^2) per
    selected layer.
    """
    n, q, depth = (sp.Symbol(x, integer=True) for x in ("n", "q", "depth"))
    size, prev, row_start, row_stop = (
        sp.Symbol(x, integer=True) for x in ("size", "prev", "row_start", "row_stop")
    )
    j, t, k, a, b = (sp.Symbol(x, integer=True) for x in ("j", "t", "k", "a", "b"))
    n_single = 1 + max(idx for _, idx in diagonal.values())
    diag = sp.IndexedBase("diag", shape=(depth + 1, n_single, n))
    init = sp.IndexedBase("init", shape=(len(carried), n, n))
    layers = sp.IndexedBase("layers", shape=(q,))
    out = sp.IndexedBase("out", shape=(q, n, n))
    work = sp.IndexedBase("work", shape=(len(carried), n))

    init_loop = For(
        j,
        sp.Range(0, size),
        [Assignment(b, a + 1 + j)]
        + [Assignment(work[c, j], init[c, a, b]) for c in range(len(carried))],
    )
    carried_update = [update[c] for c in carried]
    assignments, reduced = cse_block(carried_update, library)
    first_side = [Assignment(s, diag[t, idx, a]) for s, (sd, idx) in diagonal.items() if sd == 0]
    second_side = [Assignment(s, diag[t, idx, b]) for s, (sd, idx) in diagonal.items() if sd == 1]
    load = second_side + [Assignment(state[c], work[pos, j]) for pos, c in enumerate(carried)]
    nxt = [sp.Symbol(f"next_{state[c].name}", real=True) for c in carried]
    reduced = list(reduced)
    for pos, (i11, i22) in clamp.items():
        # |K12| <= sqrt(K11 K22) holds exactly; keep round-off from breaking it.
        reduced[pos] = helper_call(
            "_cauchy_schwarz", diag[t + 1, i11, a], diag[t + 1, i22, b], reduced[pos]
        )
    step = (
        [Assignment(b, a + 1 + j)]
        + load
        + assignments
        + [Assignment(x, e) for x, e in zip(nxt, reduced)]
        + [Assignment(work[pos, j], x) for pos, x in enumerate(nxt)]
    )
    write = For(
        j,
        sp.Range(0, size),
        [
            Assignment(b, a + 1 + j),
            Assignment(out[k, a, b], work[written, j]),
            Assignment(out[k, b, a], work[written, j]),
        ],
    )
    layer_loop = For(
        k,
        sp.Range(0, q),
        [
            For(t, sp.Range(prev, layers[k]), first_side + [For(j, sp.Range(0, size), step)]),
            write,
            Assignment(prev, layers[k]),
        ],
    )
    row_loop = For(
        a,
        sp.Range(row_start, row_stop),
        [Assignment(size, n - a - 1), init_loop, Assignment(prev, 0), layer_loop],
    )
    body = [
        Assignment(n, ArrayShape(diag, 2)),
        Assignment(q, ArrayShape(layers, 0)),
        Allocate(work, (len(carried), n)),
        row_loop,
    ]
    sig = (
        "void({}, {f}[:, :, ::1], {f}[:, :, ::1], int64[::1], int64, int64, {f}[:, :, ::1])"
    ).format(", ".join([FLOAT] * len(params)), f=FLOAT)
    return JitFunction(
        name, tuple(params) + (diag, init, layers, row_start, row_stop, out), sig, tuple(body), doc
    )
