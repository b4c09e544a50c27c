"""Cost of the one-loop theory against the Monte-Carlo estimate it replaces.

1. Seconds for `kernel_covariance` and `kernel_mean_shift` at depths 100 and 1000, relu and erf,
   one and two inputs (best of `--repeat` runs after a warm-up that compiles).
2. The Monte-Carlo reference: networks needed to estimate N Var(Khat^L) to 5 % relative error at
   width 256 (from the fourth moment of a pilot run: rel. error = sqrt((m4/s^4 - 1)/n)), times
   the measured seconds per network of `fieldgen.simulate` with real weight matrices; the ratio
   to the theory's time at depth 100. Target: the theory at least 1e3 times cheaper.

3. Two-input timings per activation (relu, erf, linear, tanh, gelu) at depths 100 and 1000
   (`--pair-depths`, `--pair-activations`), with the cost per layer pair. tanh and gelu pairs
   (no closed forms: multi-dimensional quadrature) interpolate their two-layer coefficients from
   a Chebyshev grid over the layer pairs when its error check passes: the grid taken (late-layer
   x t nodes, covariance / mean shift) or "direct" is printed, and at depths up to
   `--direct-max-depth` (100) the direct evaluation of every pair is timed in the same run for
   the ratio. Beyond `--generic-max-depth` (1000), or where the check falls back to direct
   evaluation beyond `--direct-max-depth`, the time is estimated from the shallowest run by the
   number of layer pairs (marked ~). Then the infinite-depth limit (`continuum_one_loop`, one and
   two inputs, with and without the 1/L term).
4. Accuracy: relu pair four-point coefficients against nested adaptive quadrature (scipy nquad
   over the positive orthant, rtol 1e-11) at c0 in {-0.9, 0, 0.5, 0.99} and unequal norms
   (`--accuracy`; minutes per point); then tanh's 4-D four-point moment (the generic path's
   trapezoidal rule) against a brute-force 4-D trapezoidal sum (step 0.15, a cube of nodes, no
   tables), and the tensor Gauss-Hermite rule (12 nodes per axis) it replaced.

    python benchmarks/bench_one_loop.py [--repeat 3] [--pilot 200] [--skip-depth-1000-pairs]
        [--pair-depths 100 1000] [--pair-activations relu erf linear tanh gelu]
        [--generic-max-depth 1000] [--direct-max-depth 100] [--accuracy]
"""

import argparse
import time

import numpy as np

