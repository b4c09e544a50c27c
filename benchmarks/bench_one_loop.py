"""Cost of the one-loop theory against the Monte-Carlo estimate it replaces.

1. Seconds for `kernel_covariance` and `kernel_mean_shift` at depths 100 and 1000, relu and erf,
   one and two inputs (best of `--repeat` runs after a warm-up that compiles).
2. The Monte-Carlo reference: networks needed to estimate N Var(Khat^L) to 5 % relative error at
   width 256 (from the fourth moment of a pilot run: rel. error = sqrt((m4/s^4 - 1)/n)), times
   the measured seconds per network of `fieldgen.simulate` with real weight matrices; the ratio
   to the theory's time at depth 100. Target: the theory at least 1e3 times cheaper.

    python benchmarks/bench_one_loop.py [--repeat 3] [--pilot 200] [--skip-depth-1000-pairs]
"""

import argparse
import time

import numpy as np

import fieldgen

PAIR = np.array([[1.0, 0.5], [0.5, 1.0]])
CASE = dict(r=0.1, sigma_w2=1.0)


def best_of(repeat, fn):
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--pilot", type=int, default=200, help="networks in the Monte-Carlo pilot run")
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--skip-depth-1000-pairs", action="store_true")
    args = ap.parse_args()

    print(
        f"One-loop theory, r = {CASE['r']}, sigma_w^2 = {CASE['sigma_w2']}, K0 = 1 (c0 = 0.5 for pairs)"
    )
    print(
        f"{'activation':<10} {'inputs':>6} {'depth':>6} {'kernel_covariance':>18} {'kernel_mean_shift':>18}"
    )
    theory_seconds = {}
    for name in ("relu", "erf"):
        for label, K0 in (("1", 1.0), ("2", PAIR)):
            for depth in (100, 1000):
                if depth == 1000 and label == "2" and args.skip_depth_1000_pairs:
                    continue
                repeat = args.repeat if depth == 100 or label == "1" else 1
                kw = dict(CASE, depth=depth, K0=K0)
                t_cov = best_of(repeat, lambda: fieldgen.kernel_covariance(name, **kw))
                t_shift = best_of(repeat, lambda: fieldgen.kernel_mean_shift(name, **kw))
                theory_seconds[name, label, depth] = t_cov
                print(
                    f"{name:<10} {label:>6} {depth:>6} {t_cov:>16.4f} s {t_shift:>16.4f} s",
                    flush=True,
                )

    print(
        f"\nMonte Carlo: N Var(Khat^L) to 5 % relative error, width {args.width}, depth 100, "
        "one input, real weight matrices"
    )
    print(
        f"{'activation':<10} {'kurtosis':>9} {'networks':>9} {'s/network':>10} {'MC seconds':>11} "
        f"{'theory s':>9} {'ratio':>9} {'theory':>10} {'pilot MC':>10}"
    )
    for name in ("relu", "erf"):
        kw = dict(CASE, depth=100, K0=1.0)
        fieldgen.simulate(name, width=8, samples=2, seed=0, **kw)
        t = time.perf_counter()
        Khat = fieldgen.simulate(name, width=args.width, samples=args.pilot, seed=1, **kw)[:, -1]
        per_network = (time.perf_counter() - t) / args.pilot
        centred = Khat - Khat.mean()
        kurtosis = (centred**4).mean() / centred.var() ** 2
        networks = int(np.ceil((kurtosis - 1) / 0.05**2))
        mc = networks * per_network
        theory = theory_seconds[name, "1", 100]
        nvar = fieldgen.kernel_covariance(name, **kw)[-1, -1]
        print(
            f"{name:<10} {kurtosis:>9.2f} {networks:>9d} {per_network:>10.4f} {mc:>11.1f} "
            f"{theory:>9.4f} {mc / theory:>9.0f} {nvar:>10.4f} {args.width * Khat.var(ddof=1):>10.4f}"
        )


if __name__ == "__main__":
    main()
