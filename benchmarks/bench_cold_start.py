"""Cold start: the first call of each public function in a fresh process.

Each measurement is a new Python process (as a user's first script or CLI call is). "empty":
a process with an empty Numba cache folder of its own (NUMBA_CACHE_DIR; a fresh install or a new
machine), which compiles what it calls and writes the cache; "warm": the next process on that
folder, which loads what it needs from it. Every process times `import fieldgen` and one first
call: "import" is `import fieldgen` and `import numba` (warm; fieldgen itself imports Numba only
when a call needs it, Numba's import costs 0.25-0.4 s), "call" the first call, "total"
import and call of the warm process (its time to the first result, interpreter start-up
excluded), "cpu" the process's CPU seconds (user + system, import and call: less sensitive to a
loaded machine than the wall-clock columns). The CLI row times the whole `fieldgen optimal-r erf`
command, interpreter start-up included. Each figure is the median
of --repeat runs, each on a new cache folder.

The one-loop rows take one input, except the two rows marked "(2 inputs)" (closed forms only: the
generic path's two-input first call compiles its 3-D/4-D quadrature helpers, 20-25 s for tanh with
an empty cache, and is not timed here).

The "numba floor" row is what any cached Numba function costs on its first call in a new
process (a one-line `x + 1.0`, no fieldgen function), with Numba configured as fieldgen
configures it (fieldgen.jit_cache: its import-time BLAS probe answered without importing
scipy.linalg, which alone adds 0.15-0.3 s to plain Numba's first call): Numba's own start-up
(its import, then the first cache load initialises its CPU target and imports its NumPy
support), which fieldgen cannot remove. The warm total of a fieldgen call minus this row is
fieldgen's own part.
The last column lists heavy packages a warm process imported that the call does not need
(SymPy, SciPy's linalg, Dask, tqdm, matplotlib); it should be empty.

Child processes may write Python bytecode (PYTHONDONTWRITEBYTECODE is dropped from their
environment), as an installed package has it: otherwise every process compiles fieldgen's and the
generated modules' sources again (0.05-0.1 s, counted as fieldgen's in the warm columns).

The generic rows (--generic, default tanh: an activation without closed forms, whose Gaussian
expectations come from tables) run the same calls with the table store (FIELDGEN_CACHE_DIR) filled
beforehand by another process ("tables stored": a second process after any first use, or after
`fieldgen warm-cache`), and once with an empty table store as well ("fresh tables": the very
first use on a machine, which builds the tables of the functions the call compiles, when they
compile; a process loading them from Numba's cache reads no table). Every child process has a
table store of its own, never the user's.

Targets (issue: cold start): first call of any public function in a fresh install <= 2 s; a new
process with a warm cache <= 0.3 s to the first result. The last column but one compares the
empty process's time to its first result (import and call, interpreter start-up excluded; the
CLI row: the whole command) and the warm total with them. The machine is shared: run it when
quiet.

    python benchmarks/bench_cold_start.py [--activation erf] [--generic tanh] [--repeat 3]
        [--only kernel,simulate,cli,floor,generic,"kernel_covariance (2 inputs)"]
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

CALLS = {
    "kernel": "fieldgen.kernel(A, r=0.3, sigma_w2=1.0, depth=100, K0=[[1.0, 0.5], [0.5, 1.0]])",
    "sensitivity": "fieldgen.sensitivity(A, r=[0.1, 0.3], sigma_w2=1.0, depth=100, c0=0.5)",
    "optimal_r": "fieldgen.optimal_r(A, sigma_w2=1.0, depth=100, c0=0.9)",
    "kernel_covariance": "fieldgen.kernel_covariance(A, r=0.3, sigma_w2=1.0, depth=20, K0=1.0)",
    "simulate": "fieldgen.simulate(A, r=0.3, sigma_w2=1.0, depth=20, K0=1.0, width=64, samples=10)",
    # Two inputs: the pair accumulation and the 3x3 coefficients (several times the code).
    "kernel_covariance (2 inputs)": (
        "fieldgen.kernel_covariance(A, r=0.3, sigma_w2=1.0, depth=20, K0=[[1.0, 0.5], [0.5, 1.0]])"
    ),
    "kernel_mean_shift (2 inputs)": (
        "fieldgen.kernel_mean_shift(A, r=0.3, sigma_w2=1.0, depth=20, K0=[[1.0, 0.5], [0.5, 1.0]])"
    ),
}
# The generic path's rows (an activation without closed forms): tables stored, then fresh tables.
GENERIC_CALLS = ("kernel", "sensitivity", "kernel_covariance")
GENERIC_FRESH = ("kernel", "kernel_covariance")
EMPTY_TARGET, WARM_TARGET = 2.0, 0.3
HEAVY = ("sympy", "scipy.linalg", "dask", "distributed", "tqdm", "matplotlib", "fieldgen.report")

SCRIPT = """
import time, json, sys
c0, t0 = time.process_time(), time.perf_counter()
import fieldgen
import numba  # imported by the first call anyway; timed here so that "call" is fieldgen's part
t1 = time.perf_counter()
A = {activation!r}
{call}
c2, t2 = time.process_time(), time.perf_counter()
heavy = [m for m in {heavy!r} if m in sys.modules]
print(json.dumps({{"import": t1 - t0, "call": t2 - t1, "cpu": c2 - c0, "heavy": heavy}}))
"""

# Numba's fixed cost: a trivial cached function, first call in a new process.
FLOOR_MODULE = "import numba\n\n@numba.njit(cache=True)\ndef f(x):\n    return x + 1.0\n"
FLOOR_SCRIPT = """
import time, json, sys
sys.path.insert(0, {folder!r})
c0, t0 = time.process_time(), time.perf_counter()
import numba
import fieldgen.jit_cache  # Numba as fieldgen configures it (the BLAS probe; no fieldgen function)
t1 = time.perf_counter()
import floor_module
floor_module.f(1.0)
c2, t2 = time.process_time(), time.perf_counter()
print(json.dumps({{"import": t1 - t0, "call": t2 - t1, "cpu": c2 - c0, "heavy": []}}))
"""


def child_env(cache: str, tables: str) -> dict:
    """A child's environment: its own Numba cache folder and table store, Python bytecode
    written and reused."""
    env = dict(os.environ, NUMBA_CACHE_DIR=cache, FIELDGEN_CACHE_DIR=tables)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def run_script(code: str, env: dict) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def measure(code: str, tables: str | None = None) -> tuple[dict, dict]:
    """One (empty, warm) pair of processes on a new Numba cache folder; the table store
    `tables`, or a new empty one."""
    with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as fresh:
        env = child_env(cache, tables or fresh)
        return run_script(code, env), run_script(code, env)


def fill_tables(activation: str, calls, tables: str) -> None:
    """Run `calls` once (a throwaway Numba cache) so that `tables` holds the tables they use."""
    code = f"import fieldgen\nA = {activation!r}\n" + "\n".join(CALLS[c] for c in calls)
    with tempfile.TemporaryDirectory() as cache:
        subprocess.run([sys.executable, "-c", code], env=child_env(cache, tables), check=True)


def run_cli(activation: str, env: dict) -> tuple[float, float]:
    """Wall and CPU seconds (user + system) of the whole command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "fieldgen", "optimal-r", activation, "--depth", "100"],
        env=env,
        capture_output=True,
        check=True,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def verdict(empty: float, warm: float) -> str:
    """The row against the targets: empty-cache time to the first result, warm total."""
    mark = lambda value, target: "ok" if value <= target else "OVER"
    return f"{mark(empty, EMPTY_TARGET):>4}/{mark(warm, WARM_TARGET):<4}"


