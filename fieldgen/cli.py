"""Command line: `fieldgen report`, `regenerate`, `summary`, `latex`, `optimal-r`, `scan`,
`warm-cache`.

`regenerate-formulas` is the same as `fieldgen regenerate`. Every error is one line
`fieldgen <command>: error: ...` on standard error with exit code 2 (bad arguments, including
values the API rejects) or 1 (the file system, memory, a broken install, an internal error);
Ctrl-C prints `fieldgen <command>: interrupted` and exits 130. `--debug` shows the traceback
instead.
"""

from __future__ import annotations

import argparse
import sys

# Errors that the user's arguments or environment cause: reported in one line, not a traceback.
ARGUMENT_ERRORS = (ValueError, OverflowError, NotImplementedError)


class _Version(argparse.Action):
    """--version, reading the installed metadata only when asked (every command starts faster)."""

    def __init__(
        self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None
    ):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        from . import __version__

        print(f"fieldgen {__version__}")
        parser.exit()


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: `fieldgen <command>: error: ...`, exit code 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _regenerate(args) -> int:
    from .codegen.regenerate import regenerate

    return regenerate(check=args.check, full=args.full)


def _summary(args) -> int:
    import numpy as np

    from . import kernel
    from . import validation as check

    check.correlation("c0", args.c0)
    check.positive("K0", args.K0, scalar=True)  # K0 = 0: no correlation to print
    K0 = np.array([[args.K0, args.c0 * args.K0], [args.c0 * args.K0, args.K0]])
    results = {
        str(a): kernel(
            a,
            r=np.array(args.r),
            sigma_w2=args.sigma_w2,
            sigma_b2=args.sigma_b2,
            depth=args.depth,
            K0=K0,
            block=args.block,
            input=args.input,
        )
        for a in _activations(args, args.activations)
    }
    print(
        f"Mean-field kernel of a {args.block}-block ResNet after L = {args.depth} layers "
        f"(sigma_w^2 = {args.sigma_w2:g}, sigma_b^2 = {args.sigma_b2:g}, K^0 = {args.K0:g}, "
        f"c^0 = {args.c0:g})"
    )
    print(f"{'activation':<10} {'r':>6} {'K^L / K^0':>12} {'c^L':>10}")
    for name, K in results.items():
        for r, k in zip(args.r, K[:, -1]):
            c = k[0, 1] / np.sqrt(k[0, 0] * k[1, 1])
            print(f"{name:<10} {r:>6.3g} {k[0, 0] / args.K0:>12.5g} {c:>10.6f}")
    return 0


def _latex(args) -> int:
    from pathlib import Path

    from .codegen.writer import write_if_changed
    from .tex.document import render
    from .tex.pdf import TexError, compile_pdf
    from .tex.sections import SECTIONS

    if args.list_sections:
        for section in SECTIONS.values():
            print(f"{section.name:<14} {section.title}")
        return 0
    if args.output is not None and not args.output.strip():
        raise ValueError("-o/--output must name a file; got an empty name")
    if args.pdf and not args.output:
        raise ValueError("--pdf needs -o FILE.tex")
    text = render(args.section)
    if not args.output:
        sys.stdout.write(text)
        return 0
    path = Path(args.output)
    try:
        changed = write_if_changed(path, text)
    except OSError as exc:  # name the target, not the hidden temporary file next to it
        raise OSError(f"cannot write {path}: {exc.strerror or exc}") from exc
    print(f"{'wrote' if changed else 'unchanged'} {path}")
    if args.pdf:
        try:
            done = compile_pdf(path)
        except TexError as exc:
            # Not caught by main(): importing TexError there would import SymPy for every command.
            if getattr(args, "debug", False):
                raise
            return _error(args.command, exc, 2)
        print(f"wrote {done.pdf} ({done.pages} pages)")
    return 0


