"""Numba's disk cache, made safe for every install: imported before any generated module.

The generated evaluators are compiled with ``cache=True``. Numba stores the machine code next to
the source (``__pycache__``) or in the user's cache folder; on a read-only install without a
writable home (a service account, a container, a shared cluster install) it finds neither and
every first call fails with "cannot cache function ...: no locator available". Here:

* a last locator puts fieldgen's cache in a private folder of the temporary directory
  (``<tmp>/fieldgen-numba-<uid>``, mode 0700), so such installs compile once per machine; if
  even that cannot be written, functions compile in memory and nothing is stored;
* a damaged cache file (truncated index, garbage data) is a cache miss: the function is
  recompiled and the file overwritten, with one warning per process, never a traceback;
* Numba's first compilation or cache load in a process imports its array library, which asks
  whether SciPy's BLAS is there by importing ``scipy.linalg`` (0.3-0.8 s, more than loading every
  fieldgen function a call needs). That one question is answered from the files instead (the
  same answer, no import); Numba's real check still runs before any BLAS call is compiled;
* fieldgen's functions are compiled without the C-callable wrapper Numba adds to every function
  (for use as a first-class function value, which fieldgen never does): about 8 % of a first
  call's compile time, and less machine code in the cache.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
import tempfile
from pathlib import Path

from numba.core import caching

_PACKAGE = Path(__file__).resolve().parent  # fieldgen/
_warned: set[str] = set()


def _warn_once(kind: str, message: str) -> None:
    if kind not in _warned:
        _warned.add(kind)
        print(f"fieldgen: warning: {message}", file=sys.stderr)


def fallback_folder() -> Path:
    """The private cache folder used when neither the package nor the home folder is writable."""
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    return Path(tempfile.gettempdir()) / f"fieldgen-numba-{uid}"


def _ours(py_file: str) -> bool:
    """Whether a function's source belongs to fieldgen (generated modules included)."""
    try:
        path = Path(py_file).resolve()
    except OSError:
        return False
    roots = [_PACKAGE]
    try:
        import importlib.util

        spec = importlib.util.find_spec("fieldgen.generated")
        locations = (spec.submodule_search_locations or []) if spec is not None else []
        roots += [Path(p).resolve() for p in locations]
    except (ImportError, ValueError):
        pass
    return any(root == path.parent or root in path.parents for root in roots)


class TemporaryFolderLocator(caching.UserProvidedCacheLocator):
    """fieldgen's functions cached under fallback_folder() (tried after Numba's own locators)."""

    def __init__(self, py_func, py_file):
        self._py_file = py_file
        self._lineno = py_func.__code__.co_firstlineno
        self._cache_path = str(fallback_folder() / self.get_suitable_cache_subpath(py_file))

    def ensure_cache_path(self):
        folder = fallback_folder()
        folder.mkdir(mode=0o700, exist_ok=True)
        if folder.is_symlink() or (hasattr(os, "getuid") and folder.stat().st_uid != os.getuid()):
            raise OSError(f"{folder} is not a private folder of this user")
        super().ensure_cache_path()

    @classmethod
    def from_function(cls, py_func, py_file):
        if not _ours(py_file) or not os.path.exists(py_file):
            return None
        self = cls(py_func, py_file)
        try:
            self.ensure_cache_path()
        except OSError:
            return None
        return self


class InMemoryLocator(TemporaryFolderLocator):
    """The last resort: nothing writable anywhere. Loading finds no index (a miss) and saving
    fails quietly (see _save_overload below): the function is compiled in memory."""

    def ensure_cache_path(self):
        pass

    @classmethod
    def from_function(cls, py_func, py_file):
        if not _ours(py_file) or not os.path.exists(py_file):
            return None
        _warn_once(
            "no-cache",
            "no writable folder for Numba's cache (package, home and "
            f"{fallback_folder().parent} are read-only): compiling in memory, "
            "every new process compiles again",
        )
        return cls(py_func, py_file)


