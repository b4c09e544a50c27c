"""Gram matrices of a data set: fieldgen's one pass against pair calls and neural-tangents.

The example of issue 16: erf ResNet (full block), r = 0.3, sigma_w^2 = 1, no bias, depth 100, an
input layer (input="layer") on 100 random inputs in 10 dimensions (seed 0). Contenders, taking
turns in one run:

  * ``fieldgen.kernel(..., x=x)`` and ``fieldgen.ntk(..., x=x)``: the whole path, (101, 100, 100);
  * the 4,950 two-input calls ``fieldgen.kernel(..., K0=G[[a, b]][:, [a, b]])`` the Gram matrix
    needed before (one run: it is the slow contender);
  * neural-tangents (``stax``: Dense(W_std=sigma_w, no bias), then 100 blocks FanOut /
    parallel(serial(Erf, Dense(W_std=r sigma_w)), Identity) / FanInSum, NTK parameterisation,
    float64), ``jax.jit(kernel_fn)`` after a warm-up call, last layer only (what it returns),
    NNGP and NTK together. It runs in a separate interpreter given by --nt-python (default
    .venv-nt/bin/python); skipped with a note when that is missing or fails. neural-tangents 0.6.5
    does not import with jax 0.10 (removed jax.core names); a combination that works on CPU:

        python3 -m venv .venv-nt
        .venv-nt/bin/pip install neural-tangents "jax==0.4.30" "jaxlib==0.4.30" "tf2jax==0.3.6"

Times are the best of --repeat runs; fieldgen is timed again after neural-tangents to show drift
on a shared machine. The agreement of the last layer with neural-tangents (NNGP and NTK, max
relative difference) checks that the contenders compute the same thing. --large adds one call at
depth 1000 with 2,000 inputs and layers=[1000] (its time and the process's peak memory).

    python benchmarks/bench_gram.py [--nt-python PATH] [--repeat 5] [--large]
"""

import argparse
import json
import os
import resource
import subprocess
import tempfile
import time

import numpy as np

import fieldgen

R, SIGMA_W2, DEPTH, N_INPUTS, DIM = 0.3, 1.0, 100, 100, 10

NT_SCRIPT = r"""
import json, sys, time
import numpy as np
import jax
jax.config.update("jax_enable_x64", True)
from neural_tangents import stax
r, sw2, depth, repeat = float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
x = np.load(sys.argv[1])
w = sw2 ** 0.5
block = stax.serial(stax.FanOut(2),
                    stax.parallel(stax.serial(stax.Erf(), stax.Dense(1, W_std=r * w, b_std=None)),
                                  stax.Identity()),
                    stax.FanInSum())
_, _, kernel_fn = stax.serial(stax.Dense(1, W_std=w, b_std=None), *([block] * depth))
fn = jax.jit(kernel_fn, static_argnames="get")
t = time.perf_counter(); out = fn(x, None, get=("nngp", "ntk")); jax.block_until_ready(out)
first = time.perf_counter() - t
times = []
for _ in range(repeat):
    t = time.perf_counter(); out = fn(x, None, get=("nngp", "ntk")); jax.block_until_ready(out)
    times.append(time.perf_counter() - t)
np.savez(sys.argv[6], nngp=np.asarray(out.nngp), ntk=np.asarray(out.ntk))
print(json.dumps({"best": min(times), "first": first, "jax": jax.__version__}))
"""


def best_of(fn, repeat):
    fn()  # compile / warm caches
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def pair_calls(G, kw):
    out = np.empty((DEPTH + 1, N_INPUTS, N_INPUTS))
    for a in range(N_INPUTS):
        for b in range(a + 1, N_INPUTS):
            K = fieldgen.kernel("erf", K0=G[np.ix_([a, b], [a, b])], **kw)
            out[:, a, b] = out[:, b, a] = K[:, 0, 1]
            out[:, a, a], out[:, b, b] = K[:, 0, 0], K[:, 1, 1]
    return out


