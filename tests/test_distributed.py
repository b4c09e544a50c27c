"""Simulations and sweeps on a Dask cluster: a LocalCluster of 2 worker processes must give the
in-process result bit for bit, also when a worker or the client is killed mid-run (the rerun
computes only the chunks missing from the results folder), and an unreachable scheduler is one
clear error. `make test` installs dask.distributed (the `distributed` extra); importorskip only
guards a bare install."""

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

import fieldgen  # noqa: E402
from fieldgen import chunks  # noqa: E402
from fieldgen.scan import scan  # noqa: E402

K0_PAIR = np.array([[1.0, 0.5], [0.5, 1.2]])
SMALL = dict(
    r=0.5,
    sigma_w2=1.5,
    depth=4,
    K0=K0_PAIR,
    width=16,
    samples=60,
    method="walk",
    networks_per_stream=5,
    seed=3,
)
# Slow enough per chunk (~0.1-0.3 s) that a run of 24 chunks can be interrupted.
LONG = dict(
    r=0.3,
    sigma_w2=1.0,
    depth=30,
    K0=1.0,
    width=128,
    samples=96,
    method="weights",
    networks_per_stream=4,
    seed=5,
)
UNREACHABLE = "tcp://127.0.0.1:9"  # nothing listens on the discard port of the loopback


@pytest.fixture(scope="module")
def client():
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as live,
    ):
        yield live


def _chunk_files(folder):
    return sorted(p for p in folder.rglob("chunk-*.npz"))


@pytest.mark.parametrize("streams_per_chunk", [1, 5])
@pytest.mark.parametrize(
    "kw",
    [SMALL, dict(SMALL, method="weights", K0=1.2, block="reduced", input="layer", sigma_b2=0.1)],
    ids=["walk-two-inputs", "weights-one-input"],
)
def test_two_workers_give_the_in_process_result_bit_for_bit(
    client, tmp_path, kw, streams_per_chunk
):
    reference = fieldgen.simulate("tanh", **kw)
    on_cluster = fieldgen.simulate(
        "tanh", client=client, results=tmp_path, streams_per_chunk=streams_per_chunk, **kw
    )
    assert np.array_equal(on_cluster, reference)
    assert len(_chunk_files(tmp_path)) == -(-12 // streams_per_chunk)  # 60 networks / 5 per stream
    # A rerun is read from the results folder, still the same.
    assert np.array_equal(
        fieldgen.simulate("tanh", client=client, results=tmp_path, **kw), reference
    )
    # A different seed is not served from that folder.
    other = fieldgen.simulate("tanh", client=client, results=tmp_path, **dict(kw, seed=4))
    assert not np.array_equal(other, reference)


def test_a_worker_killed_mid_run_still_gives_the_same_result(client, tmp_path):
    reference = fieldgen.simulate("erf", **LONG)
    total = LONG["samples"] // LONG["networks_per_stream"]
    outcome = {}

    def run():
        try:
            outcome["value"] = fieldgen.simulate("erf", client=client, results=tmp_path, **LONG)
        except BaseException as exc:  # reported by the assertion below
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 60
    while not _chunk_files(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.005)
    pids = client.run(os.getpid)
    victim = sorted(pids.values())[0]
    os.kill(victim, signal.SIGKILL)
    done_at_kill = len(_chunk_files(tmp_path))
    thread.join(120)
    assert "error" not in outcome, outcome.get("error")
    assert 0 < done_at_kill < total
    assert np.array_equal(outcome["value"], reference)
    client.wait_for_workers(2, timeout=60)  # the nanny restarts it for the next tests
    assert victim not in client.run(os.getpid).values()


CLIENT_SCRIPT = textwrap.dedent("""
    import sys, numpy as np, distributed, fieldgen
    kw = {kw!r}
    with distributed.Client({address!r}) as client:
        fieldgen.simulate("erf", client=client, results=sys.argv[1], **kw)
""")


def test_a_killed_client_rerun_computes_only_the_missing_chunks(client, tmp_path, monkeypatch):
    reference = fieldgen.simulate("erf", **LONG)
    total = LONG["samples"] // LONG["networks_per_stream"]
    script = CLIENT_SCRIPT.format(kw=LONG, address=client.scheduler.address)
    child = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)])
    try:
        deadline = time.monotonic() + 60
        while (
            len(_chunk_files(tmp_path)) < 3 and time.monotonic() < deadline and child.poll() is None
        ):
            time.sleep(0.005)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(30)
    kept = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in _chunk_files(tmp_path)}
    assert 3 <= len(kept) < total, "the client finished or never started before it was killed"

    computed = []
    original = chunks.run

    def counting(compute, todo, **kw):
        computed.extend(todo)
        return original(compute, todo, **kw)

    monkeypatch.setattr(chunks, "run", counting)
    rerun = fieldgen.simulate("erf", client=client, results=tmp_path, **LONG)
    assert np.array_equal(rerun, reference)
    assert len(computed) == total - len(kept)  # only the missing chunks
    after = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in _chunk_files(tmp_path)}
    assert {name: after[name] for name in kept} == kept  # finished files untouched
    assert len(after) == total


