"""Work split into chunks: seeds, random streams per block, a results folder, and the runner.

A run of `n_blocks` blocks (fixed groups of networks, each with its own random stream spawned
from the seed) is cut into chunks of consecutive blocks. A chunk is the unit of work sent to a
Dask worker and of the files in the results folder; the blocks fix the random numbers, so the
result does not depend on the chunk size, on the number of workers, nor on where it ran.

This module never imports Dask: `fieldgen.distributed` does, and only when a client is given.
"""

from __future__ import annotations

import hashlib
import json
import numbers
import os
import re
import tempfile
import warnings
from pathlib import Path

import numpy as np

SEED_HELP = (
    "seed must be None, an integer >= 0, a sequence of them, a numpy.random.SeedSequence, "
    "a numpy.random.Generator or a BitGenerator (what numpy.random.default_rng accepts)"
)


def seed_sequence(seed) -> np.random.SeedSequence:
    """The SeedSequence a seed stands for; ValueError naming `seed` otherwise.

    An int (or a sequence of ints) and SeedSequence(that int) give the same streams. A Generator or
    BitGenerator is drawn from (128 bits of entropy), so it gives a reproducible result for a
    given state and, like any use of a Generator, a new one on the next call. None: fresh entropy.
    """
    if seed is None:
        return np.random.SeedSequence()
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if isinstance(seed, np.random.BitGenerator):
        seed = np.random.Generator(seed)
    if isinstance(seed, np.random.Generator):
        return np.random.SeedSequence([int(x) for x in seed.integers(0, 2**63, size=2)])
    if isinstance(seed, np.random.RandomState):
        raise ValueError(f"{SEED_HELP}; got a legacy numpy.random.RandomState")
    if isinstance(seed, (bool, np.bool_)):
        raise ValueError(f"{SEED_HELP}; got {seed!r}")
    if isinstance(seed, numbers.Integral):
        if seed < 0:
            raise ValueError(f"{SEED_HELP}; got {seed!r} (negative)")
        return np.random.SeedSequence(int(seed))
    if isinstance(seed, (str, bytes)):
        raise ValueError(f"{SEED_HELP}; got {seed!r}")
    try:
        entries = np.asarray(seed)
    except Exception:  # a ragged or exotic object: not a seed
        entries = None
    if (
        entries is None
        or entries.ndim != 1
        or entries.size == 0
        or entries.dtype.kind not in "iu"
        and not (
            entries.dtype == object
            and all(isinstance(x, numbers.Integral) and not isinstance(x, bool) for x in entries)
        )
    ):
        raise ValueError(f"{SEED_HELP}; got {seed!r}")
    values = [int(x) for x in entries]
    if min(values) < 0:
        raise ValueError(f"{SEED_HELP}; got {seed!r} (a negative entry)")
    return np.random.SeedSequence(values)


def seed_state(seq: np.random.SeedSequence) -> tuple:
    """What identifies a SeedSequence's children: picklable, hashable, printable."""
    raw = seq.entropy
    entropy = raw if isinstance(raw, int) else tuple(int(x) for x in (raw or ()))
    return entropy, tuple(int(k) for k in seq.spawn_key), int(seq.pool_size)


def block_stream(state: tuple, index: int) -> np.random.Generator:
    """The Generator of block `index`: SeedSequence(seed).spawn(n)[index] for any n > index."""
    entropy, spawn_key, pool_size = state
    return np.random.default_rng(
        np.random.SeedSequence(entropy, spawn_key=spawn_key + (index,), pool_size=pool_size)
    )


def plan(blocks, blocks_per_chunk: int) -> list[tuple[int, int]]:
    """Chunks (first, stop) of at most blocks_per_chunk consecutive blocks, over the given
    (sorted) block indices; a gap in the indices starts a new chunk."""
    chunks: list = []
    run: list = []
    for b in blocks:
        if run and (b != run[-1] + 1 or len(run) == blocks_per_chunk):
            chunks.append((run[0], run[-1] + 1))
            run = []
        run.append(b)
    if run:
        chunks.append((run[0], run[-1] + 1))
    return chunks


