"""The neural tangent kernel Theta^l of the infinite-width network, by generated code.

NTK parameterisation: W^l = sigma_w w^l / sqrt(N), b^l = sigma_b beta^l with trainable
w, beta ~ N(0, 1) (the same network law as the model). Theta^l_ab is the kernel of the parameter
gradients of one neuron of layer l, summed over the weights and biases of layers 1..l, plus those
of the input layer h^0 = sigma_w w^0 x / sqrt(d) + sigma_b beta^0 when input="layer" (then
Theta^0 = K^0); with input="kernel" there is no trainable input layer and Theta^0 = 0. The
recursion is derived in derivations/ntk.py (full block:
Theta^l = (1 + r^2 sigma_w^2 <phi' phi'>) Theta^{l-1} + r^2 C^l, the 1 is the identity path).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import validation as check
from .activations import ActivationLike
from .meanfield import data_set_kernel, gram, select_layers


def ntk(
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
    """The infinite-width neural tangent kernel Theta^l for l = 0..depth (or the given `layers`).

    The NTK of an output neuron of h^l in the NTK parameterisation ``W = sigma_w w / sqrt(N)``,
    ``b = sigma_b beta`` (trainable w, beta ~ N(0, 1)), summed over the weights and biases of
    layers 1..l and, with ``input="layer"``, of the input layer; its recursion is derived in
    ``derivations/ntk.py`` from one neuron's layer map, identity path included.

    Parameters
    ----------
    activation : str or fieldgen.Activation
        A built-in name (:data:`fieldgen.ACTIVATIONS`, :data:`fieldgen.PRESETS`) or an
        activation made by :func:`fieldgen.activation`.
    r, sigma_w2, sigma_b2, depth, K0, block, input, x, x2, layers, tau
        As for :func:`fieldgen.kernel`.

    Returns
    -------
    numpy.ndarray
        The shapes of :func:`fieldgen.kernel`: ``(..., depth+1)`` for one input,
        ``(..., depth+1, 2, 2)`` for two, ``(..., depth+1, n, n)`` for a data set,
        ``(..., depth+1, n, m)`` for the cross kernel of x (n, d) and x2 (m, d).

    Raises
    ------
    ValueError
        A parameter outside its range (the message starts with its name).
    OverflowError
        If the NTK leaves the float64 range (the message names the layer).

    Examples
    --------
    >>> import fieldgen
    >>> T = fieldgen.ntk("erf", r=0.3, sigma_w2=1.0, depth=10, K0=[[1.0, 0.5], [0.5, 1.0]])
    >>> T.shape
    (11, 2, 2)
    >>> float(T[0, 0, 0])    # input="kernel": no input-layer parameters, Theta^0 = 0
    0.0
    """
    r = check.residual_scale(r, tau, sigma_w2, depth)
    activation, block, input, depth = check.network(activation, block, input, depth)
    K0, n_first = data_set_kernel(K0, x, input, x2)
    selected = select_layers(layers, depth)
    if n_first is not None:
        out = gram("ntk", activation, block, input, depth, K0, selected, r, sigma_w2, sigma_b2)
        return np.ascontiguousarray(out[..., :n_first, n_first:])
    arr = np.asarray(K0, dtype=float) if not isinstance(K0, np.ndarray) else K0
    if np.ndim(arr) == 0:
        check.kernel_matrix("K0", arr)
        out = gram(
            "ntk",
            activation,
            block,
            input,
            depth,
            np.reshape(arr, (1, 1)),
            selected,
            r,
            sigma_w2,
            sigma_b2,
        )
        return out[..., 0, 0]
    if np.shape(arr) == (2, 2):
        entries, _ = check.kernel_matrix("K0", arr)  # PSD up to round-off, put on the boundary
        arr = check.pair_to_matrix(entries)
    return gram("ntk", activation, block, input, depth, arr, selected, r, sigma_w2, sigma_b2)
