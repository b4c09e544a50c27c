"""Throughput of the generated mean-field evaluator against a plain NumPy recursion.

A 100 x 100 grid of r in [0.02, 0.5] and sigma_w^2 in [0.5, 3] at depth 1000, two inputs, erf
and relu. Every contender produces what `fieldgen.kernel` returns: the whole kernel path K^l,
l = 0..depth, as an (n, depth+1, 2, 2) array. The NumPy reference runs the same recursion
vectorised over the grid (layer by layer into a (depth+1, 3, n) path, NumPy's natural layout)
and then assembles that array. "generated, 1 core" calls the generated function on one thread into
an output allocated like kernel()'s (64-byte aligned, pages already touched); "kernel()" is the
public call: allocation, threads over the grid, the finiteness check. Timings are the best of
several runs in this process, the contenders taking turns. Targets: >= 1e7 layer-steps/s per core, >= 5x NumPy.

    python benchmarks/bench_kernel.py [--depth 1000] [--grid 100] [--repeat 5]
"""

import argparse
import math
import os
import time

import numpy as np

import fieldgen
from fieldgen.generated import module
from fieldgen.meanfield import aligned_empty


def assemble(path):
    """(depth+1, 3, n) pair-space path -> (n, depth+1, 2, 2) symmetric kernels."""
    out = np.empty((path.shape[2], path.shape[0], 2, 2))
    out[..., 0, 0] = path[:, 0].T
    out[..., 1, 1] = path[:, 1].T
    out[..., 0, 1] = out[..., 1, 0] = path[:, 2].T
    return out


def numpy_erf(r, sw2, k0, depth):
    a = r * r * sw2
    out = np.empty((depth + 1, 3, r.size))
    k11, k22, k12 = (np.full(r.size, v) for v in k0)
    out[0] = k0[:, None]
    for l in range(1, depth + 1):
        d1, d2 = 1 + 2 * k11, 1 + 2 * k22
        p11 = (2 / np.pi) * np.arcsin(2 * k11 / d1)
        p22 = (2 / np.pi) * np.arcsin(2 * k22 / d2)
        p12 = (2 / np.pi) * np.arcsin(2 * k12 / np.sqrt(d1 * d2))
        k11, k22, k12 = k11 + a * p11, k22 + a * p22, k12 + a * p12
        out[l, 0], out[l, 1], out[l, 2] = k11, k22, k12
    return assemble(out)


def numpy_relu(r, sw2, k0, depth):
    a = r * r * sw2
    out = np.empty((depth + 1, 3, r.size))
    k11, k22, k12 = (np.full(r.size, v) for v in k0)
    out[0] = k0[:, None]
    for l in range(1, depth + 1):
        s = np.sqrt(k11 * k22)
        c = np.clip(k12 / s, -1.0, 1.0)
        p12 = s / (2 * np.pi) * (np.sqrt(1 - c * c) + (np.pi - np.arccos(c)) * c)
        k11, k22, k12 = k11 + a * k11 / 2, k22 + a * k22 / 2, k12 + a * p12
        out[l, 0], out[l, 1], out[l, 2] = k11, k22, k12
    return assemble(out)


def best_of_interleaved(repeat, contenders):
    """{name: (best seconds, last result)}, running the contenders in turn `repeat` times.

    Taking turns lets every contender see the same machine: on a shared machine the speed of the
    same code drifts by tens of percent between minutes, which would leak into the ratios if
    each contender's runs were done in one stretch.
    """
    best = {name: (math.inf, None) for name in contenders}
    for _ in range(repeat):
        for name, fn in contenders.items():
            t = time.perf_counter()
            result = fn()
            elapsed = time.perf_counter() - t
            best[name] = (min(best[name][0], elapsed), result)
    return best


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--depth", type=int, default=1000)
    ap.add_argument("--grid", type=int, default=100, help="points per axis (grid^2 in all)")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    rr, ss = np.meshgrid(np.linspace(0.02, 0.5, args.grid), np.linspace(0.5, 3.0, args.grid))
    r, sw2 = rr.ravel().copy(), ss.ravel().copy()
    sb2 = np.zeros_like(r)
    n, L = r.size, args.depth
    steps = n * L
    K0 = np.array([[1.0, 0.5], [0.5, 1.3]])
    k0 = np.array([1.0, 1.3, 0.5])
    k0_grid = np.ascontiguousarray(np.broadcast_to(k0, (n, 3)))
    print(
        f"grid {n} points x depth {L}, two inputs: {steps:.2e} layer-steps per run "
        f"(best of {args.repeat}, taking turns; {os.cpu_count()} cores)"
    )
    cores = os.cpu_count()
    print(
        f"{'activation':<10} {'generated, 1 core':>18} {f'kernel(), {cores} cores':>20} "
        f"{'NumPy':>14} {'gen/NumPy':>10} {'API/NumPy':>10} {'max rel diff':>13}"
    )
    for name, reference in (("erf", numpy_erf), ("relu", numpy_relu)):
        fn = module("meanfield", name).kernel_pair_full
        out = aligned_empty((n, L + 1, 2, 2))
        out[...] = 0.0
        fn(r[:8], sw2[:8], sb2[:8], k0_grid[:8], out[:8])  # compile / load from cache
        fieldgen.kernel(name, r=r[:8], sigma_w2=sw2[:8], depth=2, K0=K0)
        best = best_of_interleaved(
            args.repeat,
            {
                "generated": lambda: fn(r, sw2, sb2, k0_grid, out),
                "api": lambda: fieldgen.kernel(name, r=r, sigma_w2=sw2, depth=L, K0=K0),
                "numpy": lambda: reference(r, sw2, k0, L),
            },
        )
        (t_gen, _), (t_api, _), (t_np, ref) = best["generated"], best["api"], best["numpy"]
        diff = float(np.max(np.abs(ref - out) / np.abs(ref)))
        print(
            f"{name:<10} {steps / t_gen:>13.3g} st/s {steps / t_api:>15.3g} st/s "
            f"{steps / t_np:>8.3g} st/s {t_np / t_gen:>9.1f}x {t_np / t_api:>9.1f}x {diff:>13.1e}"
        )


if __name__ == "__main__":
    main()