def digest(*files) -> str:
    """SHA-256 over the bytes of source files (the code a stored result came from)."""
    h = hashlib.sha256()
    for f in files:
        h.update(Path(f).read_bytes())
    return h.hexdigest()


def key_of(description: dict) -> str:
    """A stable hash of a JSON-able description (parameters, seed, code digest)."""
    text = json.dumps(description, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def default_results_folder() -> Path:
    """FIELDGEN_RESULTS, else the user's cache folder (XDG_CACHE_HOME or ~/.cache)/fieldgen/runs."""
    if os.environ.get("FIELDGEN_RESULTS"):
        return Path(os.environ["FIELDGEN_RESULTS"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "fieldgen" / "runs"


_CHUNK_FILE = re.compile(r"^chunk-(\d{6,})-(\d{6,})\.npz$")


class ResultsFolder:
    """Finished chunks of one run in `root/<key>/`: atomic files, each verified before use.

    A file holds the run's key and its block range; a file that does not load, or whose key,
    range or shape is not the expected one, is never used (a one-line warning, recomputed).
    """

    def __init__(self, root, key: str, description: dict):
        self.key = key
        self.path = Path(root) / key
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OSError(
                f"cannot create the results folder {self.path}: {exc.strerror or exc}"
            ) from exc
        manifest = self.path / "run.json"
        if not manifest.exists():  # for people reading the folder; never trusted on load
            self._atomic(
                manifest,
                lambda f: f.write(
                    json.dumps(dict(description, key=key), indent=1, sort_keys=True).encode()
                ),
            )

    def _atomic(self, target: Path, write) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.path, prefix=".tmp-", suffix=target.suffix)
        try:
            with os.fdopen(fd, "wb") as handle:
                write(handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def chunk_path(self, first: int, stop: int) -> Path:
        return self.path / f"chunk-{first:06d}-{stop:06d}.npz"

    def save(self, first: int, stop: int, value: np.ndarray) -> None:
        self._atomic(
            self.chunk_path(first, stop),
            lambda f: np.savez(f, key=np.array(self.key), first=first, stop=stop, value=value),
        )

    def load_all(self, shape_of) -> dict[tuple[int, int], np.ndarray]:
        """Valid stored chunks {(first, stop): value}, non-overlapping; shape_of(first, stop)
        is the expected shape of a chunk's value."""
        found = {}
        covered: set[int] = set()
        for entry in sorted(self.path.iterdir()):
            m = _CHUNK_FILE.match(entry.name)
            if not m:
                continue
            first, stop = int(m.group(1)), int(m.group(2))
            value = self._verified(entry, first, stop, shape_of)
            if value is None or covered & set(range(first, stop)):
                continue
            covered |= set(range(first, stop))
            found[(first, stop)] = value
        return found

    def _verified(self, entry: Path, first: int, stop: int, shape_of):
        try:
            expected = shape_of(first, stop)
            with np.load(entry, allow_pickle=False) as data:
                ok = (
                    str(data["key"]) == self.key
                    and int(data["first"]) == first
                    and int(data["stop"]) == stop
                    and data["value"].shape == expected
                )
                value = data["value"] if ok else None
        except Exception as exc:  # truncated, empty, not a zip, missing entries, ...
            warnings.warn(
                f"ignoring the damaged result file {entry} ({type(exc).__name__}); "
                "its networks are computed again",
                RuntimeWarning,
                stacklevel=4,
            )
            return None
        if value is None:
            warnings.warn(
                f"ignoring the result file {entry}: it belongs to another run; its "
                "networks are computed again",
                RuntimeWarning,
                stacklevel=4,
            )
        return value


def run(compute, chunks, *, client=None, on_done=None) -> int:
    """compute(first, stop) for every chunk, in process or on a Dask client; on_done(first, stop,
    value) is called in this process as each one finishes. Returns the number computed."""
    if client is None:
        for first, stop in chunks:
            on_done(first, stop, compute(first, stop))
        return len(chunks)
    from .distributed import run_on_client

    return run_on_client(client, compute, chunks, on_done)
