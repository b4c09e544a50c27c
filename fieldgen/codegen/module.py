"""Render a generated module: docstring, imports, helpers, public functions."""

from __future__ import annotations

from dataclasses import dataclass, field

from . import builders, mathlib
from .nodes import JitFunction
from .printer import FASTMATH, NumbaPrinter
from .quadrature import HelperLibrary

# Helpers every activation's modules may call, defined once in generated/shared.py.
SHARED_HELPERS = {**mathlib.BUILTIN, builders.PAIR_RUN_WRITER: builders.pair_run_writer}
# Helpers that live in another generated module, with the import that provides them.
EXTERNAL_HELPERS = {
    "graded_rule": "from .quadrature import graded_rule",
    "cholesky_psd": "from .quadrature import cholesky_psd",
    "stream_store": "from .streaming import stream_store",
    "store_fence": "from .streaming import store_fence",
    **{name: f"from .shared import {name}" for name in SHARED_HELPERS},
}


@dataclass
class ModuleSpec:
    """A generated module: `functions` are public, helpers are pulled in as the code needs them."""

    name: str
    doc: str
    functions: list = field(default_factory=list)
    library: HelperLibrary = field(default_factory=HelperLibrary)
    constants: list = field(default_factory=list)  # (name, python literal text)
    raw_text: str | None = None  # a verbatim module (the quadrature rule)
    tail_text: str = ""  # template code appended after the functions
    tail_names: list = field(default_factory=list)  # public names defined by tail_text
    integrity_check: bool = True  # call the package's checker at import

    @property
    def filename(self) -> str:
        return f"{self.name}.py"


def _print(printer: NumbaPrinter, node) -> str:
    text = printer._print(node)
    if printer._not_supported:
        missing = ", ".join(sorted(str(e) for e in printer._not_supported))
        raise ValueError(f"cannot print for Numba: {missing}")
    return text


# Runs first in every generated module (before Numba compiles anything, so an edit that breaks
# compilation still gets the warning that says how to repair it).
INTEGRITY_CHECK = (
    "from . import check_integrity as _check_integrity\n\n_check_integrity(__file__)\n\n"
)


def render(spec: ModuleSpec) -> str:
    text = _render_body(spec)
    return _after_docstring(text, INTEGRITY_CHECK) if spec.integrity_check else text


def _after_docstring(text: str, code: str) -> str:
    """Insert `code` after the module docstring (or at the top if there is none)."""
    if text.startswith('"""'):
        end = text.index('"""', 3) + 3
        end = text.index("\n", end) + 1
        return text[:end] + code + text[end:]
    return code + text


def _render_body(spec: ModuleSpec) -> str:
    if spec.raw_text is not None:
        return spec.raw_text
    printer = NumbaPrinter()
    public = [_print(printer, fn) for fn in spec.functions]
    helpers: dict[str, str] = {}
    depends: dict[str, set] = {}
    imports: set[str] = set()
    defined = {fn.name for fn in spec.functions}
    pending = set(printer.required) - defined
    while pending:
        name = pending.pop()
        if name in helpers:
            continue
        if name in EXTERNAL_HELPERS:
            imports.add(EXTERNAL_HELPERS[name])
            continue
        fn: JitFunction = spec.library.functions[name]
        outer, printer.required = printer.required, set()
        helpers[name] = _print(printer, fn)
        depends[name] = set(printer.required) - set(EXTERNAL_HELPERS)
        pending |= printer.required - set(helpers)
        printer.required = outer | printer.required
    lines = [
        '"""' + spec.doc.strip() + '\n"""',
        "import math",
        "",
        "import numpy as np",
        "from numba import njit" + (", vectorize" if any(f.ufunc for f in spec.functions) else ""),
    ]
    imports |= spec.library.imports
    if imports:
        lines += [""] + sorted(imports)
    lines += ["", "FASTMATH = {" + ", ".join(f'"{f}"' for f in FASTMATH) + "}"]
    for name, literal in spec.constants:
        lines.append(f"{name} = {literal}")
    names = ", ".join(
        [f'"{fn.name}"' for fn in spec.functions] + [f'"{n}"' for n in spec.tail_names]
    )
    lines.append(f"__all__ = [{names}]")
    for name in _dependencies_first(depends):
        lines += ["", "", helpers[name]]
    for text in public:
        lines += ["", "", text]
    return "\n".join(lines) + "\n" + spec.tail_text


def _dependencies_first(depends: dict[str, set]) -> list[str]:
    """Helper names sorted by name, each after the helpers it calls (eager compilation needs
    every callee defined first)."""
    done: list[str] = []

    def visit(name):
        if name in done:
            return
        for callee in sorted(depends[name]):
            visit(callee)
        done.append(name)

    for name in sorted(depends):
        visit(name)
    return done
