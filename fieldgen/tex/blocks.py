"""What a section is made of: prose, displayed equations, references, subsection headings.

Prose is LaTeX text; any SymPy object among its pieces is printed as inline math by the same
printer as the displays, so symbols read the same everywhere. Displayed equations are SymPy
``Eq`` objects only: nothing displayed is typed as a LaTeX string.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sympy as sp


@dataclass(frozen=True)
class Ref:
    """A reference to a displayed equation, "section:tag"; printed as (n) by \\eqref."""

    label: str


class Prose:
    """A paragraph: LaTeX text, SymPy objects (inline math) and Refs, concatenated."""

    def __init__(self, *pieces):
        for p in pieces:
            if not isinstance(p, (str, sp.Basic, Ref)):
                raise TypeError(
                    f"prose pieces are text, SymPy objects or Refs; got {type(p).__name__}"
                )
        self.pieces = pieces


class Display:
    """Numbered equations shown together (one amsmath align); rows are (tag, Eq), the tag unique
    in its section."""

    def __init__(self, *rows):
        for tag, equation in rows:
            if not isinstance(equation, sp.Equality):
                raise TypeError(f"display row {tag!r} must be a sympy Eq")
        self.rows = tuple(rows)


@dataclass(frozen=True)
class Heading:
    """A subsection heading."""

    title: str


def tagged(prefix: str, equations, tags) -> Display:
    """A display of equations tagged prefix-tag."""
    return Display(*((f"{prefix}-{t}", e) for t, e in zip(tags, equations, strict=True)))


@dataclass(frozen=True)
class Section:
    """A document section: its name for `--section`, title, and the function building its blocks
    (no arguments; it reads the derivation objects it shows)."""

    name: str
    title: str
    build: Callable[[], list]
