"""Render sections of the registry (``sections/``) into one LaTeX document.

Deterministic by construction: sections in registry order, equations in the order their section
lists them, no dates; the version in ``\\date`` is the package's.
"""

from __future__ import annotations

import sympy as sp

from .blocks import Display, Heading, Prose, Ref
from .linebreak import visible_width
from .printer import FieldgenLatexPrinter
from .sections import SECTIONS, select

# Right-hand sides are broken to about this many characters of typeset math (linebreak.py).
BREAK_WIDTH = 62

PREAMBLE = r"""\documentclass[11pt,a4paper]{article}
\usepackage[margin=2.5cm]{geometry}
\usepackage{amsmath,amssymb}
\numberwithin{equation}{section}
\allowdisplaybreaks
\setlength{\parindent}{0pt}
\setlength{\parskip}{0.6em}
"""


def _label(section: str, tag: str) -> str:
    return f"eq:{section}:{tag}"


class _Renderer:
    def __init__(self, names):
        self.sections = select(names)
        self.built = [(s, s.build()) for s in self.sections]
        self.labels = set()
        for s, blocks in self.built:
            for block in blocks:
                if isinstance(block, Display):
                    for tag, _ in block.rows:
                        label = _label(s.name, tag)
                        if label in self.labels:
                            raise ValueError(f"equation label {label} is used twice")
                        self.labels.add(label)
        self.inline = FieldgenLatexPrinter()

    def ref(self, ref: Ref) -> str:
        section, _, tag = ref.label.partition(":")
        label = _label(section, tag)
        if label in self.labels:
            return rf"\eqref{{{label}}}"
        if section in SECTIONS and section not in {s.name for s in self.sections}:
            # The section was not exported: name it instead of leaving a dangling reference.
            return rf"(section ``{SECTIONS[section].title}'')"
        raise ValueError(f"reference to unknown equation {ref.label}")

    def prose(self, block: Prose) -> str:
        out = []
        for piece in block.pieces:
            if isinstance(piece, str):
                out.append(piece)
            elif isinstance(piece, Ref):
                out.append(self.ref(piece))
            else:
                out.append(f"${self.inline.doprint(piece)}$")
        return "".join(out)

    def equations(self, section: str, block: Display) -> str:
        lhs = max(visible_width(self.inline.doprint(e.lhs)) for _, e in block.rows)
        display = FieldgenLatexPrinter({"break_width": BREAK_WIDTH, "lhs_width": lhs})
        rows = [f"{display.doprint(e)} \\label{{{_label(section, tag)}}}" for tag, e in block.rows]
        return "\\begin{align}\n" + " \\\\\n".join(rows) + "\n\\end{align}"

    def block(self, section: str, block) -> str:
        if isinstance(block, Prose):
            return self.prose(block)
        if isinstance(block, Display):
            return self.equations(section, block)
        if isinstance(block, Heading):
            return f"\\subsection{{{block.title}}}"
        raise TypeError(f"unknown block {type(block).__name__} in section {section}")

    def render(self, version: str) -> str:
        parts = [
            PREAMBLE,
            r"\title{Field theory of residual networks: the derivations of \texttt{fieldgen}}",
            r"\author{Exported by \texttt{fieldgen latex} from the SymPy derivations}",
            rf"\date{{fieldgen {version}, SymPy {sp.__version__}}}",
            r"\begin{document}",
            r"\maketitle",
            r"\tableofcontents",
            "",
        ]
        for s, blocks in self.built:
            parts.append(f"\\section{{{s.title}}}\\label{{sec:{s.name}}}\n")
            parts += [self.block(s.name, b) + "\n" for b in blocks]
        parts.append(r"\end{document}")
        return "\n".join(parts) + "\n"


def render(sections=None) -> str:
    """The LaTeX document of the named sections (default: all, in registry order)."""
    from .. import __version__

    return _Renderer(sections).render(__version__)
