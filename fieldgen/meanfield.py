"""The mean-field kernel K^l: the saddle point of the field theory, evaluated by generated code."""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from . import scales
from . import validation as check
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
        raise ValueError(f"r, sigma_w2 and sigma_b2 must broadcast together; got shapes "
                         f"{r.shape}, {sigma_w2.shape}, {sigma_b2.shape}") from None
    flat = [np.array(np.broadcast_to(a, shape), dtype=float, order="C").ravel()
            for a in (r, sigma_w2, sigma_b2)]
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
    return raw[offset:offset + size].reshape(shape)


def finite_or_raise(out: np.ndarray, what: str) -> None:
    """Raise if the path left the float64 range.

    The recursions add to the previous layer's state, so a NaN or inf persists to the last layer:
    checking it is enough; the full scan only runs to name the layer.
    """
    if np.all(np.isfinite(out[:, -1])):
        return
    bad = ~np.isfinite(out)
    layer = int(np.argwhere(bad.reshape(bad.shape[0], bad.shape[1], -1).any(axis=(0, 2)))[0, 0])
    raise OverflowError(f"{what} leaves the float64 range at layer {layer}: it grows too fast "
                        "for this depth and r (reduce depth or r)")


def kernel(activation, *, r, sigma_w2, depth, K0, sigma_b2=0.0, block="full", input="kernel"):
    """Mean-field (infinite-width) kernel K^l for l = 0..depth.

    K0 is the input kernel (input="kernel") or the input Gram matrix x.x'/d (input="layer",
    K^0 = sigma_w2 G + sigma_b2): a number for one input, a 2x2 matrix for two. r, sigma_w2 and
    sigma_b2 may be arrays; their broadcast shape is prepended to the result, which has shape
    (..., depth+1) for one input and (..., depth+1, 2, 2) for two.
    """
    activation, block, input, depth = check.network(activation, block, input, depth)
    K0_entries, n_inputs = check.kernel_matrix("K0", K0)
    shape, grids = _grid(r, sigma_w2, sigma_b2)
    k0 = input_kernel_grid(K0_entries, n_inputs, input, grids[1], grids[2])
    # Two inputs at extreme scales: exact rescaling where K is homogeneous in K^0, else an error.
    s = 1.0 if n_inputs == 1 else scales.rescaling(activation, k0, grids[2])
    which = "single" if n_inputs == 1 else "pair"
    fn = getattr(module("meanfield", activation), f"kernel_{which}_{block}")
    tail = (depth + 1,) if n_inputs == 1 else (depth + 1, 2, 2)
    check.memory("the kernel path", 8.0 * grids[0].shape[0] * np.prod(tail, dtype=float),
                 "reduce depth or the number of r, sigma_w2 and sigma_b2 values")
    out = run_on_grid(fn, grids, (k0 / s if s != 1.0 else k0,),
                      aligned_empty((grids[0].shape[0],) + tail))
    finite_or_raise(out, "the mean-field kernel")
    if n_inputs == 2 and (layer := scales.first_unresolved_layer(out)) is not None:
        raise OverflowError(f"the mean-field kernel leaves the range this code resolves at layer "
                            f"{layer} (K11 K22 above {scales.SAFE[1] ** 2:g} overflows): "
                            "reduce depth or r")
    if s != 1.0:
        with np.errstate(over="ignore"):
            out *= s
        finite_or_raise(out, "the mean-field kernel")
    return out.reshape(shape + tail)
