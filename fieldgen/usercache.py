"""The per-user cache of generated modules for activations that are not generated into the package.

Layout: ``<cache>/activations/<name>-<digest>/<kind>.py`` with the digest a SHA-256 over the
activation's expression and over the generator's sources, so a changed generator or a changed
expression gets a new folder and nothing stale is ever served. Modules are derived and written
only when a call needs their kind (``meanfield`` for ``kernel``, ``response`` for ``sensitivity``,
...), under a file lock so that concurrent processes derive each module once, and written
atomically with the same banner as generated/ (a damaged file is detected and rewritten).

The cache folder is ``$FIELDGEN_CACHE_DIR``, else ``$XDG_CACHE_HOME/fieldgen``, else
``~/.cache/fieldgen``; if none of them is writable (a service account without a home), a folder
in the system's temporary directory that only this user can write.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import hashlib
import importlib.util
import json
import os
import sys
import tempfile
import threading
import warnings
from functools import lru_cache
from pathlib import Path

_LOCK = threading.Lock()  # one derivation at a time in this process (SymPy caches are global)


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError:
        return False
    return os.access(folder, os.W_OK | os.X_OK)


@lru_cache(maxsize=None)
def cache_root() -> Path:
    """The user's fieldgen cache folder (created on first use)."""
    candidates = []
    if os.environ.get("FIELDGEN_CACHE_DIR"):
        candidates.append(Path(os.environ["FIELDGEN_CACHE_DIR"]))
    if os.environ.get("XDG_CACHE_HOME"):
        candidates.append(Path(os.environ["XDG_CACHE_HOME"]) / "fieldgen")
    home = os.environ.get("HOME")
    if home:
        candidates.append(Path(home) / ".cache" / "fieldgen")
    for folder in candidates:
        if _writable(folder):
            return folder
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    folder = Path(tempfile.gettempdir()) / f"fieldgen-{user}"
    if _writable(folder) and folder.stat().st_uid == os.getuid():
        return folder
    raise OSError(
        f"no writable cache folder for generated modules (tried "
        f"{', '.join(map(str, candidates + [folder]))}); set FIELDGEN_CACHE_DIR"
    )


@lru_cache(maxsize=None)
def generator_digest() -> str:
    """SHA-256 of the derivations and the code generator: part of every cache key."""
    from .codegen.regenerate import source_roots
    from .codegen.writer import sources_digest

    return sources_digest(source_roots())


def activation_digest(srepr_text: str) -> str:
    return hashlib.sha256(f"{srepr_text}\0{generator_digest()}".encode()).hexdigest()


def activation_folder(name: str, digest: str) -> Path:
    return cache_root() / "activations" / f"{name}-{digest[:16]}"


@contextlib.contextmanager
def _file_lock(folder: Path):
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _absolute_imports(text: str) -> str:
    """Generated modules import their helpers relatively (from .shared import ...); a cached
    module lives outside the package and imports them from fieldgen.generated."""
    lines = []
    for line in text.split("\n"):
        if line.startswith("from . import "):
            line = "from fieldgen.generated import " + line[len("from . import ") :]
        elif line.startswith("from ."):
            line = "from fieldgen.generated." + line[len("from .") :]
        lines.append(line)
    return "\n".join(lines)


def _valid(path: Path) -> bool:
    from .codegen.writer import content_intact, split_banner

    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError):
        return False
    parsed = split_banner(text)
    return (
        parsed is not None
        and parsed[0].get("sources") == generator_digest()
        and content_intact(text)
    )


def _derive(kind: str, name: str, block: str | None) -> str:
    from .codegen.module import render
    from .codegen.targets import build_part
    from .codegen.writer import with_banner

    body = _absolute_imports(render(build_part(kind, name, block)))
    return with_banner(body, generator_digest())


def module_path(kind: str, activation, block: str | None = None) -> Path:
    """The cached module of `kind` (of one block, for the kinds split by block) for `activation`
    (a ``fieldgen.activation`` object), derived and written first if it is missing or damaged."""
    from .codegen.writer import write_atomic

    folder = activation_folder(activation.name, activation.digest)
    path = folder / (f"{kind}_{block}.py" if block else f"{kind}.py")
    if _valid(path):
        return path
    with _file_lock(folder):
        if _valid(path):  # another process wrote it while we waited
            return path
        if path.exists():
            warnings.warn(
                f"cached module {path} is damaged or from another generator; deriving it again",
                RuntimeWarning,
                stacklevel=3,
            )
        with _LOCK:
            activation.register()
            text = _derive(kind, activation.name, block)
        write_atomic(path, text)
        write_atomic(
            folder / "activation.json",
            json.dumps(
                {
                    "name": activation.name,
                    "expression": activation.expression,
                    "closed_form": activation.closed_form,
                },
                indent=1,
            )
            + "\n",
        )
    return path


