"""Export the derivation to LaTeX (and PDF when pdflatex is installed).

Every displayed formula is printed from the SymPy objects the code generator uses, so the
document is the printed twin of the code (docs/theory, "The printed twin").

    .venv/bin/python examples/export_latex.py [OUTPUT_DIR]
"""

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import fieldgen
from fieldgen.derivations import meanfield

# One object: the erf layer map of the full block with two inputs, as an align* display.
print(fieldgen.latex(meanfield.layer_map("full", "erf", 2)))

out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="fieldgen-tex-"))
out.mkdir(parents=True, exist_ok=True)
tex = out / "meanfield.tex"
# The command line does the document: one section here (the whole document takes ~15 s).
command = [
    sys.executable,
    "-m",
    "fieldgen",
    "latex",
    "--section",
    "model",
    "meanfield",
    "-o",
    str(tex),
]
if shutil.which("pdflatex") or shutil.which("latexmk"):
    command.append("--pdf")
subprocess.run(command, check=True)
print(
    "wrote", tex, "and", tex.with_suffix(".pdf") if "--pdf" in command else "(no pdflatex: no PDF)"
)
assert tex.read_text().startswith("\\documentclass")
