"""`python -m fieldgen` runs the command line (the same as the `fieldgen` script)."""

import sys

from .cli import main

sys.exit(main())
