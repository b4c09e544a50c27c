"""Breaking a long right-hand side over lines at its top-level + and - signs.

LaTeX does not break display math, so the printer has to. The width of printed LaTeX is
estimated in "characters of typeset math": commands count as one glyph (or their name for
operators like \\arcsin), a fraction as its wider part, scripts as a fraction of their content.
The estimate only has to be good enough to keep lines inside the text block; the compile test
checks that no display overflows.
"""

from __future__ import annotations

import re

# Operators typeset as their name in roman type.
_NAMED = {
    "arcsin",
    "arccos",
    "arctan",
    "sin",
    "cos",
    "tan",
    "tanh",
    "sinh",
    "cosh",
    "exp",
    "log",
    "ln",
    "max",
    "min",
    "erf",
    "operatorname",
    "mathrm",
}
# Layout commands with no width of their own.
_INVISIBLE = {"left", "right", "nonumber", "displaystyle", "limits"}
_SCRIPT_SCALE = 0.7
_COMMAND = re.compile(r"\\([A-Za-z]+|.)")


def _group(tex: str, start: int) -> tuple[str, int]:
    """The brace group starting at tex[start] == '{' (or a single token), and the index after it."""
    if start >= len(tex):
        return "", start
    if tex[start] != "{":
        match = _COMMAND.match(tex, start)
        end = match.end() if match else start + 1
        return tex[start:end], end
    depth = 0
    for i in range(start, len(tex)):
        depth += {"{": 1, "}": -1}.get(tex[i], 0)
        if depth == 0:
            return tex[start + 1 : i], i + 1
    raise ValueError(f"unbalanced braces in {tex!r}")


def visible_width(tex: str) -> float:
    """Estimated width of a LaTeX math string, in characters."""
    width = 0.0
    i = 0
    while i < len(tex):
        ch = tex[i]
        if ch == "\\":
            match = _COMMAND.match(tex, i)
            name = match.group(1)
            i = match.end()
            if name == "frac":
                num, i = _group(tex, i)
                den, i = _group(tex, i)
                width += max(visible_width(num), visible_width(den)) + 0.5
            elif name == "sqrt":
                arg, i = _group(tex, i)
                width += visible_width(arg) + 1.0
            elif name in ("operatorname", "mathrm"):
                arg, i = _group(tex, i)
                width += len(arg)
            elif name in _NAMED:
                width += len(name)
            elif name in _INVISIBLE:
                # \left( and \right) still draw their delimiter.
                if i < len(tex) and tex[i] != "\\":
                    width += 0.0 if tex[i] == "." else 1.0
                    i += 1
            elif name in (",", ";", "!", " "):
                width += 0.3
            elif name in ("quad", "qquad"):
                width += 2.0 if name == "quad" else 4.0
            else:
                width += 1.0
        elif ch in "^_":
            arg, i = _group(tex, i + 1)
            width += _SCRIPT_SCALE * visible_width(arg)
        elif ch in "{} &":
            i += 1
        elif ch in "+-=<>":
            width += 2.0  # binary operators carry space on both sides
            i += 1
        else:
            width += 1.0
            i += 1
    return width


def pack(pieces: list[tuple[str, int]], first: float, rest: float) -> list[str]:
    """Greedy lines from pieces (LaTeX, parentheses open after it); budgets of the first line and
    of the others.

    A break inside \\left( ... \\right) closes the line with \\right. and reopens the next with
    \\left. (amsmath needs each row's delimiters balanced).
    """
    lines: list[str] = []
    line, used, budget, depth = "", 0.0, first, 0
    for text, after in pieces:
        width = visible_width(text)
        if line and used + width > budget:
            lines.append(line + r" \right." * depth)
            # {} makes a leading sign binary, spaced as it would be inside the line.
            line, used, budget = r"\left. " * depth + "{}", 0.0, rest
        line = f"{line} {text}" if line else text
        used += width
        depth = after
    lines.append(line)
    return lines