def test_scan_on_the_cluster_gives_the_in_process_table(client):
    kw = dict(c0=0.9, analytic=False)
    groups = []
    rows = scan(["erf"], [10, 20, 30], [1.0, 2.0], client=client, on_group=groups.append, **kw)
    assert rows == scan(["erf"], [10, 20, 30], [1.0, 2.0], **kw)
    assert [g[0].depth for g in groups] == [10, 20, 30]  # in order, whatever finished first


def test_an_unreachable_scheduler_is_a_clear_exception():
    with pytest.raises(ConnectionError, match="cannot reach a Dask scheduler at tcp://127.0.0.1:9"):
        fieldgen.simulate("erf", client=UNREACHABLE, **SMALL)
    with pytest.raises(ValueError, match="not a scheduler address"):
        fieldgen.simulate("erf", client="no-port-here", **SMALL)
    with pytest.raises(ValueError, match="client must be"):
        fieldgen.simulate("erf", client=42, **SMALL)


def test_cli_unreachable_scheduler_is_one_line_within_10_s():
    argv = [
        os.path.join(os.path.dirname(sys.executable), "fieldgen"),
        "scan",
        "erf",
        "--depths",
        "30",
        "--scheduler",
        UNREACHABLE,
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    assert done.returncode == 1
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr
    assert lines[0].startswith(
        "fieldgen scan: error: cannot reach a Dask scheduler at " + UNREACHABLE
    )


def test_the_scheduler_address_comes_from_the_option_else_the_environment(monkeypatch):
    from fieldgen.distributed import ENV, scheduler_address

    monkeypatch.delenv(ENV, raising=False)
    assert scheduler_address(None) is None
    monkeypatch.setenv(ENV, "tcp://127.0.0.1:8786")
    assert scheduler_address(None) == "tcp://127.0.0.1:8786"
    assert scheduler_address("tcp://127.0.0.1:9") == "tcp://127.0.0.1:9"


def test_report_simulations_on_the_cluster_are_the_in_process_cache_entries(client, tmp_path):
    """`fieldgen report --scheduler`: a simulation computed on the cluster is stored under the
    key of the in-process one (the client is not part of the key) with the same numbers, so a
    later run without a cluster reads it from the cache."""
    from fieldgen.report import analyses
    from fieldgen.report.cache import SimulationCache

    kw = dict(SMALL, networks_per_stream=None, samples=40)
    on_cluster = analyses.Context(SimulationCache(tmp_path), progress=False, client=client)
    value = analyses._simulate(on_cluster, "tanh", **kw)
    assert on_cluster.cache.misses == 1
    assert not any(tmp_path.rglob("chunk-*.npz"))  # the report's cache only, no chunk files
    in_process = analyses.Context(SimulationCache(tmp_path), progress=False)
    assert np.array_equal(analyses._simulate(in_process, "tanh", **kw), value)
    assert in_process.cache.hits == 1 and in_process.cache.misses == 0
    assert np.array_equal(value, fieldgen.simulate("tanh", **kw))


def test_cli_report_with_an_unreachable_scheduler_is_one_line_and_writes_nothing(tmp_path):
    argv = [
        os.path.join(os.path.dirname(sys.executable), "fieldgen"),
        "report",
        "--quick",
        "--no-regenerate",
        "--out",
        str(tmp_path / "out"),
        "--scheduler",
        UNREACHABLE,
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    assert done.returncode == 1 and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "fieldgen report: error: cannot reach a Dask scheduler at " + UNREACHABLE
    )
    assert not (tmp_path / "out").exists()
