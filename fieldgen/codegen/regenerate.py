"""`fieldgen regenerate`: write generated/ from the derivations, or check that it is current."""

from __future__ import annotations

import importlib.util
import multiprocessing
import os
import signal
import sys
import time
from pathlib import Path

from . import writer


def package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"cannot locate package {name}")
    return Path(list(spec.submodule_search_locations)[0])


def generated_dir() -> Path:
    return package_dir("fieldgen.generated")


def source_roots() -> dict[str, Path]:
    """Everything generated code depends on: the derivations and the generator itself."""
    return {
        "derivations": package_dir("fieldgen.derivations"),
        "fieldgen/codegen": package_dir("fieldgen.codegen"),
    }


def _render_target(target):
    from .module import render
    from .targets import build_target

    spec = build_target(target)
    return spec.filename, render(spec)


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def build(jobs: int | None = None) -> dict[str, str]:
    """File name -> full text (banner included) of every generated file.

    Modules are derived in parallel processes (SymPy work is independent per module); the result
    does not depend on the number of processes.
    """
    from .targets import target_names

    digest = writer.sources_digest(source_roots())
    targets = target_names()
    jobs = jobs or min(len(targets), os.cpu_count() or 1)
    if jobs > 1:
        # Workers ignore Ctrl-C: only this process gets the KeyboardInterrupt, and leaving the
        # `with` block terminates the workers (a ProcessPoolExecutor hung here on Ctrl-C, its
        # workers interrupted mid-task).
        with multiprocessing.get_context("fork").Pool(jobs, initializer=_ignore_sigint) as pool:
            rendered = pool.map(_render_target, targets, chunksize=1)
    else:
        rendered = [_render_target(t) for t in targets]
    return {name: writer.with_banner(body, digest) for name, body in rendered}


def banners_current(folder: Path | None = None) -> bool:
    """True if every generated file is present, untouched (content hash) and made from the
    current sources (sources hash): then a rebuild would reproduce the files byte for byte
    (generation is deterministic; the test suite checks that with a full rebuild)."""
    from .targets import target_names

    folder = Path(folder) if folder is not None else generated_dir()
    digest = writer.sources_digest(source_roots())
    expected = {_filename(t) for t in target_names()}
    present = {
        p.name for p in folder.glob("*.py") if writer.split_banner(p.read_text()) is not None
    }
    if present != expected:
        return False
    for name in expected:
        text = (folder / name).read_text()
        fields, _ = writer.split_banner(text)
        if fields.get("sources") != digest or not writer.content_intact(text):
            return False
    return True


def _filename(target) -> str:
    kind, activation = target
    if activation is None:
        return {"package_init": "__init__.py"}.get(kind, f"{kind}.py")
    return f"{kind}_{activation}.py"


def _leftovers(folder: Path, expected) -> list[Path]:
    """Generated files (they carry the banner) that no target produces any more."""
    out = []
    for path in sorted(folder.glob("*.py")):
        if path.name not in expected and writer.split_banner(path.read_text()) is not None:
            out.append(path)
    return out


# A temporary file this old belongs to a run that was killed (live ones exist for milliseconds).
STALE_TEMPORARY_SECONDS = 600


def _remove_stale_temporaries(folder: Path) -> None:
    """Delete temporary files left by an interrupted run (never a live run's: see the age)."""
    now = time.time()
    for path in folder.glob(writer.TEMPORARY_GLOB):
        try:
            if now - path.stat().st_mtime > STALE_TEMPORARY_SECONDS:
                path.unlink()
        except FileNotFoundError:
            pass


def regenerate(check: bool = False, stream=None, *, files=None, folder=None, full=False) -> int:
    """Write (or with check=True compare) generated/; return a process exit code.

    `files` (from build()) and `folder` default to a fresh build and the package's generated/.
    Unless `full`, a tree whose banners match the current sources and whose bodies match their
    content hashes is up to date without rebuilding. That fast path trusts the banners: a body
    edited together with its content-hash line passes it, so `make check` runs `--check --full`
    (a comparison with a fresh build).
    """
    stream = stream or sys.stdout
    folder = Path(folder) if folder is not None else generated_dir()
    if files is None and not full and banners_current(folder):
        stream.write("generated/ is up to date (banners match the sources; --full rebuilds)\n")
        return 0
    files = build() if files is None else files
    stale = [
        name
        for name, text in files.items()
        if not (folder / name).exists() or (folder / name).read_bytes() != text.encode()
    ]
    leftovers = _leftovers(folder, files)
    if check:
        for name in stale:
            stream.write(writer.unified_diff(folder / name, files[name], f"generated/{name}"))
        for path in leftovers:
            stream.write(f"generated/{path.name}: no longer produced by the generator\n")
        if stale or leftovers:
            stream.write(
                f"generated/ is stale ({len(stale) + len(leftovers)} file(s)); "
                "run `fieldgen regenerate`\n"
            )
            return 1
        stream.write(f"generated/ is up to date ({len(files)} files)\n")
        return 0
    try:
        _remove_stale_temporaries(folder)
        changed = [
            name for name in sorted(files) if writer.write_if_changed(folder / name, files[name])
        ]
        for path in leftovers:
            path.unlink(missing_ok=True)  # another regenerate may have removed it first
    except OSError as exc:
        # A read-only install (or file system): one line naming the folder, no traceback.
        print(
            f"fieldgen regenerate: error: cannot write generated files into {folder}: "
            f"{exc.strerror or exc}; regenerate in a writable source checkout (pip install -e .)",
            file=sys.stderr,
        )
        return 1
    for name in changed:
        stream.write(f"wrote generated/{name}\n")
    for path in leftovers:
        stream.write(f"removed generated/{path.name}\n")
    stream.write(f"generated/: {len(changed)} of {len(files)} file(s) changed\n")
    return 0