_MODULES: dict[tuple, object] = {}
BLOCKS = ("full", "reduced")
PER_BLOCK = ("meanfield", "response")  # codegen.targets.PER_BLOCK, without importing SymPy


def _import(path: Path, module_name: str):
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import the cached module {path}")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = mod
    try:
        spec.loader.exec_module(mod)
    except BaseException:
        del sys.modules[module_name]
        raise
    return mod


def load_part(kind: str, activation, block: str | None):
    """Import (once per process) the cached module of `kind` (and block) for `activation`."""
    key = (kind, block, activation.digest)
    if key not in _MODULES:
        path = module_path(kind, activation, block)
        suffix = f"{kind}_{block}" if block else kind
        _MODULES[key] = _import(
            path, f"fieldgen_cache_{activation.name}_{activation.digest[:16]}_{suffix}"
        )
    return _MODULES[key]


class LazyModule:
    """A generated module of a cached activation, derived on first use, block by block.

    Attributes named ``*_full`` or ``*_reduced`` come from that block's module; everything else
    (constants, the one-input kinds) from the full block's, so a call of the full block never
    waits for the reduced block's derivation.
    """

    def __init__(self, kind: str, activation):
        self._kind = kind
        self._activation = activation

    def __getattr__(self, attr: str):
        if attr.startswith("__"):
            raise AttributeError(attr)
        block = None
        if self._kind in PER_BLOCK:
            block = next((b for b in BLOCKS if attr.endswith(f"_{b}")), "full")
        elif (self._kind, attr) == ("gauss", "phi"):
            block = "phi"  # the simulator needs the activation, not its expectations
        return getattr(load_part(self._kind, self._activation, block), attr)

    def __repr__(self) -> str:
        return f"<generated {self._kind} module of {self._activation.name} (user cache)>"


def load(kind: str, activation) -> LazyModule:
    """The cached module of `kind` for `activation`, parts derived and imported as used."""
    return LazyModule(kind, activation)


def cached_activations() -> list[dict]:
    """name, expression, closed_form and the kinds present, of every cached activation of this
    generator version."""
    root = cache_root() / "activations"
    out: list[dict] = []
    if not root.is_dir():
        return out
    for folder in sorted(root.iterdir()):
        try:
            meta = json.loads((folder / "activation.json").read_text())
        except (OSError, ValueError):
            continue
        kinds = sorted(p.stem for p in folder.glob("*.py") if _valid(p))
        if kinds:
            out.append(dict(meta, kinds=kinds))
    return out


# ---- Tables of the generic path ------------------------------------------------------------
#
# The generic path's tables (codegen/quadrature.py) are built from the integrands the first time
# a generated module needs them and kept here, one file per table: ``tables/<key>.npz`` with the
# key printed into the generated module by the generator (a SHA-256 of the table's kind, the
# integrand and the generator's sources: a changed integrand or generator reads other files, so
# nothing stale is ever served). Each file starts with a SHA-256 of its payload, checked on every
# load; a damaged or unreadable file is built again.

_TABLE_MAGIC = b"fieldgen-table 1\n"


def _write_bytes_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _read_table(path: Path):
    import io
    import zipfile

    import numpy as np

    try:
        data = path.read_bytes()
    except OSError:
        return None
    head = len(_TABLE_MAGIC)
    digest, payload = data[head : head + 64], data[head + 65 :]
    if data[:head] != _TABLE_MAGIC or hashlib.sha256(payload).hexdigest().encode() != digest:
        warnings.warn(
            f"stored table {path} is damaged; building it again", RuntimeWarning, stacklevel=3
        )
        return None
    try:
        with np.load(io.BytesIO(payload), allow_pickle=False) as npz:
            if npz.files == ["a"]:
                return np.ascontiguousarray(npz["a"])
            return tuple(np.ascontiguousarray(npz[f"t{i}"]) for i in range(len(npz.files)))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        return None


def table_path(key: str) -> Path:
    return cache_root() / "tables" / f"{key}.npz"


def load_table(key: str, build):
    """The table stored under `key` (an array, or a tuple of arrays, as `build` returns), else
    build() stored under it (atomically: concurrent processes may both build it, and one file
    wins); if there is no writable cache folder, build() alone."""
    import io

    import numpy as np

    try:
        path = table_path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError:
        return build()
    stored = _read_table(path)
    if stored is None:
        value = build()
        if isinstance(value, tuple):
            arrays = {f"t{i}": a for i, a in enumerate(value)}
        else:
            arrays = {"a": value}
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        payload = buffer.getvalue()
        digest = hashlib.sha256(payload).hexdigest().encode()
        with contextlib.suppress(OSError):
            _write_bytes_atomic(path, _TABLE_MAGIC + digest + b"\n" + payload)
        return value
    return stored
