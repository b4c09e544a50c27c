"""Agreement table: one-loop theory against simulations extrapolated in 1/N.

For every case (activation x sigma_b^2 x r x sigma_w^2 x depth x one/two inputs) the walk
simulator estimates N Var(Khat^L) (two inputs: the entries 11 and 12) and N (E Khat^L - K^L) at
four widths; a weighted straight line in 1/N extrapolates to N -> infinity with a standard error.
Widths grow with tau = L r^2 sigma_w^2 so that the next order, O(tau / N), stays small.

    python benchmarks/validate_one_loop.py [--quick] [--csv FILE] [--scheduler ADDRESS]

With --scheduler (or FIELDGEN_SCHEDULER) the cases run on a Dask cluster, one case per task;
the table is the same (each case has its own fixed seed).

`tests/test_one_loop_sweep.py` (marker `slow`) runs the same function and requires |z| < 4.
"""

import argparse
import itertools
import sys
import zlib

import numpy as np

import fieldgen

CASES = dict(
    name=("relu", "erf", "tanh"),
    sigma_b2=(0.0, 0.1),
    r=(0.2, 0.5, 1.0),
    sigma_w2=(1.0, 2.0),
    depth=(5, 20),
    inputs=(1, 2),
)
PAIR = np.array([[1.0, 0.5], [0.5, 1.0]])


def widths_for(tau: float):
    base = 64 if tau <= 8 else 256
    return [base, 2 * base, 4 * base, 8 * base]


def _extrapolate(widths, values, errors):
    x = 1.0 / np.asarray(widths, float)
    w = 1.0 / np.asarray(errors, float) ** 2
    design = np.stack([np.ones_like(x), x], 1)
    cov = np.linalg.inv(design.T @ (w[:, None] * design))
    beta = cov @ design.T @ (w * np.asarray(values, float))
    return float(beta[0]), float(np.sqrt(cov[0, 0]))


def validate(name, sigma_b2, r, sigma_w2, depth, inputs, samples=2000):
    """Rows (quantity, theory, extrapolated simulation, standard error) for one case."""
    K0 = 1.0 if inputs == 1 else PAIR
    kw = dict(r=r, sigma_w2=sigma_w2, depth=depth, K0=K0, sigma_b2=sigma_b2)
    cov = fieldgen.kernel_covariance(name, **kw)
    shift = fieldgen.kernel_mean_shift(name, **kw)
    K = fieldgen.kernel(name, **kw)
    entries = [((), None)] if inputs == 1 else [((0, 0), 0), ((0, 1), 2)]
    widths = widths_for(depth * r * r * sigma_w2)
    seed = zlib.crc32(repr((name, sigma_b2, r, sigma_w2, depth, inputs)).encode())
    sims = [
        fieldgen.simulate(name, width=N, samples=samples, method="walk", seed=seed + N, **kw)[
            :, depth
        ]
        for N in widths
    ]
    rows = []
    for entry, p in entries:
        label = "" if p is None else ["11", "22", "12"][p]
        var_vals, var_errs, mean_vals, mean_errs = [], [], [], []
        for N, Kh in zip(widths, sims):
            x = Kh[(slice(None),) + entry]
            c = x - x.mean()
            var = (c**2).sum() / (len(x) - 1)
            var_vals.append(N * var)
            var_errs.append(N * np.sqrt(max((c**4).mean() - var**2, 0) / len(x)))
            mean_vals.append(N * (x.mean() - K[(depth,) + entry]))
            mean_errs.append(N * x.std(ddof=1) / np.sqrt(len(x)))
        th_var = cov[depth, depth] if p is None else cov[(depth, depth) + entry + entry]
        th_shift = shift[(depth,) + entry]
        rows.append((f"N Var K{label}", th_var, *_extrapolate(widths, var_vals, var_errs)))
        rows.append((f"N shift K{label}", th_shift, *_extrapolate(widths, mean_vals, mean_errs)))
    return rows


def _case(values):
    """The rows of one case (a unit of work for a Dask worker)."""
    return validate(**dict(zip(CASES, values)))


def sweep(quick=False, stream=sys.stdout, csv=None, client=None):
    """client: a dask.distributed.Client or a scheduler address (None: in process)."""
    from fieldgen.distributed import client_for, map_ordered

    if client is not None and __name__ != "__main__":
        # Workers need not have benchmarks/ on their path: send this module's code by value.
        import cloudpickle

        cloudpickle.register_pickle_by_value(sys.modules[__name__])
    grid = list(itertools.product(*CASES.values()))
    if quick:
        grid = grid[::12]
    out = []
    header = "activation sigma_b2 r sigma_w2 depth inputs quantity theory simulation se z"
    stream.write(header.replace(" ", "\t") + "\n")
    with client_for(client) as live:
        for values, rows in zip(grid, map_ordered(live, _case, grid)):
            for quantity, theory, sim, se in rows:
                z = (sim - theory) / se
                row = (*values, quantity, theory, sim, se, z)
                out.append(row)
                stream.write(
                    "\t".join(f"{v:.6g}" if isinstance(v, float) else str(v) for v in row) + "\n"
                )
            stream.flush()
    if csv:
        with open(csv, "w") as f:
            f.write(header.replace(" ", ",") + "\n")
            for row in out:
                f.write(",".join(str(v) for v in row) + "\n")
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="every twelfth case")
    ap.add_argument("--csv")
    ap.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="Dask scheduler, e.g. tcp://host:8786 (default: FIELDGEN_SCHEDULER, else in process)",
    )
    args = ap.parse_args()
    from fieldgen.distributed import connect, scheduler_address

    address = scheduler_address(args.scheduler)
    try:
        client = None if address is None else connect(address)
    except (ConnectionError, ValueError) as exc:
        sys.exit(f"validate_one_loop: error: {exc}")
    rows = sweep(args.quick, csv=args.csv, client=client)
    z = np.array([r[-1] for r in rows])
    print(
        f"{len(rows)} comparisons; max |z| = {np.max(np.abs(z)):.2f}; |z| > 4: {int(np.sum(np.abs(z) > 4))}"
    )