def _optimal_r(args) -> int:
    from .optimum import TYPICAL, optimal_r

    kw = dict(
        sigma_w2=args.sigma_w2,
        depth=args.depth,
        c0=args.c0,
        K0=args.K0,
        sigma_b2=args.sigma_b2,
        block=args.block,
        input=args.input,
    )
    (activation,) = _activations(args, [args.activation] if args.activation else [])
    numeric = optimal_r(activation, **kw)
    analytic = optimal_r(activation, method="analytic", **kw)
    print(
        f"Optimal residual scale r* = argmax_r S(r), S = dc^L/dc^0: {activation}, "
        f"{args.block} block, depth L = {args.depth}, sigma_w^2 = {args.sigma_w2:g}, "
        f"sigma_b^2 = {args.sigma_b2:g}, K^0 = {args.K0:g}, c^0 = {args.c0:g}, input {args.input}"
    )
    if not numeric:
        print(f"  numeric:  {numeric.message}")
    else:
        hi = "inf" if numeric.r_hi is None else f"{numeric.r_hi:.4g}"
        print(
            f"  numeric:  r* = {numeric.r_star:.6g}, S(r*) = {numeric.S_max:.6g} "
            f"(S(0) = {numeric.S0:.6g})"
        )
        print(
            f"  range of maximal sensitivity (S/S(0) - 1 >= half its maximum): "
            f"[{numeric.r_lo:.4g}, {hi}]"
        )
    if not analytic:
        print(f"  analytic: {analytic.message}")
    else:
        diff = (
            ""
            if not numeric
            else f" ({100 * (analytic.r_star / numeric.r_star - 1):+.2f} % against numeric)"
        )
        print(f"  analytic: r* = {analytic.r_star:.6g}{diff}")
        print(f"            {analytic.approximation}")
    lo, hi = TYPICAL
    if numeric:
        verdict = "yes" if numeric.contains(lo, hi) else "no"
        print(f"  {lo:g}-{hi:g} inside the range of maximal sensitivity: {verdict}")
    return 0


def _scan(args) -> int:
    from .optimum import TYPICAL
    from .scan import HEADER, depth_window, format_row, scan, write_csv

    client = _scheduler(args)  # before any output: an unreachable scheduler is one line
    print(
        f"r* over depth and sigma_w^2: {args.block} block, sigma_b^2 = {args.sigma_b2:g}, "
        f"K^0 = {args.K0:g}, c^0 = {args.c0:g}, input {args.input}; range = where "
        "S/S(0) - 1 >= half its maximum"
    )
    print(HEADER, flush=True)

    def show(group):
        for row in group:
            print(format_row(row), flush=True)

    activations = _activations(args, args.activations)
    rows = scan(
        activations,
        args.depths,
        args.sigma_w2,
        c0=args.c0,
        K0=args.K0,
        sigma_b2=args.sigma_b2,
        block=args.block,
        input=args.input,
        analytic=not args.no_analytic,
        on_group=show,
        client=client,
    )
    if args.window:
        lo, hi = TYPICAL
        print(f"Depths at which {lo:g}-{hi:g} lies inside the range of maximal sensitivity:")
        for activation in activations:
            for s in args.sigma_w2:
                window = depth_window(
                    activation,
                    sigma_w2=s,
                    c0=args.c0,
                    K0=args.K0,
                    sigma_b2=args.sigma_b2,
                    block=args.block,
                    input=args.input,
                )
                where = "none" if window is None else f"L = {window[0]} to {window[1]}"
                print(f"  {str(activation):<10} sigma_w2 = {s:<6g} {where}", flush=True)
    if args.csv:
        write_csv(rows, args.csv)
        print(f"wrote {args.csv}")
    return 0


def _activations(args, names) -> list:
    """The activations a command runs on: built-in names, names defined with --activation
    NAME=EXPR, or NAME=EXPR in place of a name. With no name, the ones --activation defined."""
    from .activations import parse_definition

    defined = [parse_definition(d) for d in (getattr(args, "define", None) or [])]
    chosen = [parse_definition(n) for n in names]
    if not chosen:
        if not defined:
            raise ValueError(
                "name an activation (e.g. erf) or define one with --activation NAME=EXPR"
            )
        chosen = defined
    return chosen


def _list_activations(args) -> int:
    from .activations import listing

    rows = listing()
    print(f"{'name':<12} {'closed form':<12} {'modules':<36} expression")
    for row in rows:
        closed = {True: "yes", False: "no (generic)", None: "?"}[row["closed_form"]]
        print(f"{row['name']:<12} {closed:<12} {row['where']:<36} {row['expression']}")
    return 0


def _scheduler(args):
    """--scheduler ADDRESS or FIELDGEN_SCHEDULER: a Dask client (one-line error if unreachable)."""
    from .distributed import connect, scheduler_address

    address = scheduler_address(args.scheduler)
    return None if address is None else connect(address)


