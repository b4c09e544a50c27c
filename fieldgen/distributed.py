"""Running chunks of work on a Dask cluster (`pip install 'fieldgen[distributed]'`).

Imported only when a client or a scheduler address is given: the in-process default needs
neither Dask nor a cluster. A scheduler address comes from the caller or from FIELDGEN_SCHEDULER.
"""

from __future__ import annotations

import contextlib
import os

ENV = "FIELDGEN_SCHEDULER"
CONNECT_TIMEOUT = (
    4.0  # seconds; with Dask's import, an unreachable scheduler is reported within 10 s
)


def _distributed():
    try:
        import distributed
    except ImportError:
        raise ValueError(
            "a Dask scheduler was given, but dask.distributed is not installed "
            "(pip install 'fieldgen[distributed]')"
        ) from None
    return distributed


def scheduler_address(address=None) -> str | None:
    """The address given, else FIELDGEN_SCHEDULER, else None (run in process)."""
    if address is None:
        address = os.environ.get(ENV) or None
    return address


def connect(address: str, timeout: float = CONNECT_TIMEOUT):
    """A dask.distributed.Client of the scheduler at `address` (e.g. tcp://host:8786).

    ConnectionError with a one-line message when no scheduler answers within `timeout` seconds;
    ValueError for an address that is not one.
    """
    if not isinstance(address, str) or not address.strip():
        raise ValueError(
            f"the scheduler address must be a non-empty string like "
            f"tcp://host:8786; got {address!r}"
        )
    distributed = _distributed()
    try:  # checked first: a Client made from a malformed address hangs on its way out
        from distributed.comm import get_address_host_port

        get_address_host_port(address.strip())
    except ValueError as exc:
        raise ValueError(
            f"{address!r} is not a scheduler address like tcp://host:8786 "
            f"({' '.join(str(exc).split())})"
        ) from None
    try:
        return distributed.Client(address.strip(), timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise ConnectionError(
            f"cannot reach a Dask scheduler at {address} within {timeout:g} s "
            f"({' '.join(str(exc).split()) or type(exc).__name__}); is "
            "`dask scheduler` running there and the port open?"
        ) from None
    except (ValueError, TypeError) as exc:
        raise ValueError(
            f"{address!r} is not a scheduler address like tcp://host:8786 "
            f"({' '.join(str(exc).split())})"
        ) from None


@contextlib.contextmanager
def client_for(client):
    """The Client to use: None (in process), a Client as given, or a connection to an address
    string (closed on exit)."""
    if client is None or not isinstance(client, str):
        if client is not None and not callable(getattr(client, "submit", None)):
            raise ValueError(
                f"client must be a dask.distributed.Client, a scheduler address or "
                f"None; got {type(client).__name__}"
            )
        yield client
        return
    own = connect(client)
    try:
        yield own
    finally:
        own.close()


def run_on_client(client, compute, chunks, on_done) -> int:
    """compute(first, stop) for each chunk on the cluster; on_done(first, stop, value) in this
    process as each finishes (in completion order). A lost worker's chunks are recomputed by Dask;
    an error in a chunk cancels the rest and is raised here.

    Results are fetched by Dask in the background as chunks finish (``with_results=True``) and
    handed over in batches: one round trip per result fetched in turn cost 2-3 times the
    overhead per chunk (benchmarks/bench_distributed.py)."""
    distributed = _distributed()
    if not chunks:
        return 0
    firsts, stops = zip(*chunks)
    futures = client.map(compute, firsts, stops, pure=False)  # one message for all chunks
    where = {future.key: chunk for future, chunk in zip(futures, chunks)}
    try:
        for batch in distributed.as_completed(futures, with_results=True).batches():
            for future, value in batch:
                if future.status != "finished":  # cancelled elsewhere (errors raise above)
                    future.result()
                on_done(*where[future.key], value)
                future.release()
    finally:
        pending = [f for f in futures if not f.done()]
        if pending:
            client.cancel(pending)
    return len(chunks)


def map_ordered(client, function, items):
    """function(item) for each item, yielded in order: on the cluster when a client is given
    (all submitted at once), else one after the other in process."""
    if client is None:
        for item in items:
            yield function(item)
        return
    futures = client.map(function, list(items), pure=False)
    try:
        for future in futures:
            yield future.result()
            future.release()
    finally:
        pending = [f for f in futures if not f.done()]
        if pending:
            client.cancel(pending)
