"""Command line: `fieldgen regenerate`, ..."""
from __future__ import annotations

import argparse
import sys


def regenerate_main(argv=None) -> int:
    return main(["regenerate", *(sys.argv[1:] if argv is None else argv)])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="fieldgen")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("regenerate")
    p.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "regenerate":
        from .codegen.regenerate import regenerate
        return regenerate(check=args.check)
    return 0
