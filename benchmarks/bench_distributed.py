"""A long simulation in process against a LocalCluster of 2 Dask worker processes, and the
overhead per chunk.

1. Speed-up: `fieldgen.simulate` (walk simulator, two inputs, width 1024; one block of
   --per-stream networks per chunk, its own random stream) in process, then on 2 local workers
   (one thread each) writing every finished chunk to a results folder, as a Dask run does by
   default. The two results must be equal bit for bit. Target: >= 1.7x on a 2-core machine.
   Both timings are the whole `simulate` call; the cluster's includes sending the chunks,
   receiving every result in this process and writing it to the results folder. Not included:
   starting the cluster and warming it up (every worker imports fieldgen and loads the
   activation's compiled code once, as the in-process contender did before its timing).
2. Overhead per chunk: many chunks of negligible work (width 4, depth 1, one network per
   stream); (cluster wall time - in-process wall time) / chunks, with and without the results
   folder.

Diagnostics, because a 2-core machine shared with other work rarely gives two free cores: the
CPU seconds of each contender (in process: this process; cluster: the workers, measured in
them, and this process), the chunks and computing seconds of each worker (Dask's task stream)
and "cores obtained" = the workers' CPU seconds / wall time. A speed-up below 1.7x with fewer
than 1.7 cores obtained says the machine was busy, not that the cluster was slow; computing
seconds per chunk on the workers well above those in process say the two workers slow each
other down (memory bandwidth). The contenders take turns; the summary takes the best of
--repeat rounds of each. Run it on a quiet machine (`uptime`).

    python benchmarks/bench_distributed.py [--depth 40] [--blocks 8] [--per-stream 512] [--repeat 2]
"""

import argparse
import os
import tempfile
import time
from collections import defaultdict

import numpy as np

import fieldgen

PAIR = np.array([[1.0, 0.6], [0.6, 1.0]])


def timed(function):
    cpu, start = time.process_time(), time.perf_counter()
    value = function()
    return time.perf_counter() - start, time.process_time() - cpu, value


def load() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def warm_worker(activation: str) -> int:
    """Runs in each worker: import fieldgen and load the activation's compiled code."""
    import fieldgen

    fieldgen.simulate(activation, r=0.3, sigma_w2=1.0, depth=1, K0=PAIR, width=4, samples=2)
    return os.getpid()


def workers_cpu(client) -> float:
    """CPU seconds used so far by all worker processes (measured in each of them)."""
    return sum(client.run(time.process_time).values())


def per_worker(task_stream) -> dict:
    """{worker: [chunks, computing seconds]} from Dask's task stream."""
    out: dict = defaultdict(lambda: [0, 0.0])
    for task in task_stream:
        for s in task.get("startstops", ()):
            if s["action"] == "compute":
                out[task["worker"]][0] += 1
                out[task["worker"]][1] += s["stop"] - s["start"]
    return dict(out)


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--depth", type=int, default=40)
    ap.add_argument("--width", type=int, default=1024)
    ap.add_argument("--blocks", type=int, default=8, help="chunks of the long run (default 8)")
    ap.add_argument(
        "--per-stream", type=int, default=512, help="networks per block = chunk (default 512)"
    )
    ap.add_argument(
        "--chunks", type=int, default=400, help="tiny chunks for the overhead (default 400)"
    )
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()

    import distributed

    per_stream = args.per_stream
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
    what = f"{args.blocks} chunks of {per_stream} networks, width {args.width}, depth {args.depth}"
    print(f"{what}; load average {load():.2f} at the start", flush=True)
    best_in, best_dask = float("inf"), float("inf")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        client.wait_for_workers(2)
        client.run(warm_worker, "erf")  # every worker, not only those that get a task
        fieldgen.simulate("erf", client=client, results=False, **dict(tiny, samples=8))
        warm_worker("erf")
        for round in range(args.repeat):
            t_in, cpu_in, in_process = timed(lambda: fieldgen.simulate("erf", **long_run))
            before = workers_cpu(client)
            with tempfile.TemporaryDirectory() as folder, distributed.get_task_stream(client) as ts:
                t_dask, cpu_client, on_cluster = timed(
                    lambda: fieldgen.simulate("erf", client=client, results=folder, **long_run)
                )
            cpu_workers = workers_cpu(client) - before
            assert np.array_equal(in_process, on_cluster), "cluster result differs from in process"
            best_in, best_dask = min(best_in, t_in), min(best_dask, t_dask)
            workers = per_worker(ts.data)
            split = ", ".join(
                f"{n} chunks in {busy:.1f} s" for n, busy in sorted(workers.values(), reverse=True)
            )
            computing = sum(b for _, b in workers.values()) / max(
                1, sum(n for n, _ in workers.values())
            )
            print(
                f"[{round}] in process {t_in:.1f} s (CPU {cpu_in:.1f} s, "
                f"{t_in / args.blocks:.2f} s per chunk); 2 workers {t_dask:.1f} s "
                f"(workers' CPU {cpu_workers:.1f} s, this process {cpu_client:.1f} s; "
                f"{computing:.2f} s computing per chunk): speed-up {t_in / t_dask:.2f}x "
                f"(bit-identical)\n"
                f"    per worker: {split}; cores obtained {cpu_workers / t_dask:.2f}; "
                f"load average {load():.2f}",
                flush=True,
            )

            t_small, _, _ = timed(lambda: fieldgen.simulate("erf", **tiny))
            t_bare, _, _ = timed(
                lambda: fieldgen.simulate("erf", client=client, results=False, **tiny)
            )
            with tempfile.TemporaryDirectory() as folder:
                t_kept, _, _ = timed(
                    lambda: fieldgen.simulate("erf", client=client, results=folder, **tiny)
                )
            n = args.chunks
            print(
                f"[{round}] overhead per chunk ({n} chunks of one tiny network; in process "
                f"{1e3 * t_small / n:.2f} ms each): {1e3 * (t_bare - t_small) / n:.2f} ms on the "
                f"cluster, {1e3 * (t_kept - t_small) / n:.2f} ms with the results folder",
                flush=True,
            )
    print(
        f"best of {args.repeat}: {what}: in process {best_in:.1f} s, 2 workers {best_dask:.1f} s,"
        f" speed-up {best_in / best_dask:.2f}x (target >= 1.7x); load average {load():.2f}"
    )


if __name__ == "__main__":
    main()
