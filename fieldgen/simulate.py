"""Monte-Carlo simulation of finite-width residual networks at initialisation.

Two exact methods (same law at every width):

- ``method="weights"`` draws the real weight matrices W^l (N x N) and biases and runs the network;
- ``method="walk"`` uses the conditional-Gaussian reduction (docs/theory, "Exact facts at any
  width"): given layer l-1 the increments W^l phi(h^{l-1}) + b^l are i.i.d. over neurons with
  covariance C^l = sigma_w^2 Phihat^{l-1} + sigma_b^2 (reduced block: the pre-activations W h + b
  with covariance sigma_w^2 Khat^{l-1} + sigma_b^2), so each layer costs O(N) instead of O(N^2).

Both return the empirical kernels Khat^l = (1/N) sum_i h^l_i h^l_i^T of `samples` independent
networks. Networks are processed in blocks, each with its own random stream spawned from `seed`;
the block size depends only on (width, number of inputs, method), so a seed reproduces a run and
two runs that differ only in K0, r or sigma_w2 share their random numbers (common random numbers).
With a Dask client (or a results folder) consecutive blocks are grouped into chunks, the unit of
work and of the files in the results folder; the result is the same bit for bit in process, on any
number of workers and for any chunk size (fieldgen.chunks, fieldgen.distributed).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import chunks as _chunks
from . import progress as _progress
from . import validation as check
from .activations import ActivationLike
from .generated import module

METHODS = ("weights", "walk")
_CHUNK_BYTES = 64 * 2**20


def _cholesky(C: np.ndarray) -> np.ndarray:
    """Lower Cholesky factors of PSD matrices (S, P, P), P <= 2, tolerant of singular ones."""
    L = np.zeros_like(C)
    l11 = np.sqrt(np.maximum(C[:, 0, 0], 0.0))
    L[:, 0, 0] = l11
    if C.shape[1] == 2:
        safe = np.where(l11 > 0, l11, 1.0)
        l21 = np.where(l11 > 0, C[:, 1, 0] / safe, 0.0)
        L[:, 1, 0] = l21
        L[:, 1, 1] = np.sqrt(np.maximum(C[:, 1, 1] - l21 * l21, 0.0))
    return L


def _correlated_normals(rng, L: np.ndarray, width: int) -> np.ndarray:
    """Rows i.i.d. N(0, L L^T) for each sample: (S, N, P)."""
    z = rng.standard_normal((L.shape[0], width, L.shape[1]))
    return np.einsum("snq,spq->snp", z, L)


def _gram(h: np.ndarray) -> np.ndarray:
    """(1/N) h^T h per sample: (S, P, P)."""
    return np.einsum("snp,snq->spq", h, h) / h.shape[1]


def _networks_per_stream(width: int, n_inputs: int, method: str) -> int:
    per_sample = 8 * (width * width if method == "weights" else 4 * width * n_inputs)
    return max(1, _CHUNK_BYTES // per_sample)


def _input_layer(rng, K0: np.ndarray, gram: np.ndarray | None, params, S, width, method):
    """h^0 for S networks: (S, N, P)."""
    sigma_w2, sigma_b2 = params
    P = K0.shape[0]
    if gram is None or method == "walk":
        return _correlated_normals(rng, np.broadcast_to(_cholesky(K0[None]), (S, P, P)), width)
    # A real input layer: d = P inputs x_a with x_a.x_b / d = G.
    x = np.sqrt(P) * _cholesky(gram[None])[0]  # (P, d), row a is x_a
    W0 = rng.standard_normal((S, width, P)) * np.sqrt(sigma_w2 / P)
    b0 = rng.standard_normal((S, width, 1)) * np.sqrt(sigma_b2)
    return np.einsum("snd,pd->snp", W0, x) + b0


def _layer(rng, h, phi, block, method, r, sigma_w2, sigma_b2):
    S, N, P = h.shape
    if method == "walk":
        if block == "full":
            g = phi(h)
            C = sigma_w2 * _gram(g) + sigma_b2
            return h + r * _correlated_normals(rng, _cholesky(C), N)
        C = sigma_w2 * _gram(h) + sigma_b2
        return h + r * phi(_correlated_normals(rng, _cholesky(C), N))
    W = rng.standard_normal((S, N, N)) * np.sqrt(sigma_w2 / N)
    b = rng.standard_normal((S, N, 1)) * np.sqrt(sigma_b2)  # one bias per neuron, all inputs
    if block == "full":
        return h + r * (W @ phi(h) + b)
    return h + r * phi(W @ h + b)


def _finite(K: np.ndarray, layer: int, bar) -> np.ndarray:
    """K, or an OverflowError naming the layer (like fieldgen.kernel) instead of inf or NaN."""
    if not np.all(np.isfinite(K)):
        bar.close()
        raise OverflowError(
            f"the simulated kernel leaves the float64 range at layer {layer}: it "
            "grows too fast for this depth and r (reduce depth or r)"
        )
    return K


@dataclass(frozen=True)
class _Run:
    """Everything a block's networks depend on: sent to the workers, hashed for the results."""

    activation: object  # a built-in name or a fieldgen.Activation
    r: float
    sigma_w2: float
    sigma_b2: float
    depth: int
    K0: tuple  # the input kernel (input="kernel") or Gram matrix (input="layer"), P x P
    input: str
    block: str
    method: str
    width: int
    samples: int
    per_stream: int  # networks per random stream (block)
    seed: tuple  # chunks.seed_state of the SeedSequence

    @property
    def P(self) -> int:
        return len(self.K0)

    @property
    def n_blocks(self) -> int:
        return -(-self.samples // self.per_stream)

    def networks(self, first: int, stop: int) -> int:
        """Networks in blocks first..stop-1 (the last block may be short)."""
        return min(stop * self.per_stream, self.samples) - first * self.per_stream


def _simulate_blocks(run: _Run, first: int, stop: int, out=None, bar=None) -> np.ndarray:
    """Kernels (S, depth+1, P, P) of the networks of blocks first..stop-1."""
    P, depth, width = run.P, run.depth, run.width
    matrix = np.array(run.K0, dtype=float)
    if run.input == "layer":
        gram, K0mat = matrix, run.sigma_w2 * matrix + run.sigma_b2
    else:
        gram, K0mat = None, matrix
    phi = module("gauss", run.activation).phi
    bar = bar or _progress.Progress(1, "", False)
    if out is None:
        out = np.empty((run.networks(first, stop), depth + 1, P, P))
    offset = first * run.per_stream
    for index in range(first, stop):
        rng = _chunks.block_stream(run.seed, index)
        start = index * run.per_stream - offset
        S = min(run.per_stream, run.samples - index * run.per_stream)
        h = _input_layer(rng, K0mat, gram, (run.sigma_w2, run.sigma_b2), S, width, run.method)
        out[start : start + S, 0] = _finite(_gram(h), 0, bar)
        for l in range(1, depth + 1):
            h = _layer(rng, h, phi, run.block, run.method, run.r, run.sigma_w2, run.sigma_b2)
            out[start : start + S, l] = _finite(_gram(h), l, bar)
            bar.update(S)
    return out


def _digest(activation) -> str:
    """The simulator's source: this module, the streams, the activation's generated module (for
    an activation of the user cache: its digest, which covers expression and generator)."""
    if hasattr(activation, "digest"):
        return (
            _chunks.digest(__file__, _chunks.__file__) + f"/{activation.digest}"
            f"/numpy-{np.__version__}"
        )
    generated = Path(module("gauss", activation).__file__)
    return _chunks.digest(__file__, _chunks.__file__, generated) + f"/numpy-{np.__version__}"


def simulate(
    activation: ActivationLike,
    *,
    r: float | None = None,
    sigma_w2: float,
    depth: int,
    K0: ArrayLike,
    width: int,
    samples: int,
    sigma_b2: float = 0.0,
    block: str = "full",
    seed: object = None,
    method: str = "weights",
    input: str = "kernel",
    progress: bool | None = None,
    client: object = None,
    results: object = None,
    streams_per_chunk: int = 1,
    networks_per_stream: int | None = None,
    tau: float | None = None,
) -> NDArray[np.float64]:
    """Empirical kernels Khat^l = (1/N) sum_i h^l_i h^l_i^T of independent finite networks.

    Draws `samples` networks of width N = `width` at initialisation and returns the empirical
    kernel of every layer l = 0..depth: the observable the theory predicts (mean
    ``kernel + kernel_mean_shift/N``, covariance ``kernel_covariance/N``).

    Parameters
    ----------
    activation : str or fieldgen.Activation
        A built-in name (:data:`fieldgen.ACTIVATIONS`, :data:`fieldgen.PRESETS`) or an
        activation made by :func:`fieldgen.activation`.
    r : float
        Residual scale, >= 0 (a scalar).
    tau : float, optional
        Instead of r, a depth-scaled network's tau = r^2 sigma_w^2 L >= 0 (then r =
        sqrt(tau / (sigma_w2 depth)), with sigma_w2 > 0 and depth >= 1). Give r or tau, not both.
    sigma_w2 : float
        Weight variance >= 0.
    depth : int
        Number of residual blocks L >= 0.
    K0 : float or array_like, shape (2, 2)
        Input kernel (h^0 ~ N(0, K0) i.i.d. over neurons) or, with ``input="layer"``, the input
        Gram matrix x.x'/d of an input layer.
    width : int
        Network width N >= 1.
    samples : int
        Number of independent networks >= 1.
    sigma_b2 : float, default 0.0
        Bias variance >= 0.
    block : {"full", "reduced"}, default "full"
        Residual block.
    seed : int, numpy.random.SeedSequence, numpy.random.Generator, optional
        Anything ``numpy.random.default_rng`` accepts. The same seed reproduces a run, and runs
        that differ only in K0, r or sigma_w2 share their random numbers (common random numbers).
    method : {"weights", "walk"}, default "weights"
        ``"weights"`` draws the real N x N weight matrices (O(N^2) per layer); ``"walk"`` uses
        the exact conditional-Gaussian reduction (O(N) per layer; docs/theory, "Exact facts at
        any width"). Both have the same law at every width.
    input : {"kernel", "layer"}, default "kernel"
        Meaning of K0.
    progress : bool, optional
        Show a progress bar on standard error; by default only for long runs on a terminal.
    client : dask.distributed.Client or str, optional
        Run the chunks of networks on a Dask cluster (a client or a scheduler address such as
        ``tcp://host:8786``); None runs in process. The result is the same bit for bit.
    results : str or path or False, optional
        A folder where finished chunks are kept, so that a rerun computes only the missing ones
        (default with a client: ``$FIELDGEN_RESULTS`` or ``~/.cache/fieldgen/runs``; False: none).
    streams_per_chunk : int, default 1
        Blocks of networks per chunk, the unit of work (does not change the result).
    networks_per_stream : int, optional
        Networks per random stream (default: as many as fit in 64 MiB per layer); part of what
        the seed means.

    Returns
    -------
    numpy.ndarray
        Shape ``(samples, depth+1)`` for one input and ``(samples, depth+1, 2, 2)`` for two;
        units of K0.

    Raises
    ------
    ValueError
        A parameter outside its range (message starts with its name).
    OverflowError
        If a network's kernel leaves the float64 range (the message names the layer).

    Examples
    --------
    >>> import fieldgen
    >>> Khat = fieldgen.simulate("erf", r=0.3, sigma_w2=1.0, depth=20, K0=1.0, width=64,
    ...                          samples=100, seed=0, method="walk")
    >>> Khat.shape
    (100, 21)
    """
    r = check.residual_scale(r, tau, sigma_w2, depth)
    activation = check.activation(activation)
    block = check.block(block)
    input = check.input_mode(input)
    method = check.choice("method", method, METHODS)
    depth = check.depth(depth)
    width = check.integer("width", width, minimum=1)
    samples = check.integer("samples", samples, minimum=1)
    r = check.nonnegative("r", r, scalar=True)
    sigma_w2 = check.nonnegative("sigma_w2", sigma_w2, scalar=True)
    sigma_b2 = check.nonnegative("sigma_b2", sigma_b2, scalar=True)
    entries, P = check.kernel_matrix("K0", K0)
    matrix = check.pair_to_matrix(entries) if P == 2 else entries.reshape(1, 1)
    streams_per_chunk = check.integer("streams_per_chunk", streams_per_chunk, minimum=1)
    per_stream = (
        _networks_per_stream(width, P, method)
        if networks_per_stream is None
        else check.integer("networks_per_stream", networks_per_stream, minimum=1)
    )
    seq = _chunks.seed_sequence(seed)
    run = _Run(
        activation,
        float(r),
        float(sigma_w2),
        float(sigma_b2),
        depth,
        tuple(map(tuple, matrix.tolist())),
        input,
        block,
        method,
        width,
        samples,
        per_stream,
        _chunks.seed_state(seq),
    )
    label = f"simulate {activation} N={width}"
    cost = samples * depth * width * (width if method == "weights" else 4 * P) * 5e-9
    wanted = _progress.wanted(progress, cost)
    if client is None and not results:
        # In process, no results folder: one pass over the blocks, a bar over layers.
        bar = _progress.Progress(samples * max(depth, 1), label, wanted)
        out = _simulate_blocks(run, 0, run.n_blocks, np.empty((samples, depth + 1, P, P)), bar)
        bar.close()
    else:
        out = _chunked(run, client, results, streams_per_chunk, label, wanted)
    return out[:, :, 0, 0] if P == 1 else out


def _chunked(run: _Run, client, results, streams_per_chunk: int, label: str, wanted: bool):
    """The blocks in chunks: those in the results folder are read, the others computed (on the
    cluster when a client is given) and stored as each one finishes."""
    from . import distributed as _dist  # only here: the in-process default never imports Dask

    with _dist.client_for(client) as live:  # connect first: nothing is written for a bad address
        out = np.empty((run.samples, run.depth + 1, run.P, run.P))
        rows = (run.depth + 1, run.P, run.P)
        store = None
        if results is None and live is not None:
            results = _chunks.default_results_folder()
        if results:
            description = dict(
                vars(run),
                seed=list(run.seed),
                simulator=_digest(run.activation),
                activation=str(run.activation),
            )
            description["K0"] = [list(row) for row in run.K0]
            store = _chunks.ResultsFolder(results, _chunks.key_of(description), description)
        done = store.load_all(lambda a, b: (run.networks(a, b),) + rows) if store else {}
        have: set[int] = set()
        for (first, stop), value in done.items():
            out[first * run.per_stream :][: len(value)] = value
            have.update(range(first, stop))
        todo = _chunks.plan([b for b in range(run.n_blocks) if b not in have], streams_per_chunk)
        read = f" ({len(done)} read from {store.path})" if done and store is not None else ""
        bar = _progress.Progress(len(todo), f"{label}: {len(todo)} chunks{read}", wanted)

        def finished(first, stop, value):
            if store is not None:
                store.save(first, stop, value)
            out[first * run.per_stream :][: len(value)] = value
            bar.update(1)

        try:
            _chunks.run(
                functools.partial(_simulate_blocks, run), todo, client=live, on_done=finished
            )
        finally:
            bar.close()
    return out
