"""Argument checks for the public API: every failure is a ValueError naming the parameter and
the allowed range, so a mistake never turns into a silent NaN."""

from __future__ import annotations

import numbers

import numpy as np

from .generated import BLOCKS, INPUT_MODES


def activation(name):
    """A built-in name generated into the package (str), or a fieldgen.activation object (preset
    names become one)."""
    from .activations import resolve

    return resolve(name)


def choice(param: str, value, allowed) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{param} must be one of {', '.join(map(repr, allowed))}; got {value!r}")
    return value


def block(value) -> str:
    return choice("block", value, BLOCKS)


def input_mode(value) -> str:
    return choice("input", value, INPUT_MODES)


def _as_float_array(param: str, value) -> np.ndarray:
    # One rule for every numeric parameter: real numbers only. Booleans, strings and complex
    # numbers (NumPy's too, which float() would cast with only a warning) are rejected.
    try:
        raw = np.asarray(value)
    except (TypeError, ValueError):
        raw = None
    if raw is None or raw.dtype.kind not in "iuf":
        raise ValueError(f"{param} must be a real number or an array of them; got {_short(value)}")
    arr = raw.astype(float)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{param} must be finite (no NaN or inf); got {_short(value)}")
    return arr


def _short(value) -> str:
    """repr of a value, cut to one readable line (a huge array must not flood the message)."""
    text = " ".join(repr(value).split())
    return text if len(text) <= 120 else text[:117] + "..."


def _bounded(param: str, value, scalar: bool, strict: bool):
    arr = _as_float_array(param, value)
    bound = "> 0" if strict else ">= 0"
    if scalar and arr.ndim != 0:
        raise ValueError(
            f"{param} must be a single number {bound}; got an array of shape {arr.shape}"
        )
    if np.any(arr <= 0 if strict else arr < 0):
        raise ValueError(f"{param} must be {bound}; got {_short(value)}")
    return float(arr) if scalar else arr


def nonnegative(param: str, value, *, scalar: bool = False):
    """A finite value >= 0 (an array of them unless scalar=True)."""
    return _bounded(param, value, scalar, strict=False)


def positive(param: str, value, *, scalar: bool = False):
    """A finite value > 0 (an array of them unless scalar=True)."""
    return _bounded(param, value, scalar, strict=True)


def correlation(param: str, value) -> float:
    """A single correlation coefficient in [-1, 1]."""
    arr = _as_float_array(param, value)
    if arr.ndim != 0:
        raise ValueError(
            f"{param} must be a single number in [-1, 1]; got an array of shape {arr.shape}"
        )
    if not -1.0 <= float(arr) <= 1.0:
        raise ValueError(f"{param} must be a correlation in [-1, 1]; got {value!r}")
    return float(arr)