import fieldgen
from fieldgen.generated import CLOSED_FORMS

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
    ap.add_argument("--pair-depths", type=int, nargs="+", default=[100, 1000])
    ap.add_argument(
        "--pair-activations", nargs="+", default=["relu", "erf", "linear", "tanh", "gelu"]
    )
    ap.add_argument(
        "--generic-max-depth",
        type=int,
        default=1000,
        help="deepest two-input run of an activation without closed forms (deeper: estimated)",
    )
    ap.add_argument(
        "--direct-max-depth",
        type=int,
        default=100,
        help="deepest direct evaluation of every layer pair timed for the ratio (generic pairs)",
    )
    ap.add_argument("--accuracy", action="store_true", help="print the accuracy table (slow)")
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

    print(
        "\nTwo inputs (c0 = 0.5), seconds per call (best of --repeat; ~: estimated from the "
        "shallowest run by the layer-pair count). Generic activations: the coefficient grid "
        "(covariance / mean shift) and, to --direct-max-depth, every pair evaluated directly"
    )
    print(
        f"{'activation':<10} {'depth':>6} {'kernel_covariance':>18} {'kernel_mean_shift':>18} "
        f"{'us per layer pair':>18} {'grid':>15} {'direct cov':>11} {'direct shift':>13}"
    )
    shallowest = {}  # name -> (cov s, shift s, depth, direct cov s, direct shift s)
    for name in args.pair_activations:
        for depth in args.pair_depths:
            pairs = (depth + 1) * (depth + 2) // 2  # unordered layer pairs (k <= m)
            kw = dict(CASE, depth=depth, K0=PAIR)
            generic = name not in CLOSED_FORMS
            grids, grid = (None, None), ""
            if generic:
                grids = _generic_grids(name, kw)
                grid = "/".join(g or "direct" for g in grids)
            fieldgen.kernel_covariance(name, **dict(kw, depth=2))  # compile
            repeat = args.repeat if depth <= 100 or not generic else 1
            direct = ""
            if generic and depth <= args.direct_max_depth:
                d_cov, d_shift = _direct_seconds(name, kw)
                direct = f"{d_cov:>9.2f} s {d_shift:>11.2f} s"
            seconds, cells = [], []
            for i, fn in enumerate((fieldgen.kernel_covariance, fieldgen.kernel_mean_shift)):
                # Estimated (~) from the shallowest run by the layer-pair count: beyond
                # --generic-max-depth, or (from the direct time) where the check falls back to
                # direct evaluation beyond --direct-max-depth.
                base = shallowest.get(name)
                if generic and base is not None and depth > args.generic_max_depth:
                    t = base[i] * pairs / ((base[2] + 1) * (base[2] + 2) // 2)
                    cells.append(f"{'~' + format(t, '.1f'):>16} s")
                elif (
                    generic
                    and base is not None
                    and depth > args.direct_max_depth
                    and grids[i] is None
                    and base[3 + i] is not None
                ):
                    t = base[3 + i] * pairs / ((base[2] + 1) * (base[2] + 2) // 2)
                    cells.append(f"{'~' + format(t, '.1f'):>16} s")
                else:
                    t = best_of(repeat, lambda: fn(name, **kw))
                    cells.append(f"{t:>16.4f} s")
                seconds.append(t)
            if name not in shallowest:
                measured = (d_cov, d_shift) if direct else (None, None)
                shallowest[name] = (seconds[0], seconds[1], depth, *measured)
            print(
                f"{name:<10} {depth:>6} {cells[0]} {cells[1]} "
                f"{1e6 * seconds[0] / pairs:>18.2f} {grid:>15} {direct}",
                flush=True,
            )

    print("\nInfinite depth (continuum_one_loop, tau = 1, 32 intervals; cost independent of L)")
    print(f"{'activation':<10} {'inputs':>6} {'seconds':>10} {'with 1/L term':>14}")
    for name in args.pair_activations:
        for label, K0 in (("1", 1.0), ("2", PAIR)):
            kw = dict(tau=1.0, sigma_w2=CASE["sigma_w2"], K0=K0)
            try:
                t = best_of(args.repeat, lambda: fieldgen.continuum_one_loop(name, **kw))
                t1 = best_of(
                    args.repeat, lambda: fieldgen.continuum_one_loop(name, correction=True, **kw)
                )
            except (ValueError, OverflowError) as error:
                print(f"{name:<10} {label:>6} {type(error).__name__}: {error}", flush=True)
                continue
            print(f"{name:<10} {label:>6} {t:>8.4f} s {t1:>12.4f} s", flush=True)

    if args.accuracy:
        accuracy_table()
        generic_accuracy_table()


def _module_and_path(name, kw):
    from fieldgen.activations import resolve
    from fieldgen.generated import module

    activation = resolve(name)
    K = fieldgen.kernel(activation, **kw)
    path = np.ascontiguousarray(np.stack([K[:, 0, 0], K[:, 1, 1], K[:, 0, 1]], axis=-1))
    return module("oneloop", activation), path


def _generic_grids(name, kw):
    """The accepted coefficient grids (covariance, mean shift) as 'n_m x n_t', None if direct."""
    mod, path = _module_and_path(name, kw)
    fits = (mod.pair_grid(path, False), mod.pair_grid(path, True))
    return tuple(None if f is None else "x".join(map(str, f["VA"].shape[:2])) for f in fits)


def _direct_seconds(name, kw):
    """Seconds of the generated accumulation with every layer pair evaluated directly."""
    mod, path = _module_and_path(name, kw)
    depth = path.shape[0] - 1
    times = []
    for full in (True, False):
        cov = np.zeros((depth + 1, depth + 1, 3, 3) if full else (1, 1, 3, 3))
        shift = np.empty((1, 3, 3) if full else (depth + 1, 3, 3))
        t = time.perf_counter()
        mod.one_loop(kw["r"], kw["sigma_w2"], path, cov, shift, interpolate=False)
        times.append(time.perf_counter() - t)
    return tuple(times)


def _orthant_moment(cov, powers):
    """E[prod relu(x_i)^p_i], x ~ N(0, cov) 3-D, by nested adaptive quadrature (independent of
    the generated path integrals)."""
    from scipy import integrate

    inv = np.linalg.inv(cov)
    norm = 1 / np.sqrt((2 * np.pi) ** 3 * np.linalg.det(cov))

    def density(z, y, x):
        v = np.array([x, y, z])
        return x ** powers[0] * y ** powers[1] * z ** powers[2] * norm * np.exp(-0.5 * v @ inv @ v)

    return integrate.nquad(
        density, [[0, np.inf]] * 3, opts=dict(epsabs=0, epsrel=1e-11, limit=200)
    )[0]


def _relu_pair(K11, K22, K12):
    c = K12 / np.sqrt(K11 * K22)
    return np.sqrt(K11 * K22) * (np.sqrt(1 - c * c) + (np.pi - np.arccos(c)) * c) / (2 * np.pi)


def accuracy_table():
    import warnings

    from fieldgen.generated import module

    four_point = module("oneloop", "relu").four_point_pair
    print(
        "\nAccuracy: relu pair four-point entries vs nested adaptive quadrature "
        "(early K11 = 1, K22 = 2; late = early + [[0.3, .], [., 0.5]], late c = 0.9 c0)"
    )
    print(f"{'c0':>6} {'entry':>6} {'generated':>20} {'reference':>20} {'rel. error':>11}")
    for c0 in (-0.9, 0.0, 0.5, 0.99):
        Ke = np.array([[1.0, c0 * np.sqrt(2.0)], [c0 * np.sqrt(2.0), 2.0]])
        Kl = Ke + np.array([[0.3, 0.0], [0.0, 0.5]])
        Kl[0, 1] = Kl[1, 0] = 0.9 * c0 * np.sqrt(Kl[0, 0] * Kl[1, 1])
        out = np.empty((3, 3))
        four_point(
            np.array([Ke[0, 0], Ke[1, 1], Ke[0, 1]]), np.array([Kl[0, 0], Kl[1, 1], Kl[0, 1]]), out
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cov = np.array(
                [
                    [Ke[0, 0], Ke[0, 0], Ke[0, 1]],
                    [Ke[0, 0], Kl[0, 0], Kl[0, 1]],
                    [Ke[0, 1], Kl[0, 1], Kl[1, 1]],
                ]
            )
            r02 = _orthant_moment(cov, (2, 1, 1)) - Ke[0, 0] / 2 * _relu_pair(
                Kl[0, 0], Kl[1, 1], Kl[0, 1]
            )
            cov = np.array(
                [
                    [Ke[0, 0], Ke[0, 1], Ke[0, 0]],
                    [Ke[0, 1], Ke[1, 1], Ke[0, 1]],
                    [Ke[0, 0], Ke[0, 1], Kl[0, 0]],
                ]
            )
            r20 = _orthant_moment(cov, (1, 1, 2)) - Kl[0, 0] / 2 * _relu_pair(
                Ke[0, 0], Ke[1, 1], Ke[0, 1]
            )
        for label, gen, ref in (("(0,2)", out[0, 2], r02), ("(2,0)", out[2, 0], r20)):
            print(
                f"{c0:>6} {label:>6} {gen:>20.14g} {ref:>20.14g} {abs(gen / ref - 1):>11.2e}",
                flush=True,
            )


def _brute_tanh4(C, h, half):
    """E[t(x1) t(x2) t(x3) t(x4)], x = C z: the plain trapezoidal sum on [-half, half]^4."""
    from numba import njit, prange

    @njit(parallel=True)
    def run(C, h, half):
        n = int(np.ceil(half / h))
        z = (np.arange(2 * n + 1) - n) * h
        w = np.exp(-0.5 * z * z) * h / np.sqrt(2.0 * np.pi)
        parts = np.zeros(z.shape[0])
        for i in prange(z.shape[0]):
            s = 0.0
            a = np.tanh(C[0, 0] * z[i])
            for j in range(z.shape[0]):
                b = np.tanh(C[1, 0] * z[i] + C[1, 1] * z[j])
                for k in range(z.shape[0]):
                    c = np.tanh(C[2, 0] * z[i] + C[2, 1] * z[j] + C[2, 2] * z[k])
                    base = C[3, 0] * z[i] + C[3, 1] * z[j] + C[3, 2] * z[k]
                    inner = 0.0
                    for q in range(z.shape[0]):
                        inner += w[q] * np.tanh(base + C[3, 3] * z[q])
                    s += w[j] * w[k] * b * c * inner
            parts[i] = w[i] * a * s
        return parts.sum()

    return run(C, h, half)


def generic_accuracy_table():
    from fieldgen.generated import module

    four_point = module("oneloop", "tanh").four_point_pair
    pair = module("gauss", "tanh").expect_pair
    z, w = np.polynomial.hermite_e.hermegauss(12)
    w = w / w.sum()
    grid = np.array(np.meshgrid(z, z, z, z, indexing="ij")).reshape(4, -1)
    weight = np.einsum("i,j,k,l->ijkl", w, w, w, w).ravel()
    print(
        "\nAccuracy: tanh pair, E[t(x1) t(x2) t(y1) t(y2)] (late K11 = K, K22 = 1.2 K, "
        "early = frac * late)"
    )
    print(
        f"{'K':>5} {'c0':>6} {'frac':>6} {'generated':>20} {'brute force':>20} "
        f"{'rel. error':>11} {'GH 12 (old)':>11}"
    )
    for K in (1.5, 5.0):
        for c0 in (-0.9, 0.0, 0.5, 0.99):
            for frac in (0.999, 0.5):
                root = np.sqrt(1.2)
                Kl = K * np.array([[1.0, c0 * root], [c0 * root, 1.2]])
                Ke = frac * Kl
                ke = np.array([Ke[0, 0], Ke[1, 1], Ke[0, 1]])
                kl = np.array([Kl[0, 0], Kl[1, 1], Kl[0, 1]])
                A = np.empty((3, 3))
                four_point(ke, kl, A)
                got = A[2, 2] + pair(*ke)[2] * pair(*kl)[2]
                C = np.linalg.cholesky(np.block([[Ke, Ke], [Ke, Kl]]))
                ref = _brute_tanh4(C, 0.15 / np.sqrt(K / 1.5), 8.0)
                gh = float(np.sum(weight * np.prod(np.tanh(C @ grid), axis=0)))
                print(
                    f"{K:>5} {c0:>6} {frac:>6} {got:>20.14g} {ref:>20.14g} "
                    f"{abs(got / ref - 1):>11.2e} {abs(gh / ref - 1):>11.2e}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
