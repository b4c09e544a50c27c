"""Compile an exported document with latexmk or pdflatex, and read the result from the log."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

INSTALL_HINT = (
    "no pdflatex or latexmk on PATH; install TeX with "
    "`apt-get install texlive-latex-base` (Debian/Ubuntu)"
)
_MAX_RUNS = 4  # pdflatex reruns until cross-references settle


class TexError(RuntimeError):
    """TeX is missing, or the document does not compile cleanly."""


@dataclass(frozen=True)
class Compiled:
    pdf: Path
    pages: int
    log: str

    @property
    def overfull(self) -> list[str]:
        """Overfull box warnings: a display wider than the text block."""
        return [line for line in self.log.splitlines() if line.startswith("Overfull")]


def engine() -> list[str]:
    """The command that builds a PDF from a .tex file in the working directory."""
    if shutil.which("latexmk"):
        return ["latexmk", "-pdf", "-interaction=nonstopmode", "-halt-on-error"]
    if shutil.which("pdflatex"):
        return ["pdflatex", "-interaction=nonstopmode", "-halt-on-error"]
    raise TexError(INSTALL_HINT)


def problems(log: str) -> list[str]:
    """Errors and unresolved references reported in a LaTeX log."""
    found = [line for line in log.splitlines() if line.startswith("! ")]
    found += re.findall(r"LaTeX Warning: (?:Reference|Citation) .* undefined.*", log)
    if "There were undefined references" in log:
        found.append("There were undefined references")
    return found


def compile_pdf(tex: Path, pdf: Path | None = None, timeout: float = 300) -> Compiled:
    """Build tex into pdf (default: next to it); the auxiliary files stay in a temporary folder.

    Raises TexError when TeX is missing, reports an error or leaves references undefined.
    """
    command = engine()
    pdf = pdf or tex.with_suffix(".pdf")
    with tempfile.TemporaryDirectory(prefix="fieldgen-latex-") as tmp:
        work = Path(tmp) / "document.tex"
        shutil.copyfile(tex, work)
        runs = 1 if command[0] == "latexmk" else _MAX_RUNS
        for _ in range(runs):
            done = subprocess.run(
                command + [work.name],
                cwd=tmp,
                capture_output=True,
                text=True,
                timeout=timeout,
                stdin=subprocess.DEVNULL,
            )
            log_path = work.with_suffix(".log")
            log = log_path.read_text(errors="replace") if log_path.exists() else done.stdout
            if done.returncode != 0 or "Rerun to get" not in log:
                break
        found = problems(log)
        if done.returncode != 0 or found:
            detail = "; ".join(found[:3]) or f"{command[0]} exited with {done.returncode}"
            raise TexError(f"{tex} does not compile cleanly: {detail}")
        match = re.search(r"Output written on .*?\((\d+) pages?", log)
        shutil.copyfile(work.with_suffix(".pdf"), pdf)
    return Compiled(pdf, int(match.group(1)) if match else 0, log)
