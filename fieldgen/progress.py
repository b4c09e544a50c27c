"""A dependency-free progress bar for long simulations (written to stderr)."""

from __future__ import annotations

import sys
import time


class Progress:
    """Progress over `total` units; silent unless enabled."""

    def __init__(self, total: int, label: str, enabled: bool, stream=None):
        self.total = max(int(total), 1)
        self.label = label
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.done = 0
        self.start = time.monotonic()
        self._last = 0.0

    def update(self, units: int = 1) -> None:
        self.done += units
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last < 0.2 and self.done < self.total:
            return
        self._last = now
        frac = min(self.done / self.total, 1.0)
        elapsed = now - self.start
        eta = elapsed * (1 - frac) / frac if frac > 0 else float("nan")
        bar = "#" * int(30 * frac) + "." * (30 - int(30 * frac))
        self.stream.write(f"\r{self.label} [{bar}] {100 * frac:5.1f}%  eta {eta:6.1f}s")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write(
                f"\r{self.label}: done in {time.monotonic() - self.start:.1f}s" + " " * 40 + "\n"
            )
            self.stream.flush()


def wanted(progress, estimated_seconds: float) -> bool:
    """progress=None: show a bar when the run looks long and stderr is a terminal."""
    if progress is not None:
        return bool(progress)
    return estimated_seconds > 3.0 and sys.stderr.isatty()