def _report(args) -> int:
    from .codegen.regenerate import regenerate

    if not args.out.strip():  # "" would write into the current folder
        raise ValueError("--out must name a folder; got an empty name")

    client = _scheduler(args)  # before any work: an unreachable scheduler is one line
    try:
        # Stale formulas first: the analyses import the generated modules only after this.
        if not args.no_regenerate and regenerate() != 0:
            return 1
        from .report import run

        command = "fieldgen report" + (" --quick" if args.quick else "")
        try:
            run(args.out, quick=args.quick, progress=args.progress, command=command, client=client)
        except OSError as exc:  # main() reports it (exit 1, the file system); say where
            raise OSError(
                f"cannot write the report into {args.out}: {exc.strerror or exc}"
            ) from exc
    finally:
        if client is not None:
            client.close()
    return 0


# What `fieldgen warm-cache` calls per activation: the public functions' common first calls (one
# and two inputs), each compiling the generated functions it uses into Numba's disk cache.
_PAIR = [[1.0, 0.5], [0.5, 1.0]]
_WARM_CALLS = (
    ("kernel", dict(r=0.3, sigma_w2=1.0, depth=2, K0=1.0)),
    ("kernel", dict(r=0.3, sigma_w2=1.0, depth=2, K0=_PAIR)),
    ("sensitivity", dict(r=[0.1, 0.3], sigma_w2=1.0, depth=2, c0=0.5)),
    ("optimal_r", dict(sigma_w2=1.0, depth=100, c0=0.9)),
    ("optimal_r", dict(sigma_w2=1.0, depth=100, c0=0.9, method="analytic")),
    ("kernel_covariance", dict(r=0.3, sigma_w2=1.0, depth=2, K0=1.0)),
    ("kernel_covariance", dict(r=0.3, sigma_w2=1.0, depth=2, K0=_PAIR)),
    ("kernel_mean_shift", dict(r=0.3, sigma_w2=1.0, depth=2, K0=1.0)),
    ("kernel_mean_shift", dict(r=0.3, sigma_w2=1.0, depth=2, K0=_PAIR)),
)


def _warm_fallbacks() -> None:
    """Compile the generic path's fallbacks behind its tables (registered by the generated
    modules imported so far; generated/quadrature.py, late1 / late3), which the calls above
    compile only where an argument falls outside the tables."""
    import sys

    quadrature = sys.modules.get("fieldgen.generated.quadrature")
    for fallback in getattr(quadrature, "_LATE", {}).values():
        if not fallback.signatures:
            arity = fallback.py_func.__code__.co_argcount
            fallback(*(1.0, 1.0, 0.5)[:arity])


def _warm_cache(args) -> int:
    import time

    import fieldgen

    names = args.activations or ([] if args.define else list(fieldgen.ACTIVATIONS))
    activations = _activations(args, names)
    total = time.perf_counter()
    for activation in activations:
        start = time.perf_counter()
        for name, kw in _WARM_CALLS:
            getattr(fieldgen, name)(activation, **kw)
        _warm_fallbacks()
        print(f"{activation}: {time.perf_counter() - start:.1f} s", flush=True)
    print(
        f"Numba's cache holds the common entry points of {len(activations)} activation(s) "
        f"({time.perf_counter() - total:.1f} s); later processes load them instead of compiling"
    )
    return 0


def _network_options(p, *, sigma_w2_many=False) -> None:
    if sigma_w2_many:
        p.add_argument(
            "--sigma-w2",
            nargs="+",
            type=float,
            default=[1.0, 2.0],
            help="weight variances (default 1 2)",
        )
    else:
        p.add_argument("--sigma-w2", type=float, default=1.0, help="weight variance (default 1)")
    p.add_argument("--sigma-b2", type=float, default=0.0, help="bias variance (default 0)")
    p.add_argument(
        "--K0", type=float, default=1.0, help="input variance of both inputs (default 1)"
    )
    p.add_argument("--c0", type=float, default=0.9, help="input correlation (default 0.9)")
    p.add_argument("--block", default="full", choices=["full", "reduced"])
    p.add_argument(
        "--input",
        default="kernel",
        choices=["kernel", "layer"],
        help="K0, c0 describe the input kernel, or the input Gram matrix of an input layer",
    )
    p.add_argument(
        "--activation",
        dest="define",
        action="append",
        metavar="NAME=EXPR",
        help="define an activation from an expression in x, e.g. "
        "'silu2=x/(1+exp(-x))', and use it by NAME (repeatable)",
    )


