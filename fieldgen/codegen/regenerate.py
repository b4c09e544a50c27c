"""`fieldgen regenerate`: write generated/ from the derivations, or check that it is current."""
from __future__ import annotations

import importlib.util
import sys
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
    return {"derivations": package_dir("fieldgen.derivations"),
            "fieldgen/codegen": package_dir("fieldgen.codegen")}


def build() -> dict[str, str]:
    """File name -> full text (banner included) of every generated file."""
    from .module import render
    from .targets import all_modules

    digest = writer.sources_digest(source_roots())
    return {spec.filename: writer.with_banner(render(spec), digest) for spec in all_modules()}


def _leftovers(folder: Path, expected) -> list[Path]:
    """Generated files (they carry the banner) that no target produces any more."""
    out = []
    for path in sorted(folder.glob("*.py")):
        if path.name not in expected and writer.split_banner(path.read_text()) is not None:
            out.append(path)
    return out


def regenerate(check: bool = False, stream=None, *, files=None, folder=None) -> int:
    """Write (or with check=True compare) generated/; return a process exit code.

    `files` (from build()) and `folder` default to a fresh build and the package's generated/.
    """
    stream = stream or sys.stdout
    folder = Path(folder) if folder is not None else generated_dir()
    files = build() if files is None else files
    stale = [name for name, text in files.items()
             if not (folder / name).exists() or (folder / name).read_bytes() != text.encode()]
    leftovers = _leftovers(folder, files)
    if check:
        for name in stale:
            stream.write(writer.unified_diff(folder / name, files[name], f"generated/{name}"))
        for path in leftovers:
            stream.write(f"generated/{path.name}: no longer produced by the generator\n")
        if stale or leftovers:
            stream.write(f"generated/ is stale ({len(stale) + len(leftovers)} file(s)); "
                         "run `fieldgen regenerate`\n")
            return 1
        stream.write(f"generated/ is up to date ({len(files)} files)\n")
        return 0
    try:
        changed = [name for name in sorted(files) if writer.write_if_changed(folder / name, files[name])]
        for path in leftovers:
            path.unlink()
    except PermissionError as exc:
        stream.write(f"cannot write generated files into {folder}: {exc.strerror}. Regenerate in a "
                     "writable source checkout (pip install -e .), not an installed copy.\n")
        return 1
    for name in changed:
        stream.write(f"wrote generated/{name}\n")
    for path in leftovers:
        stream.write(f"removed generated/{path.name}\n")
    stream.write(f"generated/: {len(changed)} of {len(files)} file(s) changed\n")
    return 0