def row(name, pairs, floor=False):
    med = lambda key, i: statistics.median(p[i][key] for p in pairs)
    total = statistics.median(p[1]["import"] + p[1]["call"] for p in pairs)
    first = statistics.median(p[0]["import"] + p[0]["call"] for p in pairs)
    heavy = sorted({m for p in pairs for m in p[1]["heavy"]})
    print(
        f"{name:<38} {med('import', 1):>7.2f} {med('call', 0):>7.2f} {med('cpu', 0):>7.2f}"
        f" {med('call', 1):>7.2f} {total:>7.2f} {med('cpu', 1):>7.2f}"
        f" {'' if floor else verdict(first, total):>9}   {' '.join(heavy) or '-'}"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--activation", default="erf")
    parser.add_argument(
        "--generic", default="tanh", help="activation of the generic rows ('' for none)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--only", default="", help="comma-separated rows (default: all)")
    args = parser.parse_args()
    only = set(filter(None, args.only.split(",")))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"activation {args.activation}; seconds, median of {args.repeat}; each number a new "
        f"process; load average {load:.2f} at the start"
    )
    print(
        f"{'':<38} {'':>7} {'empty':>7} {'empty':>7} {'warm':>7} {'warm':>7} {'warm':>7}"
        f" {'targets':>9}"
    )
    print(
        f"{'first call':<38} {'import':>7} {'call':>7} {'cpu':>7} {'call':>7} {'total':>7}"
        f" {'cpu':>7} {'2 s/0.3 s':>9}   heavy imports (warm)"
    )

    def write_floor(folder):
        with open(os.path.join(folder, "floor_module.py"), "w") as f:
            f.write(FLOOR_MODULE)

    if not only or "floor" in only:
        with tempfile.TemporaryDirectory() as folder:
            write_floor(folder)
            code = FLOOR_SCRIPT.format(folder=folder)
            row("numba floor", [measure(code) for _ in range(args.repeat)], floor=True)
    for name, call in CALLS.items():
        if only and name not in only:
            continue
        code = SCRIPT.format(activation=args.activation, call=call, heavy=HEAVY)
        row(name, [measure(code) for _ in range(args.repeat)])
    if args.generic and (not only or "generic" in only):
        with tempfile.TemporaryDirectory() as tables:
            fill_tables(args.generic, GENERIC_CALLS, tables)
            for name in GENERIC_CALLS:
                code = SCRIPT.format(activation=args.generic, call=CALLS[name], heavy=HEAVY)
                row(f"{args.generic} {name}", [measure(code, tables) for _ in range(args.repeat)])
        for name in GENERIC_FRESH:
            code = SCRIPT.format(activation=args.generic, call=CALLS[name], heavy=HEAVY)
            label = f"{args.generic} {name}, fresh tables"
            row(label, [measure(code) for _ in range(args.repeat)])
    if not only or "cli" in only:
        cold, warm = [], []
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as tables:
                env = child_env(cache, tables)
                cold.append(run_cli(args.activation, env))
                warm.append(run_cli(args.activation, env))
        med = lambda runs, i: statistics.median(r[i] for r in runs)
        print(
            f"{'CLI optimal-r ' + args.activation:<38} {'':>7} {med(cold, 0):>7.2f} "
            f"{med(cold, 1):>7.2f} {med(warm, 0):>7.2f} {med(warm, 0):>7.2f} {med(warm, 1):>7.2f}"
            f" {verdict(med(cold, 0), med(warm, 0)):>9}   (whole command, interpreter start-up "
            "included)"
        )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"targets: empty cache <= 2 s to the first result, warm cache <= 0.3 s; load {load:.2f}")


if __name__ == "__main__":
    main()
