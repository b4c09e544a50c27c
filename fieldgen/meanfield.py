"""The mean-field kernel K^l: the saddle point of the field theory, evaluated by generated code."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import scales
from . import validation as check
from .activations import ActivationLike
from .generated import module

# Grids larger than this are split across threads (the generated loops release the GIL).
_THREAD_CHUNK = 4096


def _grid(r, sigma_w2, sigma_b2):
    """Broadcast the parameter arrays; return their shape and flat contiguous copies."""
    r = check.nonnegative("r", r)
    sigma_w2 = check.nonnegative("sigma_w2", sigma_w2)
    sigma_b2 = check.nonnegative("sigma_b2", sigma_b2)
    try:
        shape = np.broadcast_shapes(r.shape, sigma_w2.shape, sigma_b2.shape)
    except ValueError:
        raise ValueError(
            f"r, sigma_w2 and sigma_b2 must broadcast together; got shapes "
            f"{r.shape}, {sigma_w2.shape}, {sigma_b2.shape}"
        ) from None
    flat = [
        np.array(np.broadcast_to(a, shape), dtype=float, order="C").ravel()
        for a in (r, sigma_w2, sigma_b2)
    ]
    return shape, flat


def input_kernel_grid(K0_entries, n_inputs, input, sigma_w2, sigma_b2):
    """K^0 at every grid point, (n,) or (n, 3): the given kernel or the input layer's."""
    n = sigma_w2.shape[0]
    given = np.empty((n, 3) if n_inputs > 1 else (n,))
    given[...] = K0_entries if n_inputs > 1 else K0_entries[0]
    if input == "kernel":
        return given
    from .generated import inputs

    out = np.empty_like(given)
    fn = inputs.input_kernel_single if n_inputs == 1 else inputs.input_kernel_pair
    fn(sigma_w2, sigma_b2, given, out)
    return out


def input_jacobian_grid(K0_entries, n_inputs, input, sigma_w2, sigma_b2):
    """dK^0/d(K0 argument) at every grid point, (n, p, p) in pair order (p = 1 or 3)."""
    n, p = sigma_w2.shape[0], (3 if n_inputs > 1 else 1)
    if input == "kernel":
        return np.broadcast_to(np.eye(p), (n, p, p)).copy()
    from .generated import inputs

    gram = np.empty((n, 3) if n_inputs > 1 else (n,))
    gram[...] = K0_entries if n_inputs > 1 else K0_entries[0]
    out = np.empty((n, p * p) if n_inputs > 1 else (n,))
    fn = inputs.input_jacobian_single if n_inputs == 1 else inputs.input_jacobian_pair
    fn(sigma_w2, sigma_b2, gram, out)
    return out.reshape(n, p, p)


