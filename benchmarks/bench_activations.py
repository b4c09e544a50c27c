"""Speed and accuracy per activation: closed forms against the generic (table) path.

For each activation (relu, erf, gelu, leaky_relu, tanh, silu, softplus; names not built in are
skipped with a note), in one run:
  - one-input and two-input mean-field layer-steps/s: the generated kernel_*_full on one thread,
    100 values of r in [0.02, 0.5] at sigma_w2 = 1.5, depth 100; two inputs with unequal norms
    K0 = [[1, 0.5], [0.5, 1.3]] (as bench_kernel) and with equal norms K0 = [[1, 0.5], [0.5, 1]];
  - `fieldgen.sensitivity` for 100 r at depth 100, at c0 = 0.5 and c0 = 0.99 (near the diagonal,
    where the generic path uses its two-point tables);
  - `fieldgen.kernel_covariance` one input at depth 1000 (r = 0.1: at r = 0.3 the relu-like
    kernels reach K ~ 1e28 and gelu's covariance leaves the float64 range) and two inputs at
    depth 100 (r = 0.3);
  - the max error of P(K) = <phi^2> and P12 = <phi(h1) phi(h2)> (generated gauss module) against
    SciPy's adaptive quadrature of the generated phi, over K in {1e-4, 1e-2, 1, 1e2, 1e4} and
    correlations {-1, -0.99, -0.5, 0, 0.5, 0.99, 0.9999, 1} (unequal norms K22 = 1.3 K11),
    relative to sqrt(<phi^2>(K11) <phi^2>(K22)) (|P12| can vanish).
Timings are the best of --repeat runs after a warm-up call (compilation and tables excluded).
Targets for activations without closed forms, per core: >= 1e7 one-input and >= 1e6 two-input
layer-steps/s, sensitivity < 50 ms, error <= 1e-9.

    python benchmarks/bench_activations.py [--repeat 3] [--skip-covariance] [--skip-error]
"""

import argparse
import math
import os
import time

import numpy as np

import fieldgen
from fieldgen.activations import resolve
from fieldgen.generated import module
from fieldgen.meanfield import aligned_empty

NAMES = ("relu", "erf", "gelu", "leaky_relu", "tanh", "silu", "softplus")
SIGMA_W2 = 1.5
K0_UNEQUAL = np.array([1.0, 1.3, 0.5])
K0_EQUAL = np.array([1.0, 1.0, 0.5])


def best_of(repeat, fn):
    best = math.inf
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def layer_steps(name, n_inputs, k0_entries, repeat, budget=0.5, depth=100):
    """Layer-steps/s of kernel_single_full / kernel_pair_full on one thread at depth 100 (the
    call repeated to fill about `budget` seconds). A fixed depth keeps the kernel of relu-like
    activations (K ~ (1 + r^2 sigma_w2 / 2)^depth) inside the generic path's tables (K < e^70);
    beyond them it integrates at every step, and at depth 10^4 K overflows."""
    gen = module("meanfield", name)
    fn = gen.kernel_single_full if n_inputs == 1 else gen.kernel_pair_full
    r = np.linspace(0.02, 0.5, 100)
    sw2 = np.full(r.size, SIGMA_W2)
    sb2 = np.zeros(r.size)
    if n_inputs == 1:
        k0 = np.full(r.size, k0_entries[0])
    else:
        k0 = np.ascontiguousarray(np.broadcast_to(k0_entries, (r.size, 3)))
    out = aligned_empty((r.size, depth + 1) if n_inputs == 1 else (r.size, depth + 1, 2, 2))
    fn(r, sw2, sb2, k0, out)  # compile / load from cache, build tables
    calls = 1
    while best_of(1, lambda: [fn(r, sw2, sb2, k0, out) for _ in range(calls)]) < budget / 4:
        calls *= 4

    def run():
        for _ in range(calls):
            fn(r, sw2, sb2, k0, out)

    return r.size * depth * calls / best_of(repeat, run)


def time_call(repeat, fn):
    fn()  # warm-up
    return best_of(repeat, fn)


