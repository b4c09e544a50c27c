"""The registry of document sections, in document order.

A section module defines ``SECTION = Section(name, title, build)``: ``build()`` reads the
derivation objects it shows and returns blocks (``blocks.py``): prose, headings and displays of
SymPy equations. To add a section, write a module here and add it to ``ORDER``; its name becomes
a choice of ``fieldgen latex --section``.
"""

from __future__ import annotations

from ..blocks import Section
from . import (
    action,
    closed_forms,
    continuum_one_loop,
    meanfield,
    model,
    ntk,
    one_loop,
    price,
    quadrature,
    response,
)

ORDER = (
    model,
    action,
    meanfield,
    price,
    closed_forms,
    quadrature,
    one_loop,
    continuum_one_loop,
    response,
    ntk,
)
SECTIONS: dict[str, Section] = {m.SECTION.name: m.SECTION for m in ORDER}


def select(names=None) -> list[Section]:
    """Sections by name, in document order (default: all); an unknown name is a ValueError."""
    if not names:
        return list(SECTIONS.values())
    unknown = [n for n in names if n not in SECTIONS]
    if unknown:
        raise ValueError(f"section must be one of {', '.join(SECTIONS)}; got {unknown[0]!r}")
    return [s for s in SECTIONS.values() if s.name in names]
