"""The two-input convention: results are 2x2 matrices, indexed like the kernel.

Every public function returns two-input results with one trailing ``(2, 2)`` group per kernel
index, exactly like :func:`fieldgen.kernel`:

- ``kernel``: ``K[..., l, a, b]``;
- ``kernel_mean_shift``: ``shift[l, a, b]``;
- ``kernel_covariance``: ``C[l, m, a, b, c, d] = N Cov(Khat^l_ab, Khat^m_cd)``;
- ``response`` and ``response_one_loop``: ``chi[..., a, b, c, d] = dK^L_ab / dK0_cd``.

The generated evaluators work on the three distinct entries, the *pair vector*
``(K_11, K_22, K_12)`` (:data:`PAIR_ORDER`). :func:`to_pairs` and :func:`to_matrix` convert
between the two layouts, e.g. to build a ``3 L x 3 L`` covariance matrix over (layer, pair).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

#: Names of the three distinct entries of a symmetric 2x2 kernel, in pair-vector order.
PAIR_ORDER: tuple[str, str, str] = ("11", "22", "12")
#: Matrix positions (row, column) of the pair-vector entries (zero-based).
PAIR_POSITIONS: tuple[tuple[int, int], ...] = ((0, 0), (1, 1), (0, 1))
# matrix position (a, b) -> pair index: 11 -> 0, 22 -> 1, 12 and 21 -> 2
_PAIR_INDEX = np.array([[0, 2], [2, 1]])


def _check_groups(groups: int) -> int:
    if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"groups must be an integer >= 1; got {groups!r}")
    return int(groups)


def to_pairs(x: ArrayLike, groups: int = 1) -> NDArray[np.float64]:
    """Replace the last ``groups`` (2, 2) index groups of `x` by pair vectors (11, 22, 12).

    Parameters
    ----------
    x : array_like, shape (..., 2, 2) * groups
        Two-input result in the matrix convention (symmetric in each 2x2 group).
    groups : int, default 1
        Number of trailing 2x2 groups: 1 for a kernel or a mean shift, 2 for a covariance or a
        response.

    Returns
    -------
    numpy.ndarray, shape (..., 3) * groups
        The entries at :data:`PAIR_POSITIONS` of every group.

    Raises
    ------
    ValueError
        If `groups` is not a positive integer or `x` does not end in ``groups`` (2, 2) groups.

    Examples
    --------
    >>> import fieldgen
    >>> from fieldgen.pairs import to_pairs
    >>> to_pairs([[1.0, 0.5], [0.5, 2.0]])
    array([1. , 2. , 0.5])
    >>> C = fieldgen.kernel_covariance("erf", r=0.3, sigma_w2=1.0, depth=4,
    ...                                K0=[[1.0, 0.5], [0.5, 1.0]])
    >>> to_pairs(C, groups=2).shape
    (5, 5, 3, 3)
    """
    groups = _check_groups(groups)
    a = np.asarray(x, dtype=float)
    if a.ndim < 2 * groups or a.shape[a.ndim - 2 * groups :] != (2, 2) * groups:
        raise ValueError(f"x must end in {groups} (2, 2) group(s); got shape {a.shape}")
    rows = np.array([p[0] for p in PAIR_POSITIONS])
    cols = np.array([p[1] for p in PAIR_POSITIONS])
    lead = a.ndim - 2 * groups
    for g in range(groups):
        # groups before g are already single pair axes, so group g starts at axis lead + g
        k = lead + g
        a = np.moveaxis(a, (k, k + 1), (-2, -1))[..., rows, cols]
        a = np.moveaxis(a, -1, k)
    return np.ascontiguousarray(a)


def to_matrix(x: ArrayLike, groups: int = 1) -> NDArray[np.float64]:
    """Replace the last ``groups`` pair-vector axes (length 3, order 11, 22, 12) by (2, 2) groups.

    The inverse of :func:`to_pairs`: the 12 entry is written to both off-diagonal positions.

    Parameters
    ----------
    x : array_like, shape (..., 3) * groups
        Pair vectors in :data:`PAIR_ORDER`.
    groups : int, default 1
        Number of trailing pair axes to expand.

    Returns
    -------
    numpy.ndarray, shape (..., 2, 2) * groups
        Symmetric 2x2 groups.

    Raises
    ------
    ValueError
        If `groups` is not a positive integer or `x` does not end in ``groups`` axes of length 3.

    Examples
    --------
    >>> from fieldgen.pairs import to_matrix
    >>> to_matrix([1.0, 2.0, 0.5])
    array([[1. , 0.5],
           [0.5, 2. ]])
    """
    groups = _check_groups(groups)
    a = np.asarray(x, dtype=float)
    if a.ndim < groups or a.shape[a.ndim - groups :] != (3,) * groups:
        raise ValueError(f"x must end in {groups} pair axis/axes of length 3; got shape {a.shape}")
    lead = a.ndim - groups
    index: tuple[Any, ...] = tuple([slice(None)] * lead)
    for g in range(groups):
        shape = [1] * (2 * groups)
        shape[2 * g], shape[2 * g + 1] = 2, 2
        index += (_PAIR_INDEX.reshape(shape),)
    return np.ascontiguousarray(a[index])