def max_error(name):
    from scipy import integrate

    gen = module("gauss", name)
    phi = gen.phi

    def density(z):
        return math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)

    def cuts(center, scale):
        pts = {-14.0, 14.0}
        for d in (0, 1, 4, 16, 64, 256):
            for sign in (-1, 1):
                pts.add(min(max(center + sign * d * scale, -14.0), 14.0))
        return sorted(pts)

    def quad(f, pts):
        return sum(
            integrate.quad(f, a, b, epsabs=1e-16, epsrel=1e-12, limit=500)[0]
            for a, b in zip(pts, pts[1:])
        )

    def expect_1d(f, K):
        s = math.sqrt(K)
        return quad(lambda z: f(s * z) * density(z), cuts(0.0, min(1.0, 1 / s)))

    def expect_2d(k11, k22, k12):
        s1 = math.sqrt(k11)
        c = k12 / s1
        s2 = math.sqrt(max(k22 - c * c, 0.0))

        def inner(z1):
            m = c * z1
            if s2 < 1e-300:
                return float(phi(m))
            return quad(
                lambda z2: float(phi(m + s2 * z2)) * density(z2), cuts(-m / s2, min(1.0, 1 / s2))
            )

        scale = min(1.0, 1 / s1, max(1.0, s2) / abs(c) if c else 1.0)
        return quad(lambda z1: float(phi(s1 * z1)) * inner(z1) * density(z1), cuts(0.0, scale))

    square = lambda x: float(phi(x)) ** 2  # noqa: E731
    worst = 0.0
    for K in (1e-4, 1e-2, 1.0, 1e2, 1e4):
        p11 = expect_1d(square, K)
        p22 = expect_1d(square, 1.3 * K)
        worst = max(worst, abs(gen.expect_single(K) - p11) / p11)
        for rho in (-1.0, -0.99, -0.5, 0.0, 0.5, 0.99, 0.9999, 1.0):
            k12 = rho * math.sqrt(1.3) * K
            got = gen.expect_pair(K, 1.3 * K, k12)[2]
            worst = max(worst, abs(got - expect_2d(K, 1.3 * K, k12)) / math.sqrt(p11 * p22))
    return worst


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--names", nargs="+", default=list(NAMES), help="activations to measure")
    ap.add_argument("--skip-covariance", action="store_true", help="skip kernel_covariance timings")
    ap.add_argument("--skip-error", action="store_true", help="skip the quadrature comparison")
    args = ap.parse_args()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{os.cpu_count()} cores, load average {load:.2f} at start; best of {args.repeat}")
    head = (
        f"{'activation':<11}{'kind':<13}{'1-input st/s':>13}{'2-in st/s':>11}{'2-in eq st/s':>13}"
        f"{'sens 100r':>11}{'sens c.99':>11}{'cov 1in L1000':>15}{'cov 2in L100':>14}"
        f"{'max err':>10}"
    )
    print(head)
    r_grid = np.linspace(0.02, 0.5, 100)
    for label in args.names:
        # Presets (gelu, leaky_relu, silu, softplus) are derived into the user cache on first use.
        name = resolve(label)
        closed = (
            name in fieldgen.generated.CLOSED_FORMS if isinstance(name, str) else name.closed_form
        )
        kind = "closed form" if closed else "tables"
        one = layer_steps(name, 1, np.array([1.0]), args.repeat)
        two = layer_steps(name, 2, K0_UNEQUAL, args.repeat)
        two_eq = layer_steps(name, 2, K0_EQUAL, args.repeat)
        sens, sens99 = (
            time_call(
                args.repeat,
                lambda: fieldgen.sensitivity(name, r=r_grid, sigma_w2=SIGMA_W2, depth=100, c0=c0),
            )
            for c0 in (0.5, 0.99)
        )
        if args.skip_covariance:
            cov1 = cov2 = float("nan")
        else:
            cov1 = time_call(
                1,
                lambda: fieldgen.kernel_covariance(
                    name, r=0.1, sigma_w2=SIGMA_W2, depth=1000, K0=1.0
                ),
            )
            cov2 = time_call(
                1,
                lambda: fieldgen.kernel_covariance(
                    name, r=0.3, sigma_w2=SIGMA_W2, depth=100, K0=[[1.0, 0.5], [0.5, 1.3]]
                ),
            )
        # Closed-form presets: their whole gauss module (Hessians of the closed form) takes SymPy
        # minutes to derive; tests/test_presets.py checks them against quadrature to 1e-10.
        preset = closed and not isinstance(name, str)
        if args.skip_error:
            err = "skipped"
        elif preset:
            err = "(tests)"  # test_presets.py: against quadrature to 1e-10
        else:
            err = f"{max_error(name):.1e}"
        print(
            f"{label:<11}{kind:<13}{one:>13.3g}{two:>11.3g}{two_eq:>13.3g}{sens * 1e3:>9.3g}ms"
            f"{sens99 * 1e3:>9.3g}ms{cov1:>14.3g}s{cov2:>13.3g}s{err:>10}",
            flush=True,
        )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average {load:.2f} at the end")
    print(
        "max err (tests): closed-form presets, whose gauss modules take SymPy minutes to derive, "
        "are checked against quadrature to 1e-10 by tests/test_presets.py"
    )


if __name__ == "__main__":
    main()
