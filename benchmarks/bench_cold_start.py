"""Cold start: the first call of each public function in a fresh process.

Each measurement is a new Python process (as a user's first script or CLI call is). "empty":
a process with an empty Numba cache folder of its own (NUMBA_CACHE_DIR; a fresh install or a new
machine), which compiles what it calls and writes the cache; "warm": the next process on that
folder, which loads what it needs from it. Every process times import and one first call; the CLI row times
the whole `fieldgen optimal-r erf` command.

Targets (issue: cold start): first call of any public function in a fresh install <= 2 s; a new
process with a warm cache <= 0.3 s to the first result. The machine is shared: run it when quiet.

    python benchmarks/bench_cold_start.py [--activation erf]
"""

import argparse
import json
import os
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
}

SCRIPT = """
import time, json
t0 = time.perf_counter()
import fieldgen
t1 = time.perf_counter()
A = {activation!r}
{call}
t2 = time.perf_counter()
print(json.dumps({{"import": t1 - t0, "call": t2 - t1}}))
"""


def run(call: str, activation: str, env: dict) -> dict:
    code = SCRIPT.format(activation=activation, call=call)
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def run_cli(activation: str, env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "fieldgen", "optimal-r", activation, "--depth", "100"],
        env=env,
        capture_output=True,
        check=True,
    )
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--activation", default="erf")
    args = parser.parse_args()
    print(f"activation {args.activation}; seconds; each number a new process")
    print(f"{'first call':<20} {'import':>8} {'empty cache':>12} {'warm cache':>11}")
    for name, call in CALLS.items():
        with tempfile.TemporaryDirectory() as cache:
            env = dict(os.environ, NUMBA_CACHE_DIR=cache)
            empty = run(call, args.activation, env)
            warm = run(call, args.activation, env)
        print(f"{name:<20} {empty['import']:>8.2f} {empty['call']:>12.2f} {warm['call']:>11.2f}")
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        cold, warm = run_cli(args.activation, env), run_cli(args.activation, env)
    print(f"{'CLI optimal-r':<20} {'':>8} {cold:>12.2f} {warm:>11.2f}")
    print("targets: empty cache <= 2 s to the first result, warm cache <= 0.3 s")


if __name__ == "__main__":
    main()
