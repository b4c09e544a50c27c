"""A `fieldgen regenerate` run for the robustness tests (tests/test_integrity.py), in its own process.

    python regenerate_child.py FILES.json FOLDER PAUSE

writes the files of FILES.json (name -> text, a finished build) into FOLDER with the real
`regenerate.regenerate`. PAUSE > 0 sleeps that long after each temporary file is complete and
before it is renamed, so that a kill lands between and inside writes, and two runs overlap.
Prints "ready" once everything is imported.
"""

import json
import os
import sys
import time
from pathlib import Path

from fieldgen.codegen import regenerate

files = json.loads(Path(sys.argv[1]).read_text())
pause = float(sys.argv[3])
if pause > 0:
    rename = os.replace

    def slow_replace(src, dst):
        time.sleep(pause)
        rename(src, dst)

    os.replace = slow_replace
print("ready", flush=True)
sys.exit(regenerate.regenerate(files=files, folder=Path(sys.argv[2]), stream=sys.stdout))
