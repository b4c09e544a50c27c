"""Code-structure nodes the Numba printer knows how to print (see printer.py).

Expressions are SymPy; statements are SymPy's codegen AST (Assignment, For, Return, ...) plus the
few nodes below that SymPy does not have.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp


@dataclass(frozen=True)
class JitFunction:
    """A function compiled with numba.njit: signature, body statements, docstring."""

    name: str
    params: tuple  # Symbols (scalars) or IndexedBase (arrays), in call order
    signature: str  # Numba signature string, e.g. "float64(float64)"
    body: tuple  # codegen statements
    doc: str = ""
    inline: bool = False  # numba inline="always": small helpers in vectorised loops
    fastmath: bool = True  # value-safe fast-math flags (see printer.FASTMATH)
    ufunc: bool = False  # numba.vectorize: a NumPy ufunc of float64 scalars


@dataclass(frozen=True)
class Allocate:
    """target = np.empty(shape): a work array."""

    target: sp.Basic
    shape: tuple


@dataclass(frozen=True)
class StreamStore:
    """target and the elements after it along the last axis = values, with a non-temporal hint
    (generated/streaming.py): for large outputs written once, so they bypass the cache."""

    target: sp.Indexed
    values: tuple


@dataclass(frozen=True)
class Evaluate:
    """A call evaluated for its effect (a void helper), as a statement."""

    value: sp.Basic


@dataclass(frozen=True)
class StoreFence:
    """Make earlier streaming stores visible to other threads; ends a function that issued any."""


@dataclass(frozen=True)
class Comment:
    text: str


@dataclass(frozen=True)
class Raw:
    """A module-level statement that is not an expression (imports, constants)."""

    text: str


@dataclass(frozen=True)
class TupleReturn:
    values: tuple


@dataclass(frozen=True)
class TupleAssign:
    """(t1, t2, ...) = value: unpack a tuple-returning call into scalars."""

    targets: tuple
    value: sp.Basic


@dataclass(frozen=True)
class Block:
    statements: tuple = field(default_factory=tuple)


class ArrayShape(sp.Function):
    """array.shape[axis], an integer expression usable in ranges."""

    is_integer = True
    nargs = 2


def helper_call(name: str, *args) -> sp.Expr:
    """A call name(*args) to a generated helper, as a SymPy expression (opaque to CSE)."""
    return sp.Function(name, real=True)(*args)


class SqrtProduct(sp.Function):
    """sqrt(a b ...) of non-negative factors, kept as one root (SymPy would split it)."""

    is_real = True
    is_nonnegative = True


def combine_roots(expr: sp.Expr) -> sp.Expr:
    """sqrt(a) sqrt(b) -> SqrtProduct(a, b) and likewise for 1/sqrt, for non-negative a, b."""

    def roots(mul, exponent):
        return [f for f in mul.args if f.is_Pow and f.exp == exponent and f.base.is_nonnegative]

    def worth(e):
        return e.is_Mul and (len(roots(e, sp.S.Half)) > 1 or len(roots(e, -sp.S.Half)) > 1)

    def combine(mul):
        up, down = roots(mul, sp.S.Half), roots(mul, -sp.S.Half)
        rest = [f for f in mul.args if f not in up and f not in down]
        if len(up) > 1:
            rest.append(SqrtProduct(*sorted((f.base for f in up), key=sp.default_sort_key)))
        else:
            rest += up
        if len(down) > 1:
            rest.append(1 / SqrtProduct(*sorted((f.base for f in down), key=sp.default_sort_key)))
        else:
            rest += down
        return sp.Mul(*rest)

    return expr.replace(worth, combine)
