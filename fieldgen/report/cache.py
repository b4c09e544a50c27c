"""A content-addressed cache of simulation results: `<folder>/<sha256>.npz`.

The key hashes the function's name, every argument (seed included) and the fieldgen version, so a
re-run with the same parameters reads the stored arrays and any change recomputes. Files are
written to a temporary name and renamed: an interrupted run never leaves a truncated entry.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from .. import __version__

# Bump when the meaning of a stored result changes without a version bump.
FORMAT = 1


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


def key(function: str, arguments: dict) -> str:
    """SHA-256 of (function, arguments, fieldgen version, cache format)."""
    text = json.dumps({"function": function, "arguments": _plain(arguments),
                       "version": __version__, "format": FORMAT}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


class SimulationCache:
    """`call(name, fn, **arguments)` returns fn(**arguments), read from disk when stored.

    `hits` and `misses` count the calls answered from disk and computed. Arguments that do not
    change the result (progress) are passed through `untracked` and left out of the key.
    """

    def __init__(self, folder):
        self.folder = Path(folder)
        self.hits = 0
        self.misses = 0

    def path(self, function: str, arguments: dict) -> Path:
        return self.folder / f"{key(function, arguments)}.npz"

    def call(self, function: str, fn, untracked: dict | None = None, **arguments) -> np.ndarray:
        path = self.path(function, arguments)
        stored = self._load(path)
        if stored is not None:
            self.hits += 1
            return stored
        self.misses += 1
        value = np.asarray(fn(**arguments, **(untracked or {})))
        self._store(path, value, function, arguments)
        return value

    @staticmethod
    def _load(path: Path):
        try:
            with np.load(path) as data:
                return data["value"]
        except (OSError, KeyError, ValueError):
            return None   # absent or unreadable: recompute and overwrite

    def _store(self, path: Path, value: np.ndarray, function: str, arguments: dict) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        meta = json.dumps({"function": function, "arguments": _plain(arguments),
                           "version": __version__}, sort_keys=True)
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".tmp-", suffix=".npz")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, value=value, meta=np.array(meta))
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
