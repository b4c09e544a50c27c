"""A long simulation in process against a LocalCluster of 2 Dask worker processes, and the
overhead per chunk.

1. Speed-up: `fieldgen.simulate` (walk simulator, two inputs, width 1024; one block of 1024
   networks per chunk, its own random stream) in process, then on 2 local workers (one thread
   each) writing every finished chunk to a results folder, as a Dask run does by default. The two
   results must be equal bit for bit. Target: >= 1.7x on a 2-core machine.
2. Overhead per chunk: many chunks of negligible work (width 4, depth 1, one network per
   stream); (cluster wall time - in-process wall time) / chunks, with and without the results
   folder.

The cluster is started and warmed up (workers import fieldgen and compile the activation) before
any timing. The contenders take turns in this process; run it on a quiet machine.

    python benchmarks/bench_distributed.py [--depth 100] [--blocks 8] [--repeat 1]
"""

import argparse
import tempfile
import time

import numpy as np

import fieldgen

PAIR = np.array([[1.0, 0.6], [0.6, 1.0]])


def timed(function):
    start = time.perf_counter()
    value = function()
    return time.perf_counter() - start, value


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--depth", type=int, default=100)
    ap.add_argument("--width", type=int, default=1024)
    ap.add_argument("--blocks", type=int, default=8, help="chunks of the long run (default 8)")
    ap.add_argument(
        "--chunks", type=int, default=400, help="tiny chunks for the overhead (default 400)"
    )
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()

    import distributed

    per_stream = 1024
    long_run = dict(
        r=0.3,
        sigma_w2=1.0,
        depth=args.depth,
        K0=PAIR,
        width=args.width,
        samples=per_stream * args.blocks,
        method="walk",
        networks_per_stream=per_stream,
        seed=2026,
    )
    tiny = dict(
        r=0.3,
        sigma_w2=1.0,
        depth=1,
        K0=PAIR,
        width=4,
        samples=args.chunks,
        method="walk",
        networks_per_stream=1,
        seed=1,
    )
    print(
        f"{args.blocks} chunks of {per_stream} networks, width {args.width}, depth {args.depth}",
        flush=True,
    )
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        fieldgen.simulate("erf", client=client, results=False, **dict(tiny, samples=8))  # warm-up
        fieldgen.simulate("erf", **dict(tiny, samples=8))
        for round in range(args.repeat):
            t_in, in_process = timed(lambda: fieldgen.simulate("erf", **long_run))
            print(f"[{round}] in process: {t_in:.1f} s", flush=True)
            with tempfile.TemporaryDirectory() as folder:
                t_dask, on_cluster = timed(
                    lambda: fieldgen.simulate("erf", client=client, results=folder, **long_run)
                )
            assert np.array_equal(in_process, on_cluster), "cluster result differs from in process"
            print(
                f"[{round}] {args.blocks} chunks of {per_stream} networks, width {args.width}, "
                f"depth {args.depth}: in process {t_in:.1f} s, 2 workers {t_dask:.1f} s, "
                f"speed-up {t_in / t_dask:.2f}x (bit-identical)",
                flush=True,
            )

            t_small, _ = timed(lambda: fieldgen.simulate("erf", **tiny))
            t_bare, _ = timed(
                lambda: fieldgen.simulate("erf", client=client, results=False, **tiny)
            )
            with tempfile.TemporaryDirectory() as folder:
                t_kept, _ = timed(
                    lambda: fieldgen.simulate("erf", client=client, results=folder, **tiny)
                )
            n = args.chunks
            print(
                f"[{round}] overhead per chunk ({n} chunks of one tiny network; in process "
                f"{1e3 * t_small / n:.2f} ms each): {1e3 * (t_bare - t_small) / n:.2f} ms on the "
                f"cluster, {1e3 * (t_kept - t_small) / n:.2f} ms with the results folder",
                flush=True,
            )


if __name__ == "__main__":
    main()