def _install() -> None:
    impl = caching.CacheImpl
    if TemporaryFolderLocator not in impl._locator_classes:
        impl._locator_classes = [*impl._locator_classes, TemporaryFolderLocator, InMemoryLocator]

    index_file = caching.IndexDataCacheFile
    load_index, load = index_file._load_index, index_file.load

    def _load_index(self):
        try:
            return load_index(self)
        except Exception as exc:  # noqa: BLE001 - a damaged index is a miss, it gets rewritten
            _warn_once(
                "damaged",
                f"ignoring a damaged Numba cache file ({self._index_path}: "
                f"{type(exc).__name__}); recompiling and overwriting it",
            )
            return {}

    def _load(self, key):
        try:
            return load(self, key)
        except Exception as exc:  # noqa: BLE001
            _warn_once(
                "damaged",
                f"ignoring a damaged Numba cache file in {self._cache_path} "
                f"({type(exc).__name__}); recompiling and overwriting it",
            )
            return None

    index_file._load_index, index_file.load = _load_index, _load  # type: ignore[method-assign]

    cache = caching.Cache
    load_overload, save_overload = cache.load_overload, cache.save_overload

    def _load_overload(self, *args, **kwargs):
        try:
            return load_overload(self, *args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - e.g. data that unpickles but does not rebuild
            _warn_once(
                "damaged",
                f"ignoring a damaged Numba cache entry of {self._name} "
                f"({type(exc).__name__}); recompiling",
            )
            return None

    def _save_overload(self, *args, **kwargs):
        try:
            return save_overload(self, *args, **kwargs)
        except OSError:
            if isinstance(self._impl.locator, InMemoryLocator):
                return None  # nothing writable (warned when the locator was chosen)
            raise

    cache.load_overload, cache.save_overload = _load_overload, _save_overload  # type: ignore[method-assign]


def _scipy_blas_on_disk() -> bool:
    """Whether ``scipy.linalg.cython_blas`` can be imported, judged from the files (no import)."""
    try:
        spec = importlib.util.find_spec("scipy")  # finds the package; does not import it
    except (ImportError, ValueError):
        return False
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            if os.path.exists(os.path.join(folder, "linalg", "cython_blas" + suffix)):
                return True
    return False


def _install_blas_probe() -> None:
    """Answer numba.np.arraymath's import-time BLAS probe without importing scipy.linalg.

    ``arraymath`` runs ``_HAVE_BLAS = _check_blas()`` when it is first imported (inside Numba's
    first compile or cache load), and ``_check_blas`` calls ``linalg.ensure_blas()``, which imports
    ``scipy.linalg.cython_blas``: all of ``scipy.linalg``. During that one import only,
    ``ensure_blas`` is swapped for a look at the files; afterwards it is Numba's own again, so
    compiling a BLAS call (``np.dot`` of arrays) imports SciPy and checks its ABI as before.
    Anything unexpected (another Numba version) leaves Numba untouched.
    """
    try:
        from numba.core.cpu import CPUContext
    except ImportError:  # pragma: no cover - another Numba layout: keep its behaviour
        return
    original = CPUContext.load_additional_registries
    if getattr(original, "_fieldgen_probe", False):
        return

    def load_additional_registries(self):
        if "numba.np.arraymath" not in sys.modules:
            try:
                from numba.np import linalg

                ensure_blas = linalg.ensure_blas
            except (ImportError, AttributeError):  # pragma: no cover
                return original(self)

            def probe():
                if not _scipy_blas_on_disk():
                    ensure_blas()  # raises ImportError, as Numba expects without SciPy

            linalg.ensure_blas = probe
            try:
                from numba.np import arraymath  # noqa: F401  (runs the probe once)
            finally:
                linalg.ensure_blas = ensure_blas
        return original(self)

    load_additional_registries._fieldgen_probe = True  # type: ignore[attr-defined]
    CPUContext.load_additional_registries = load_additional_registries  # type: ignore[method-assign]


# fieldgen's modules and the generated modules of user activations (fieldgen.usercache).
_OUR_MODULES = ("fieldgen.", "fieldgen_cache_")


def _install_no_cfunc_wrapper() -> None:
    """Compile fieldgen's functions (py_func in one of _OUR_MODULES) with Numba's
    ``no_cfunc_wrapper`` flag, as ``@njit(no_cfunc_wrapper=True)`` would. Other functions, and
    another Numba without this hook, are left as they are."""
    try:
        from numba.core.dispatcher import _FunctionCompiler  # type: ignore[attr-defined]
    except ImportError:  # pragma: no cover - another Numba layout: keep its behaviour
        return
    original = getattr(_FunctionCompiler, "_customize_flags", None)
    if original is None or getattr(original, "_fieldgen_no_cfunc", False):
        return

    def _customize_flags(self, flags):
        flags = original(self, flags)
        module = getattr(self.py_func, "__module__", None) or ""
        if module.startswith(_OUR_MODULES) and hasattr(flags, "no_cfunc_wrapper"):
            flags.no_cfunc_wrapper = True
        return flags

    _customize_flags._fieldgen_no_cfunc = True  # type: ignore[attr-defined]
    _FunctionCompiler._customize_flags = _customize_flags


_install()
_install_blas_probe()
_install_no_cfunc_wrapper()
