"""The mean-field kernel K^l: the saddle point of the field theory, evaluated by generated code."""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .activations import ActivationLike
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


def kernel(activation: ActivationLike, *, r: ArrayLike, sigma_w2: ArrayLike, depth: int, K0: ArrayLike,
           sigma_b2: ArrayLike = 0.0, block: str = "full",
           input: str = "kernel") -> NDArray[np.float64]:
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
    sigma_w2 : float or array_like
        Weight variance sigma_w^2 >= 0 (weights are N(0, sigma_w2/N)).
    depth : int
        Number of residual blocks L >= 0.
    K0 : float or array_like, shape (2, 2)
        Input kernel K^0 (``input="kernel"``) or input Gram matrix G = x.x'/d (``input="layer"``,
        then K^0 = sigma_w2 G + sigma_b2): a number >= 0 for one input, a symmetric positive
        semi-definite 2x2 matrix for two.
    sigma_b2 : float or array_like, default 0.0
        Bias variance sigma_b^2 >= 0.
    block : {"full", "reduced"}, default "full"
        ``h + r (W phi(h) + b)`` or ``h + r phi(W h + b)``.
    input : {"kernel", "layer"}, default "kernel"
        Meaning of K0.

    Returns
    -------
    numpy.ndarray
        Shape ``(..., depth+1)`` for one input and ``(..., depth+1, 2, 2)`` for two, ``...``
        the broadcast shape of r, sigma_w2 and sigma_b2; units of K0. Two-input kernels are
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
    activation, block, input, depth = check.network(activation, block, input, depth)
    K0_entries, n_inputs = check.kernel_matrix("K0", K0)
    shape, grids = _grid(r, sigma_w2, sigma_b2)
    k0 = input_kernel_grid(K0_entries, n_inputs, input, grids[1], grids[2])
    which = "single" if n_inputs == 1 else "pair"
    fn = getattr(module("meanfield", activation), f"kernel_{which}_{block}")
    tail = (depth + 1,) if n_inputs == 1 else (depth + 1, 2, 2)
    out = run_on_grid(fn, grids, (k0,), aligned_empty((grids[0].shape[0],) + tail))
    finite_or_raise(out, "the mean-field kernel")
    return out.reshape(shape + tail)
