"""A progress line per concurrency level: requests done/total and errors so far."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from collector.loadgen import LevelProgress

REDRAW_INTERVAL_S = 0.1
BAR_WIDTH = 24


class ProgressPrinter:
    """Redraws one line in place on a terminal; prints one line per finished level otherwise."""

    def __init__(self, stream: TextIO = sys.stderr) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.label = ""
        self.total = 0
        self.last = LevelProgress()
        self.started = 0.0
        self.drawn_at = 0.0

    def start(self, experiment: str, bucket: str, concurrency: int, total: int) -> None:
        self.label = f"{experiment} | {bucket} | concurrency {concurrency}"
        self.total = total
        self.last = LevelProgress()
        self.started = time.monotonic()
        self.drawn_at = 0.0
        if self.tty:
            self._draw()

    def update(self, progress: LevelProgress) -> None:
        self.last = progress
        now = time.monotonic()
        if self.tty and now - self.drawn_at >= REDRAW_INTERVAL_S:
            self.drawn_at = now
            self._draw()

    def _line(self) -> str:
        done, total = self.last.done, max(self.total, 1)
        filled = int(BAR_WIDTH * done / total)
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        elapsed = time.monotonic() - self.started
        return f"{self.label} [{bar}] {done}/{self.total} requests, {self.last.errors} errors, {elapsed:.1f} s"

    def _draw(self) -> None:
        self.stream.write("\r\x1b[2K" + self._line())
        self.stream.flush()

    def finish(self) -> None:
        self.stream.write(("\r\x1b[2K" if self.tty else "") + self._line() + "\n")
        self.stream.flush()
