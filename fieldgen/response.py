"""The kernel response chi^{L,0} = dK^L/dK^0 and the sensitivity S = dc^L/dc^0 (mean field),
evaluated by the generated forward-mode recursions (``generated/response_<activation>.py``)."""
from __future__ import annotations

import numpy as np

from . import domain, scales
from . import validation as check
from .generated import module
from .meanfield import _grid, input_jacobian_grid, input_kernel_grid, kernel, run_on_grid


def _raise_if_not_finite(out: np.ndarray, what: str, network: dict, k0: np.ndarray) -> None:
    """An OverflowError naming the layer if the kernel overflows, a ValueError naming K0 if the
    input sits on a singularity of the layer map's derivative, never a NaN."""
    if np.all(np.isfinite(out)):
        return
    bad = ~np.all(np.isfinite(out.reshape(out.shape[0], -1)), axis=1)
    # The kernel at the failing grid points: if it overflows, say where.
    try:
        kernel(**{**network, **{name: np.broadcast_to(network[name], bad.shape)[bad]
                                for name in ("r", "sigma_w2", "sigma_b2")}})
    except OverflowError as exc:
        raise OverflowError(f"{what} is not finite: {exc}") from None
    domain.raise_not_finite(what, network["activation"], k0[bad],
                            f"{what} leaves the float64 range within {network['depth']} layers "
                            "(reduce depth or r)")


def response(activation, *, r, sigma_w2, depth, K0, sigma_b2=0.0, block="full", input="kernel",
             width=None):
    """dK^depth/dK0: the mean-field kernel response chi^{depth,0} = T^{depth-1} ... T^0.

    One input (K0 a number): a float. Two inputs (K0 a 2x2 matrix): a 3x3 array
    out[p, s] = dK^depth_p / dK0_s in pair order (11, 22, 12), K0_12 = K0_21 one variable. With
    input="layer", K0 is the input Gram matrix and the input layer's dK^0/dG is included.
    r, sigma_w2 and sigma_b2 broadcast; their shape is prepended.

    width=N gives the one-loop response d E[Khat^depth]/dK0 = chi + (1/N) d[N (E Khat - K)]/dK0
    (full block, scalar parameters): the derivative of ``kernel_mean_shift`` by central
    differences (relative step 1e-4; its truncation error, ~1e-8 relative, is far below 1/N).
    """
    activation, block, input, depth = check.network(activation, block, input, depth)
    K0_entries, n_inputs = check.kernel_matrix("K0", K0)
    if width is not None:
        width = check.integer("width", width, minimum=1)
        return _one_loop_response(activation, r=r, sigma_w2=sigma_w2, depth=depth, K0=K0,
                                  sigma_b2=sigma_b2, block=block, input=input, width=width)
    shape, grids = _grid(r, sigma_w2, sigma_b2)
    generated = module("response", activation)
    which, p = ("single", 1) if n_inputs == 1 else ("pair", 3)
    k0 = input_kernel_grid(K0_entries, n_inputs, input, grids[1], grids[2]).reshape(-1, p)
    if n_inputs == 2:
        # chi is scale-free where K is homogeneous in K^0 (and for r = 0, the identity)
        k0 = k0 / scales.rescaling(activation, k0, grids[2], identity=not np.any(grids[0]))
    jac = input_jacobian_grid(K0_entries, n_inputs, input, grids[1], grids[2])
    seeds = getattr(generated, f"SEEDS_{which.upper()}")
    v0 = np.ascontiguousarray(np.stack([jac[:, a, b] for a, b in seeds], axis=1))
    fn = getattr(generated, f"response_{which}_{block}")
    out = run_on_grid(fn, grids, (k0, v0), np.empty((grids[0].shape[0], p * p)), depth)
    network = dict(activation=activation, r=grids[0], sigma_w2=grids[1], sigma_b2=grids[2],
                   depth=depth, K0=K0, block=block, input=input)
    _raise_if_not_finite(out, "the kernel response", network, k0)
    if n_inputs == 1:
        return float(out[0, 0]) if shape == () else out.reshape(shape)
    return out.reshape(shape + (3, 3))


def sensitivity_inputs(*, c0, K0, sigma_w2, sigma_b2, input):
    """Initial state (K^0, K^0_12) and seed dK^0_12/dc0 of the sensitivity recursion, per grid point.

    The two inputs have equal norm K0 and correlation c0: K0_arg = K0 [[1, c0], [c0, 1]], so
    dK0_arg/dc0 = (0, 0, K0) in pair order, pushed through the input layer's Jacobian.
    """
    entries = np.array([K0, K0, c0 * K0])
    k0 = input_kernel_grid(entries, 2, input, sigma_w2, sigma_b2)
    jac = input_jacobian_grid(entries, 2, input, sigma_w2, sigma_b2)
    seed = jac[:, 2, :] @ np.array([0.0, 0.0, K0])
    return np.ascontiguousarray(k0[:, [0, 2]]), np.ascontiguousarray(seed[:, None])