def integer(param: str, value, *, minimum: int) -> int:
    """An integer >= minimum (bool is rejected; integral floats such as 3.0 are not integers)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{param} must be an integer >= {minimum}; got {value!r}")
    if value < minimum:
        raise ValueError(f"{param} must be an integer >= {minimum}; got {value!r}")
    return int(value)


def depth(value) -> int:
    return integer("depth", value, minimum=0)


def residual_scale(r, tau, sigma_w2, depth_value):
    """The residual scale r of a call that gives r or, for a depth-scaled network, tau = r^2
    sigma_w^2 L (exactly one of them): r = sqrt(tau / (sigma_w2 depth)), broadcast like tau and
    sigma_w2 (a float when both are numbers). r itself is returned unchanged, for the caller's
    own checks."""
    if (r is None) == (tau is None):
        raise ValueError(
            "r, tau: give exactly one, the residual scale r or the depth-scaled time "
            f"tau = r^2 sigma_w2 depth; got r={_short(r)}, tau={_short(tau)}"
        )
    if tau is None:
        return r
    tau = nonnegative("tau", tau)
    sigma_w2 = positive("sigma_w2", sigma_w2)  # tau fixes r only where sigma_w2 > 0
    if isinstance(depth_value, bool) or not isinstance(depth_value, numbers.Integral):
        raise ValueError(f"depth must be an integer >= 1; got {depth_value!r}")
    if depth_value < 1:
        raise ValueError(
            f"depth must be >= 1 with tau (r = sqrt(tau / (sigma_w2 depth))); got {depth_value!r}"
        )
    r_value = np.sqrt(tau / (sigma_w2 * depth_value))
    return float(r_value) if r_value.ndim == 0 else r_value


def network(activation_name, block_value, input_value, depth_value):
    """(activation, block, input, depth): the choices every mean-field evaluator takes."""
    return (
        activation(activation_name),
        block(block_value),
        input_mode(input_value),
        depth(depth_value),
    )


def kernel_matrix(param: str, value) -> tuple[np.ndarray, int]:
    """A variance >= 0 (one input) or a symmetric positive semi-definite 2x2 matrix (two inputs).

    Returns the pair-space entries (K11,) or (K11, K22, K12) and the number of inputs.
    """
    arr = _as_float_array(param, value)
    if arr.ndim == 0:
        if arr < 0:
            raise ValueError(f"{param} (a variance) must be >= 0; got {float(arr)!r}")
        return np.array([float(arr)]), 1
    if arr.shape != (2, 2):
        raise ValueError(
            f"{param} must be a number (one input) or a 2x2 matrix (two inputs); "
            f"got shape {arr.shape}"
        )
    scale = max(abs(arr).max(), np.finfo(float).tiny)
    with np.errstate(over="ignore", invalid="ignore"):
        asymmetry = abs(arr[0, 1] * 0.5 - arr[1, 0] * 0.5)  # halves: no overflow at 1e308
    if asymmetry > 0.5e-12 * scale:
        raise ValueError(f"{param} must be symmetric; got {arr.tolist()}")
    k11, k22, k12 = arr[0, 0], arr[1, 1], 0.5 * arr[0, 1] + 0.5 * arr[1, 0]
    # sqrt(K11 K22) as the generated code computes it (so c0 = K12/sqrt(K11 K22) is at most 1
    # exactly), sqrt(K11) sqrt(K22) where the product would overflow or underflow.
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        product = k11 * k22
    if (
        k11 >= 0
        and k22 >= 0
        and np.isfinite(product)
        and (product >= np.finfo(float).tiny or k11 == 0 or k22 == 0)
    ):
        bound = np.sqrt(product)
    else:
        bound = np.sqrt(max(k11, 0.0)) * np.sqrt(max(k22, 0.0))
    if k11 < 0 or k22 < 0 or abs(k12) > bound * (1 + 5e-13):
        raise ValueError(
            f"{param} must be positive semi-definite (K11, K22 >= 0 and "
            f"K12^2 <= K11 K22); got {arr.tolist()}"
        )
    # Within round-off of full correlation: put it on the boundary, so |c0| <= 1 exactly.
    return np.array([k11, k22, min(max(k12, -bound), bound)]), 2


def pair_to_matrix(entries: np.ndarray) -> np.ndarray:
    """Pair-space entries (..., 3) -> symmetric matrices (..., 2, 2)."""
    out = np.empty(entries.shape[:-1] + (2, 2))
    out[..., 0, 0] = entries[..., 0]
    out[..., 1, 1] = entries[..., 1]
    out[..., 0, 1] = out[..., 1, 0] = entries[..., 2]
    return out


def gram_matrix(param: str, value) -> np.ndarray:
    """A symmetric positive semi-definite n x n matrix (n >= 1), e.g. the kernel of a data set.

    Symmetry to 1e-12 relative (the mean of the two triangles is used); eigenvalues may be
    negative by round-off only (down to -1e-10 n max|entry|).
    """
    arr = _as_float_array(param, value)
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1] or arr.shape[0] == 0:
        raise ValueError(f"{param} must be a square n x n matrix; got shape {arr.shape}")
    scale = max(float(abs(arr).max()), np.finfo(float).tiny)
    if np.any(abs(arr - arr.T) > 1e-12 * scale):
        raise ValueError(f"{param} must be symmetric")
    arr = 0.5 * (arr + arr.T)
    if np.any(np.diag(arr) < 0):
        raise ValueError(
            f"{param} must be positive semi-definite; it has a negative diagonal entry"
        )
    # PSD up to round-off: a Cholesky factor exists after a shift by 1e-10 n max|entry| (an
    # O(n^3 / 3) check, far cheaper than the eigenvalues of a large data set's kernel).
    shift = 1e-10 * scale * arr.shape[0]
    try:
        np.linalg.cholesky(arr + shift * np.eye(arr.shape[0]))
    except np.linalg.LinAlgError:
        raise ValueError(
            f"{param} must be positive semi-definite; it has an eigenvalue below -{shift:.3g}"
        ) from None
    return arr


def available_memory() -> float | None:
    """Bytes of memory available to a new allocation (Linux: MemAvailable), None if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        import os

        return float(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def memory(what: str, nbytes: float, advice: str) -> None:
    """A MemoryError before a call starts if its result alone would not fit in memory
    (instead of a MemoryError, or swapping, minutes later). `advice` names what to reduce."""
    available = available_memory()
    if available is not None and nbytes > available:
        raise MemoryError(
            f"{what} needs {nbytes / 2**30:.3g} GiB of memory, {available / 2**30:.3g} "
            f"GiB are available: {advice}"
        )


def width_for_one_loop(width, block_value):
    """width (an integer >= 1) or None; with a width the block must be "full" (the one-loop
    theory covers the full block only)."""
    if width is None:
        return None
    width = integer("width", width, minimum=1)
    if block(block_value) != "full":
        raise ValueError(
            f"block must be 'full' with width given (the one-loop theory covers the full block "
            f"only); got block={block_value!r}, width={width}"
        )
    return width
