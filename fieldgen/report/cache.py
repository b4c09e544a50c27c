"""A content-addressed cache of simulation results: `<folder>/<sha256>.npz`.

The key hashes the function's name, every argument (seed included), the fieldgen version and a
digest of the code that produced the numbers (the simulator's source and the generated modules
it runs), so a re-run with the same parameters and code reads the stored arrays and any change
recomputes. Every entry stores its own description (function, arguments, code digest); an
entry is used only if it loads and its description matches the request, otherwise it is
recomputed with a one-line warning (a damaged or swapped file never reaches a figure). Files are
written to a temporary name and renamed: an interrupted run never leaves a truncated entry.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from .. import __version__

# Bump when the meaning of a stored result changes without a code change.
FORMAT = 2

# The code behind a cached simulation: the simulator's modules (its random streams and block
# splitting included, where present) and every generated module (the simulator calls the
# generated layer maps). Dotted names of modules or packages; absent ones contribute nothing.
SIMULATOR_CODE = ("fieldgen.simulate", "fieldgen.chunks", "fieldgen.generated")


def _source_files(name: str) -> list[Path]:
    """The .py files of a module, or of a package (every .py in its folder, sorted)."""
    spec = importlib.util.find_spec(name)
    if spec is None:
        return []
    if spec.submodule_search_locations:
        return sorted(p for loc in spec.submodule_search_locations for p in Path(loc).glob("*.py"))
    return [Path(spec.origin)] if spec.origin else []


def code_digest(modules=SIMULATOR_CODE) -> str:
    """SHA-256 over the names and bytes of the source files of `modules`."""
    h = hashlib.sha256()
    for name in modules:
        for path in _source_files(name):
            h.update(f"{name}:{path.name}\0".encode())
            h.update(path.read_bytes())
            h.update(b"\0")
    return h.hexdigest()


@functools.lru_cache(maxsize=None)
def _simulator_digest() -> str:
    return code_digest(SIMULATOR_CODE)  # the code cannot change under a running process


def _plain(value):
    """JSON-able form of an argument (arrays and tuples as lists, numpy scalars as Python)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    return value


def describe(function: str, arguments: dict, code: str | None = None) -> dict:
    """What an entry holds: function, arguments, fieldgen version, code digest, cache format."""
    return {
        "function": function,
        "arguments": _plain(arguments),
        "version": __version__,
        "code": _simulator_digest() if code is None else code,
        "format": FORMAT,
    }


def _text(description: dict) -> str:
    return json.dumps(description, sort_keys=True)


def key(function: str, arguments: dict, code: str | None = None) -> str:
    """SHA-256 of describe(function, arguments, code)."""
    return hashlib.sha256(_text(describe(function, arguments, code)).encode()).hexdigest()


def _warn(message: str) -> None:
    print(f"fieldgen report: warning: {message}", file=sys.stderr)


class SimulationCache:
    """`call(name, fn, **arguments)` returns fn(**arguments), read from disk when stored.

    `hits` and `misses` count the calls answered from disk and computed, `rejected` the stored
    entries that were damaged or did not match their key (recomputed). Arguments that do not
    change the result (progress) are passed through `untracked` and left out of the key.
    `code` overrides the code digest (tests); `warn` receives the one-line warnings.
    """

    def __init__(self, folder, *, code: str | None = None, warn=_warn):
        self.folder = Path(folder)
        self.code = code
        self.warn = warn
        self.hits = 0
        self.misses = 0
        self.rejected = 0

    def path(self, function: str, arguments: dict) -> Path:
        return self.folder / f"{key(function, arguments, self.code)}.npz"

    def call(self, function: str, fn, untracked: dict | None = None, **arguments) -> np.ndarray:
        path = self.path(function, arguments)
        stored = self._load(path, describe(function, arguments, self.code))
        if stored is not None:
            self.hits += 1
            return stored
        self.misses += 1
        value = np.asarray(fn(**arguments, **(untracked or {})))
        self._store(path, value, describe(function, arguments, self.code))
        return value

    def _load(self, path: Path, expected: dict):
        """The stored value if the file loads and describes exactly `expected`, else None."""
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                stored = json.loads(str(data["meta"][()]))
                value = np.array(data["value"])
        except Exception as exc:  # noqa: BLE001 - any damage (BadZipFile, EOFError, ...) means recompute
            problem = f"cannot be read ({type(exc).__name__}: {' '.join(str(exc).split())[:80]})"
        else:
            if isinstance(stored, dict) and _text(stored) == _text(expected):
                return value
            differs = (
                sorted(k for k in set(stored) | set(expected) if stored.get(k) != expected.get(k))
                if isinstance(stored, dict)
                else ["its description"]
            )
            problem = f"does not match its key ({', '.join(differs)} differ)"
        self.rejected += 1
        self.warn(f"cache entry {path} {problem}; recomputing it")
        return None

    def _store(self, path: Path, value: np.ndarray, description: dict) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".tmp-", suffix=".npz")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, value=value, meta=np.array(_text(description)))
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