def sensitivity(activation, *, r, sigma_w2, depth, c0, K0=1.0, sigma_b2=0.0, block="full",
                input="kernel"):
    """S = dc^depth/dc^0 = chi_{12,12} K^0/K^depth for two inputs of equal norm K0 and correlation c0.

    Vectorised: r, sigma_w2 and sigma_b2 broadcast and their shape is the result's (a float for
    scalars). S(0) = 1; with input="layer", c0 and K0 describe the input Gram matrix.
    """
    activation, block, input, depth = check.network(activation, block, input, depth)
    c0 = check.correlation("c0", c0)
    K0 = check.positive("K0", K0, scalar=True)
    shape, grids = _grid(r, sigma_w2, sigma_b2)
    k0, v0 = sensitivity_inputs(c0=c0, K0=K0, sigma_w2=grids[1], sigma_b2=grids[2], input=input)
    if np.any(k0[:, 0] <= 0):
        # Only an input layer with sigma_w2 = sigma_b2 = 0 gets here: K^0 = 0, c^0 undefined.
        raise ValueError("sigma_w2 and sigma_b2: with input='layer' the input kernel "
                         "K^0 = sigma_w2 K0 + sigma_b2 must be > 0 for the correlation to exist; "
                         "got sigma_w2 = sigma_b2 = 0")
    # S is scale-free where K is homogeneous in K^0 (exact rescaling); an error elsewhere.
    s = scales.rescaling(activation, k0[:, [0, 0, 1]], grids[2],
                         identity=input == "kernel" and not np.any(grids[0]))
    if s != 1.0:
        k0, v0 = k0 / s, v0 / s
    fn = getattr(module("response", activation), f"sensitivity_{block}")
    out = run_on_grid(fn, grids, (k0, v0), np.empty((grids[0].shape[0], 1)), depth)
    network = dict(activation=activation, r=grids[0], sigma_w2=grids[1], sigma_b2=grids[2],
                   depth=depth, K0=np.array([[1.0, c0], [c0, 1.0]]) * (K0 / s), block=block,
                   input=input)
    _raise_if_not_finite(out, "the sensitivity", network, k0[:, [0, 0, 1]])
    return float(out[0, 0]) if shape == () else out.reshape(shape)


def _one_loop_response(activation, *, r, sigma_w2, depth, K0, sigma_b2, block, input, width):
    """chi + (1/N) d shift^depth / dK0 with the shift's derivative by central differences
    (one-sided where a step would leave the positive semi-definite cone: c0 = +-1, K0 = 0)."""
    from .oneloop import kernel_mean_shift

    for name, value in (("r", r), ("sigma_w2", sigma_w2), ("sigma_b2", sigma_b2)):
        check.nonnegative(name, value, scalar=True)
    kw = dict(r=r, sigma_w2=sigma_w2, depth=depth, sigma_b2=sigma_b2, block=block, input=input)
    chi = response(activation, K0=K0, **kw)
    entries, n_inputs = check.kernel_matrix("K0", K0)
    # A step per entry relative to its own scale (a diagonal entry, or sqrt(K11 K22) for K12):
    # one step for all would be large against the smaller norm when the norms differ a lot.
    scales = np.abs(entries) if n_inputs == 1 else np.array(
        [entries[0], entries[1], np.sqrt(entries[0]) * np.sqrt(entries[1])])
    fallback = max(float(np.max(np.abs(entries))), 1e-12)
    steps = 1e-4 * np.where(scales > 0, scales, fallback)

    def shift(moved):
        """N shift^depth at pair entries `moved`, or None outside the cone (the same rule, and
        round-off tolerance, as the check of K0 itself: the centre is always inside)."""
        arg = float(moved[0]) if n_inputs == 1 else check.pair_to_matrix(moved)
        try:
            check.kernel_matrix("K0", arg)
        except ValueError:
            return None
        return np.atleast_1d(kernel_mean_shift(activation, K0=arg, **kw)[-1])

    centre = None
    derivative = np.empty((len(entries), len(entries)))
    for s, h in enumerate(steps):
        step = np.zeros(len(entries))
        step[s] = h
        up, down = shift(entries + step), shift(entries - step)
        if up is None and down is None:
            raise ValueError("K0 is too close to singular to differentiate the one-loop shift")
        if up is None or down is None:
            centre = shift(entries) if centre is None else centre
        if up is None:
            derivative[:, s] = (centre - down) / h
        elif down is None:
            derivative[:, s] = (up - centre) / h
        else:
            derivative[:, s] = (up - down) / (2 * h)
    correction = derivative / width
    return chi + (correction[0, 0] if n_inputs == 1 else correction)
