"""`fieldgen report`: the paper's analyses as figures (PNG and PDF) and a report.md.

    from fieldgen import report
    result = report.run("out", quick=True)    # result.markdown, result.figures, result.hits

Five figures: the mean-field kernel across layers, kernel fluctuations (variance and cross-layer
covariance), the mean shift and its parts, the sensitivity S(r) with r*, and r* against depth and
sigma_w^2; theory from the public API, simulations cached under `<out>/.cache/`. Importing this
package does not import matplotlib; `run` does.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .. import __version__
from ..codegen.writer import write_atomic
from ..distributed import client_for
from . import analyses, document
from .cache import SimulationCache
from .params import parameters

# figure name -> the analysis computing its data (the drawing function has the same name)
STEPS = {
    "kernel": analyses.kernel_paths,
    "fluctuations": analyses.fluctuations,
    "mean_shift": analyses.mean_shift,
    "sensitivity": analyses.sensitivity_curves,
    "optimum": analyses.optimum,
}


@dataclass(frozen=True)
class Report:
    markdown: Path
    figures: list  # every PNG and PDF written
    hits: int  # simulations read from the cache
    misses: int  # simulations computed
    seconds: dict  # wall time per figure


def run(
    out="out",
    quick: bool = False,
    progress: bool | None = None,
    log=print,
    command: str | None = None,
    client=None,
) -> Report:
    """Compute every analysis, draw the figures into `out` and write `out/report.md`.

    progress=None shows a progress bar per simulation when stderr is a terminal. `client` (a
    dask.distributed.Client or a scheduler address) runs the simulations' chunks on a Dask
    cluster; the numbers, and so the cache entries, are the same as in process.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    params = parameters(quick)
    progress = sys.stderr.isatty() if progress is None else progress
    with client_for(client) as live:  # an address: connected here, closed at the end
        ctx = analyses.Context(SimulationCache(out / ".cache"), progress, log, client=live)
        return _run(out, quick, params, ctx, log, command)


def _run(out: Path, quick: bool, params: dict, ctx, log, command) -> Report:
    from . import figures  # matplotlib: only now

    results, files, seconds = {}, [], {}
    start = time.perf_counter()
    for number, (name, analyse) in enumerate(STEPS.items(), 1):
        log(f"[{number}/{len(STEPS)}] {name}")
        t = time.perf_counter()
        results[name] = analyse(params[name], ctx)
        files += getattr(figures, name)(results[name], params[name], out)
        seconds[name] = time.perf_counter() - t
        log(f"      {name}: {seconds[name]:.1f} s")
    mode = "quick" if quick else "full"
    info = {
        "command": command or f"fieldgen report{' --quick' if quick else ''}",
        "version": __version__,
        "mode": mode,
        "seconds": seconds,
        "total": time.perf_counter() - start,
        "hits": ctx.cache.hits,
        "misses": ctx.cache.misses,
    }
    markdown = out / "report.md"
    write_atomic(markdown, document.render(results, params, info))  # never half-written
    log(
        f"wrote {markdown} and {len(files)} figure files in {info['total']:.0f} s "
        f"(simulations: {ctx.cache.misses} computed, {ctx.cache.hits} from the cache)"
    )
    return Report(markdown, files, ctx.cache.hits, ctx.cache.misses, seconds)