def _scheduler_option(p, what: str = "") -> None:
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help=f"run {what + ' ' if what else ''}on the Dask scheduler at ADDRESS, e.g. "
        "tcp://host:8786 (default: FIELDGEN_SCHEDULER, else in process)",
    )


def build_parser() -> argparse.ArgumentParser:
    # --debug is accepted before and after the command; SUPPRESS keeps a subcommand's default
    # from overwriting a --debug given before it.
    debug = Parser(add_help=False)
    debug.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show the full traceback of an error",
    )
    parser = Parser(
        prog="fieldgen",
        description="Finite-size field theory of residual networks.",
        parents=[debug],
    )
    parser.add_argument("--version", action=_Version, help="show the version and exit")
    sub = parser.add_subparsers(
        dest="command",
        required=True,
        metavar="command",
        parser_class=lambda **kw: Parser(parents=[debug], **kw),
    )

    p = sub.add_parser(
        "report",
        help="reproduce the paper's analyses as figures and report.md",
        description="Regenerate stale formulas, run the analyses (theory and "
        "cached simulations) and write five figures (PNG and PDF) "
        "and report.md with every parameter used.",
    )
    p.add_argument(
        "--out",
        default="out",
        metavar="DIR",
        help="output folder (default out/); simulations are cached in DIR/.cache",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="fewer samples, depths and grid points (same figures, about 2 minutes)",
    )
    p.add_argument(
        "--no-regenerate",
        action="store_true",
        help="do not check generated/ against the derivations first",
    )
    bars = p.add_mutually_exclusive_group()
    bars.add_argument(
        "--progress",
        dest="progress",
        action="store_true",
        default=None,
        help="always show progress bars (default: when stderr is a terminal)",
    )
    bars.add_argument("--no-progress", dest="progress", action="store_false")
    _scheduler_option(p, what="the simulations")
    p.set_defaults(run=_report)

    p = sub.add_parser(
        "regenerate",
        help="write generated/ from the SymPy derivations",
        description="Regenerate the Numba evaluators in generated/ from the "
        "derivations; only files whose content changes are written.",
    )
    p.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 with a diff if generated/ is stale (with --full: "
        "compared with a fresh build, which an edited banner cannot fool)",
    )
    p.add_argument(
        "--full",
        action="store_true",
        help="rebuild from the derivations even if the banners match the sources",
    )
    p.set_defaults(run=_regenerate)

    p = sub.add_parser(
        "summary",
        help="print a short mean-field summary",
        description="Mean-field kernel norm and correlation at the output layer.",
    )
    p.add_argument(
        "--activations",
        nargs="+",
        default=["relu", "erf", "tanh"],
        help="built-in names or NAME=EXPR (default relu erf tanh)",
    )
    p.add_argument("--r", nargs="+", type=float, default=[0.1, 0.3, 1.0])
    p.add_argument("--depth", type=int, default=100)
    _network_options(p)
    p.set_defaults(run=_summary)

    p = sub.add_parser(
        "latex",
        help="export the derivations as a LaTeX document",
        description="Print the derivation chain (model, action and saddle point, "
        "mean-field recursion, Price's theorem, closed forms, "
        "quadrature) as a LaTeX document, every displayed formula "
        "printed from the SymPy objects the code generator uses.",
    )
    p.add_argument(
        "-o",
        "--output",
        metavar="FILE.tex",
        help="write the document here (default: standard output)",
    )
    p.add_argument(
        "--pdf",
        action="store_true",
        help="also compile FILE.pdf with latexmk or pdflatex (needs -o)",
    )
    p.add_argument(
        "--section",
        nargs="+",
        action="extend",
        metavar="NAME",
        help="export only these sections (see --list-sections)",
    )
    p.add_argument("--list-sections", action="store_true", help="print the section names and exit")
    p.set_defaults(run=_latex)
    p = sub.add_parser(
        "optimal-r",
        help="optimal residual scale r* and the range of maximal sensitivity",
        description="Numeric r* = argmax_r S(r) of the sensitivity S = dc^L/dc^0, the "
        "range where S/S(0) - 1 is at least half its maximum, the analytic "
        "(continuum) r*, and whether 0.1-0.3 lies inside the range.",
    )
    p.add_argument(
        "activation",
        nargs="?",
        help="a built-in name (see fieldgen activations) or NAME=EXPR; default: the "
        "one defined with --activation",
    )
    p.add_argument(
        "--depth", type=int, default=100, help="number of residual blocks L (default 100)"
    )
    _network_options(p)
    p.set_defaults(run=_optimal_r)

    p = sub.add_parser(
        "scan",
        help="table of r* over depths and sigma_w^2",
        description="r* (numeric and analytic), the range of maximal sensitivity and "
        "the exponent d ln r*/d ln sigma_w^2 over depths and weight variances.",
    )
    p.add_argument(
        "activations",
        nargs="*",
        help="activations, e.g. erf tanh gelu, or NAME=EXPR (default: --activation's)",
    )
    p.add_argument("--depths", nargs="+", type=int, default=[30, 100, 300, 1000])
    _network_options(p, sigma_w2_many=True)
    p.add_argument("--no-analytic", action="store_true", help="skip the continuum r*")
    p.add_argument(
        "--window",
        action="store_true",
        help="also find the depths at which 0.1-0.3 lies inside the range",
    )
    p.add_argument("--csv", metavar="PATH", help="also write the table as CSV")
    _scheduler_option(p)
    p.set_defaults(run=_scan)

    p = sub.add_parser(
        "warm-cache",
        help="compile the common entry points into Numba's cache (run by `make` at install)",
        description="Call kernel, sensitivity, optimal_r (numeric and analytic), "
        "kernel_covariance and kernel_mean_shift (one and two inputs) once per activation, so "
        "that their generated functions are compiled into Numba's disk cache: a later "
        "process loads them instead of compiling (seconds per first call otherwise). The "
        "cache is the one every later run uses (next to the generated modules, else the "
        "user's or a private temporary folder; NUMBA_CACHE_DIR overrides).",
    )
    p.add_argument(
        "activations",
        nargs="*",
        help="built-in names or NAME=EXPR (default: the built-in generated modules: "
        "erf linear relu tanh)",
    )
    p.add_argument(
        "--activation",
        dest="define",
        action="append",
        metavar="NAME=EXPR",
        help="define an activation from an expression in x and warm it by NAME (repeatable)",
    )
    p.set_defaults(run=_warm_cache)

    p = sub.add_parser(
        "activations",
        help="list the built-in and cached activations",
        description="Built-in activations (generated into the package or on first "
        "use) and those defined by users in the cache, with their "
        "expression and whether their Gaussian expectations have "
        "closed forms.",
    )
    p.set_defaults(run=_list_activations)
    return parser


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except KeyboardInterrupt:
        return _interrupted("fieldgen")
    if getattr(args, "debug", False):
        return args.run(args)
    try:
        return args.run(args)
    except KeyboardInterrupt:
        return _interrupted(f"fieldgen {args.command}")
    except ARGUMENT_ERRORS as exc:
        return _error(args.command, exc, 2)
    except MemoryError as exc:
        # fieldgen's own checks say which parameter to reduce; a bare MemoryError does not.
        return _error(
            args.command,
            str(exc)
            or "out of memory (reduce depth, the number of "
            "r, sigma_w2 and sigma_b2 values, or samples)",
            1,
        )
    except OSError as exc:
        return _error(args.command, exc, 1)
    except ImportError as exc:
        # A generated module missing or unimportable (a broken install or checkout).
        return _error(
            args.command,
            f"cannot import {exc.name or 'a module'}: {exc}; reinstall "
            "fieldgen or run `fieldgen regenerate` in a source checkout",
            1,
        )
    except Exception as exc:  # noqa: BLE001 - the one-line promise holds for bugs too
        return _error(
            args.command,
            f"internal error ({type(exc).__name__}: {exc}); please report it with the command line",
            1,
        )


def _interrupted(prog: str) -> int:
    """Ctrl-C: one line, exit 130 (128 + SIGINT) as shells expect."""
    print(f"{prog}: interrupted", file=sys.stderr)
    return 130


def _error(command: str, exc, code: int) -> int:
    message = " ".join(str(exc).split()) or type(exc).__name__  # one line, whatever exc says
    print(f"fieldgen {command}: error: {message} (--debug shows the traceback)", file=sys.stderr)
    return code


def regenerate_main(argv=None) -> int:
    return main(["regenerate", *(sys.argv[1:] if argv is None else argv)])