def run_on_grid(fn, grids, per_point, out, *scalars):
    """Call fn(*grids, *per_point, *scalars, out), split into contiguous slices over threads when
    the grid is large.

    The generated loops release the GIL; every slice of the grid is an independent call that
    writes its own rows of `out` (`per_point` arrays are sliced with the grid).
    """
    n = grids[0].shape[0]
    workers = min(os.cpu_count() or 1, max(1, n // _THREAD_CHUNK))
    if workers == 1:
        fn(*grids, *per_point, *scalars, out)
        return out
    bounds = np.linspace(0, n, workers + 1).astype(int)

    def run(a, b):
        fn(*(g[a:b] for g in grids), *(x[a:b] for x in per_point), *scalars, out[a:b])

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(run, bounds[:-1], bounds[1:]))
    return out


def aligned_empty(shape, alignment=64) -> np.ndarray:
    """np.empty(shape) whose data starts on an `alignment`-byte boundary.

    The generated two-input paths store each 2x2 kernel as one 32-byte streaming store when its
    address allows (NumPy itself only guarantees 16 bytes).
    """
    size = int(np.prod(shape, dtype=np.int64))
    raw = np.empty(size + alignment // 8)
    offset = (-raw.ctypes.data % alignment) // 8
    return raw[offset : offset + size].reshape(shape)


def finite_or_raise(out: np.ndarray, what: str) -> None:
    """Raise if the path left the float64 range.

    The recursions add to the previous layer's state, so a NaN or inf persists to the last layer:
    checking it is enough; the full scan only runs to name the layer.
    """
    if np.all(np.isfinite(out[:, -1])):
        return
    bad = ~np.isfinite(out)
    layer = int(np.argwhere(bad.reshape(bad.shape[0], bad.shape[1], -1).any(axis=(0, 2)))[0, 0])
    raise OverflowError(
        f"{what} leaves the float64 range at layer {layer}: it grows too fast "
        "for this depth and r (reduce depth or r)"
    )


def kernel(
    activation: ActivationLike,
    *,
    r: ArrayLike | None = None,
    sigma_w2: ArrayLike,
    depth: int,
    K0: ArrayLike | None = None,
    sigma_b2: ArrayLike = 0.0,
    block: str = "full",
    input: str = "kernel",
    x: ArrayLike | None = None,
    x2: ArrayLike | None = None,
    layers: ArrayLike | None = None,
    tau: ArrayLike | None = None,
) -> NDArray[np.float64]:
    """The mean-field (infinite-width) kernel K^l for l = 0..depth.

    The saddle point of the field theory: ``K^l = K^{l-1} + r^2 [sigma_w^2 P(K^{l-1}) +
    sigma_b^2]`` for the full block, with the means included for the reduced block (docs/theory,
    "The saddle point: the mean-field kernel").

    Parameters
    ----------
    activation : str or fieldgen.Activation
        A built-in name (:data:`fieldgen.ACTIVATIONS`, :data:`fieldgen.PRESETS`) or an
        activation made by :func:`fieldgen.activation`.
    r : float or array_like
        Residual scale, >= 0. r, sigma_w2 and sigma_b2 broadcast together; their broadcast shape
        is prepended to the result (a parameter sweep in one call).
    tau : float or array_like, optional
        Instead of r, a depth-scaled network's tau = r^2 sigma_w^2 L >= 0 (then r =
        sqrt(tau / (sigma_w2 depth)), with sigma_w2 > 0 and depth >= 1; tau broadcasts like r).
        Give r or tau, not both.
    sigma_w2 : float or array_like
        Weight variance sigma_w^2 >= 0 (weights are N(0, sigma_w2/N)).
    depth : int
        Number of residual blocks L >= 0.
    K0 : float or array_like, shape (2, 2) or (n, n)
        Input kernel K^0 (``input="kernel"``) or input Gram matrix G = x.x'/d (``input="layer"``,
        then K^0 = sigma_w2 G + sigma_b2): a number >= 0 for one input, a symmetric positive
        semi-definite 2x2 matrix for two, an n x n one for a data set of n >= 3 inputs (computed
        in one generated pass over the n(n-1)/2 pairs, sharing each input's diagonal).
    sigma_b2 : float or array_like, default 0.0
        Bias variance sigma_b^2 >= 0.
    block : {"full", "reduced"}, default "full"
        ``h + r (W phi(h) + b)`` or ``h + r phi(W h + b)``.
    input : {"kernel", "layer"}, default "kernel"
        Meaning of K0.
    x : array_like, shape (n, d), optional
        With ``input="layer"``, the inputs themselves instead of K0 (then G = x x^T / d).
    x2 : array_like, shape (m, d), optional
        With `x`, a second set: the result is the cross kernel, ``(..., depth+1, n, m)``.
    layers : sequence of int, optional
        Return only these layers (strictly increasing, in 0..depth), in the layer axis; a data
        set's Gram matrices are then computed without storing the others.

    Returns
    -------
    numpy.ndarray
        Shape ``(..., depth+1)`` for one input, ``(..., depth+1, 2, 2)`` for two and
        ``(..., depth+1, n, n)`` for a data set (``len(layers)`` in place of depth+1 with
        `layers`), ``...`` the broadcast shape of r, sigma_w2 and sigma_b2; units of K0. Two-input kernels are
        symmetric with ``|K_12| <= sqrt(K_11 K_22)`` at every layer.

    Raises
    ------
    ValueError
        A parameter outside its range, parameters that do not broadcast, an unknown activation,
        block or input mode; the message starts with the parameter's name.
    OverflowError
        If the kernel leaves the float64 range (relu, linear at large depth x r); the message
        names the layer.

    Examples
    --------
    >>> import fieldgen
    >>> K = fieldgen.kernel("erf", r=0.3, sigma_w2=1.0, depth=100, K0=[[1.0, 0.9], [0.9, 1.0]])
    >>> K.shape
    (101, 2, 2)
    >>> fieldgen.kernel("relu", r=[0.1, 0.2, 0.3], sigma_w2=[[1.0], [2.0]], depth=50,
    ...                 K0=1.0).shape
    (2, 3, 51)
    >>> float(fieldgen.kernel("relu", r=1.0, sigma_w2=2.0, depth=3, K0=1.0)[-1])  # relu: 2^3
    8.0
    """
    r = check.residual_scale(r, tau, sigma_w2, depth)
    activation, block, input, depth = check.network(activation, block, input, depth)
    K0, n_first = data_set_kernel(K0, x, input, x2)
    data_set = n_first is not None or (np.ndim(K0) == 2 and np.shape(K0)[0] >= 3)
    selected = select_layers(layers, depth) if data_set or layers is not None else None
    if n_first is not None:
        out = gram("kernel", activation, block, input, depth, K0, selected, r, sigma_w2, sigma_b2)
        return np.ascontiguousarray(out[..., :n_first, n_first:])
    if np.ndim(K0) == 2 and np.shape(K0)[0] >= 3:
        return gram("kernel", activation, block, input, depth, K0, selected, r, sigma_w2, sigma_b2)
    K0_entries, n_inputs = check.kernel_matrix("K0", K0)
    shape, grids = _grid(r, sigma_w2, sigma_b2)
    k0 = input_kernel_grid(K0_entries, n_inputs, input, grids[1], grids[2])
    # Two inputs at extreme scales: exact rescaling where K is homogeneous in K^0, else an error.
    s = 1.0 if n_inputs == 1 else scales.rescaling(activation, k0, grids[2])
    which = "single" if n_inputs == 1 else "pair"
    fn = getattr(module("meanfield", activation), f"kernel_{which}_{block}")
    tail = (depth + 1,) if n_inputs == 1 else (depth + 1, 2, 2)
    check.memory(
        "the kernel path",
        8.0 * grids[0].shape[0] * np.prod(tail, dtype=float),
        "reduce depth or the number of r, sigma_w2 and sigma_b2 values",
    )
    out = run_on_grid(
        fn, grids, (k0 / s if s != 1.0 else k0,), aligned_empty((grids[0].shape[0],) + tail)
    )
    finite_or_raise(out, "the mean-field kernel")
    if n_inputs == 2 and (layer := scales.first_unresolved_layer(out)) is not None:
        raise OverflowError(
            f"the mean-field kernel leaves the range this code resolves at layer "
            f"{layer} (K11 K22 above {scales.SAFE[1] ** 2:g} overflows): "
            "reduce depth or r"
        )
    if s != 1.0:
        with np.errstate(over="ignore"):
            out *= s
        finite_or_raise(out, "the mean-field kernel")
    out = out.reshape(shape + tail)
    if layers is None:
        return out
    return out[(Ellipsis, selected) + (slice(None),) * (len(tail) - 1)]


# ---- kernels of whole data sets (Gram matrices) ---------------------------------------------

# Pairs per thread below which a Gram matrix is not split across threads.
_PAIRS_PER_THREAD = 50_000


def data_set_kernel(K0, x, input, x2=None):
    """(K0, None) as given, or (x x^T / d, None) of inputs x (n, d) (input="layer" only); with a
    second set x2 (m, d), the Gram matrix of both stacked and n (the cross kernel is the block
    [:n, n:] of the result)."""
    if x is None:
        if x2 is not None:
            raise ValueError("x2 (the second set of a cross kernel) needs x")
        if K0 is None:
            raise ValueError(
                "K0 must be a real number or an array of them (the input kernel or Gram "
                "matrix), or give x (the inputs, with input='layer'); got None"
            )
        return K0, None
    if K0 is not None:
        raise ValueError("give either K0 or x, not both")
    if input != "layer":
        raise ValueError(
            "x (the inputs) needs input='layer' (an input layer W^0 x + b^0); with "
            "input='kernel' give the kernel K0"
        )
    x = _inputs("x", x)
    n_first = None
    if x2 is not None:
        x2 = _inputs("x2", x2)
        if x2.shape[1] != x.shape[1]:
            raise ValueError(f"x2 must have the dimension of x, {x.shape[1]}; got shape {x2.shape}")
        n_first, x = x.shape[0], np.concatenate([x, x2])
    return x @ x.T / x.shape[1], n_first


def _inputs(param, x):
    x = np.asarray(x, dtype=float)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{param} must have shape (n, d) with n, d >= 1; got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{param} must be finite (no NaN or inf)")
    return x


def select_layers(layers, depth):
    """Layer indices to return, int64 ascending (all of 0..depth when None)."""
    if layers is None:
        # A data set's every layer: its n x n results need the memory check first.
        check.memory("the kernel of every layer", 8.0 * (depth + 1), "reduce depth or give layers=")
        return np.arange(depth + 1, dtype=np.int64)
    arr = np.asarray(layers)
    if arr.ndim != 1 or arr.size == 0 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(
            f"layers must be a non-empty sequence of integers in 0..{depth}; got {layers!r}"
        )
    if arr.min() < 0 or arr.max() > depth or np.any(np.diff(arr) <= 0):
        raise ValueError(
            f"layers must be strictly increasing integers in 0..depth = 0..{depth}; "
            f"got {arr.tolist()}"
        )
    return arr.astype(np.int64)


def gram(kind, activation, block, input, depth, K0, layers, r, sigma_w2, sigma_b2):
    """Gram matrices (grid..., len(layers), n, n) of the kernel (kind "kernel") or the NTK ("ntk").

    One generated pass per grid point: the n one-input paths (the diagonal), then the recursion
    of the n (n - 1) / 2 pairs' off-diagonal entries given those paths, written directly into the
    selected layers of the result.
    """
    G = check.gram_matrix("K0", K0)
    shape, grids = _grid(r, sigma_w2, sigma_b2)
    gen = module("gram", activation)
    prefix = "" if kind == "kernel" else "ntk_"
    path_fn, pairs_fn = (
        getattr(gen, f"{prefix}path_{block}"),
        getattr(gen, f"{prefix}offdiag_{block}"),
    )
    n = G.shape[0]
    n_state = len(gen.PATH_STATE[f"{prefix}path_{block}"])
    diag = np.arange(n)
    what = "the mean-field kernel" if kind == "kernel" else "the neural tangent kernel"
    out = np.empty((grids[0].shape[0], layers.shape[0], n, n))
    for g, (rg, sw2, sb2) in enumerate(zip(*grids)):
        k0, theta0 = initial_gram(gen, input, G, sw2, sb2)
        s0 = np.zeros((n_state, n))
        s0[0] = np.diag(k0)
        carried = [k0]
        if kind == "ntk":
            s0[-1] = np.diag(theta0)
            carried.append(theta0)
        path = np.empty((depth + 1, n_state, n))
        path_fn(rg, sw2, sb2, s0, path)
        if not np.all(np.isfinite(path[-1])):
            layer = int(np.argwhere((~np.isfinite(path)).reshape(depth + 1, -1).any(1))[0, 0])
            raise OverflowError(
                f"{what} leaves the float64 range at layer {layer}: it grows too "
                "fast for this depth and r (reduce depth or r)"
            )
        init = np.ascontiguousarray(np.stack(carried))
        _pairs(pairs_fn, (rg, sw2, sb2), path, init, layers, out[g])
        out[g][:, diag, diag] = path[layers, 0 if kind == "kernel" else -1]
        if not np.all(np.isfinite(out[g])):
            layer = int(
                layers[np.argwhere((~np.isfinite(out[g])).reshape(len(layers), -1).any(1))[0, 0]]
            )
            raise OverflowError(
                f"{what} leaves the float64 range at layer {layer}: it grows too "
                "fast for this depth and r (reduce depth or r)"
            )
    return out.reshape(shape + out.shape[1:])


def initial_gram(gen, input, G, sigma_w2, sigma_b2):
    """(K^0, Theta^0) as n x n matrices: the given kernel and no input parameters, or the input
    layer's (from the generated input maps, entry by entry: K^0_ab depends on G_ab only)."""
    if input == "kernel":
        return G, np.zeros_like(G)
    from .generated import inputs

    flat = np.ascontiguousarray(G.ravel())
    sw2, sb2 = np.full(flat.size, sigma_w2), np.full(flat.size, sigma_b2)
    out = []
    for fn in (inputs.input_kernel_single, gen.ntk_input_single):
        mat = np.empty(flat.size)
        fn(sw2, sb2, flat, mat)
        out.append(mat.reshape(G.shape))
    return tuple(out)


def _pairs(fn, params, path, init, layers, out):
    """fn over all rows of pairs, split into slices of about equal numbers of pairs over threads
    when there are many (the generated loop releases the GIL; each row writes its own entries)."""
    n = init.shape[1]
    m = n * (n - 1) // 2
    workers = min(os.cpu_count() or 1, max(1, m // _PAIRS_PER_THREAD))
    if workers == 1:
        fn(*params, path, init, layers, 0, n, out)
        return
    # Row a holds n - a - 1 pairs: cut where the cumulative count crosses equal shares.
    done = np.cumsum(n - 1 - np.arange(n))
    cuts = [0] + [int(np.searchsorted(done, m * w / workers)) + 1 for w in range(1, workers)] + [n]

    def run(a, b):
        fn(*params, path, init, layers, a, b, out)

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(run, cuts[:-1], cuts[1:]))