def neural_tangents(python, x, repeat):
    with tempfile.TemporaryDirectory() as tmp:
        xfile, outfile = os.path.join(tmp, "x.npy"), os.path.join(tmp, "out.npz")
        np.save(xfile, x)
        proc = subprocess.run(
            [
                python,
                "-c",
                NT_SCRIPT,
                xfile,
                str(R),
                str(SIGMA_W2),
                str(DEPTH),
                str(repeat),
                outfile,
            ],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            return None, proc.stderr.strip().splitlines()[-1]
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        with np.load(outfile) as f:
            result["nngp"], result["ntk"] = f["nngp"], f["ntk"]
    return result, None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    default_nt = os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", ".venv-nt", "bin", "python"
    )
    parser.add_argument("--nt-python", default=default_nt)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--large", action="store_true")
    args = parser.parse_args()

    x = np.random.default_rng(0).standard_normal((N_INPUTS, DIM))
    G = x @ x.T / DIM
    kw = dict(r=R, sigma_w2=SIGMA_W2, depth=DEPTH, input="layer")
    pairs = N_INPUTS * (N_INPUTS - 1) // 2
    print(
        f"erf, full block, r = {R}, sigma_w2 = {SIGMA_W2}, depth {DEPTH}, input layer, "
        f"{N_INPUTS} inputs in {DIM} dimensions ({pairs} pairs); best of {args.repeat}"
    )

    gram = best_of(lambda: fieldgen.kernel("erf", x=x, **kw), args.repeat)
    both = best_of(
        lambda: (fieldgen.kernel("erf", x=x, **kw), fieldgen.ntk("erf", x=x, **kw)), args.repeat
    )
    last = best_of(lambda: fieldgen.kernel("erf", x=x, layers=[DEPTH], **kw), args.repeat)
    both_last = best_of(
        lambda: (
            fieldgen.kernel("erf", x=x, layers=[DEPTH], **kw),
            fieldgen.ntk("erf", x=x, layers=[DEPTH], **kw),
        ),
        args.repeat,
    )
    fieldgen.kernel("erf", K0=G[:2, :2], **kw)  # compile the two-input path first
    t = time.perf_counter()
    by_pairs = pair_calls(G, kw)
    t_pairs = time.perf_counter() - t
    K = fieldgen.kernel("erf", x=x, **kw)
    print(f"  fieldgen.kernel, Gram pass, all layers : {gram * 1e3:8.2f} ms")
    print(f"  fieldgen.kernel, Gram pass, last layer : {last * 1e3:8.2f} ms")
    print(f"  fieldgen kernel + ntk, all layers      : {both * 1e3:8.2f} ms")
    print(f"  fieldgen kernel + ntk, last layer      : {both_last * 1e3:8.2f} ms")
    print(
        f"  {pairs} pair calls of fieldgen.kernel   : {t_pairs * 1e3:8.2f} ms (one run)  "
        f"-> Gram pass {t_pairs / gram:.0f}x faster; max |difference| "
        f"{np.abs(K - by_pairs).max():.1e}"
    )

    nt, why = (
        (None, f"{args.nt_python} not found")
        if not os.path.exists(args.nt_python)
        else neural_tangents(args.nt_python, x, args.repeat)
    )
    if nt is None:
        print(f"  neural-tangents: skipped ({why})")
    else:
        T = fieldgen.ntk("erf", x=x, **kw)
        rel = lambda a, b: float(np.abs(a - b).max() / np.abs(b).max())
        print(
            f"  neural-tangents (jax {nt['jax']}), jit, NNGP + NTK, last layer: "
            f"{nt['best'] * 1e3:8.2f} ms (first call with compilation {nt['first']:.1f} s)"
        )
        print(
            f"    -> fieldgen kernel + ntk, last layer (like for like) {nt['best'] / both_last:.1f}x "
            f"faster; all layers {nt['best'] / both:.1f}x; kernel alone, last layer "
            f"{nt['best'] / last:.1f}x"
        )
        print(
            f"    agreement at layer {DEPTH}: NNGP {rel(K[-1], nt['nngp']):.1e}, "
            f"NTK {rel(T[-1], nt['ntk']):.1e} (max relative difference)"
        )
        again = best_of(lambda: fieldgen.kernel("erf", x=x, **kw), args.repeat)
        print(f"  fieldgen.kernel again (drift check)     : {again * 1e3:8.2f} ms")

    if args.large:
        xl = np.random.default_rng(1).standard_normal((2000, DIM))
        t = time.perf_counter()
        out = fieldgen.kernel(
            "erf", x=xl, r=R, sigma_w2=SIGMA_W2, depth=1000, input="layer", layers=[1000]
        )
        t_large = time.perf_counter() - t
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"  depth 1000, 2000 inputs, layers=[1000]: {t_large:.1f} s, result {out.shape}, "
            f"peak resident memory of this process {peak:.0f} MiB "
            f"(all layers would be {1001 * 2000 * 2000 * 8 / 2**30:.0f} GiB)"
        )


if __name__ == "__main__":
    main()
