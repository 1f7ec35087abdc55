"""Progress of a sweep on stderr: where the run stands (level 3 of 8, its requests done, an ETA) and the current
level's live figures (requests/s, p50 latency, errors by type); redrawn in place on a terminal, one line per
finished level otherwise (a pipe, CI, a log file)."""

from __future__ import annotations

import asyncio
import bisect
import math
import os
import shutil
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TextIO

from collector.loadgen import LevelProgress
from collector.outputs.precision import plain

REDRAW_INTERVAL_S = 0.1
BAR_WIDTH = 20
DEFAULT_GROWTH = 0.5  # latency ~ concurrency ** b until two concurrencies are measured (see eta_s)
MAX_ETA_S = 999 * 3600  # an estimate further out than this means nothing: it shows as ">999h"


@dataclass(frozen=True)
class PlannedLevel:
    """One level of the sweep as planned: what it measures and how many requests it sends, warm-up included."""

    experiment: str
    bucket: str
    concurrency: int  # an open-loop level's cap on requests in flight
    requests: int
    rate_per_s: float | None = None  # an open-loop level's target rate; 0 while a sweep has not found it yet
    repeat: int = 1  # which of the level's `repeats` runs this is
    repeats: int = 1

    @property
    def label(self) -> str:
        """How a progress line names the level's load: 'concurrency 4', 'rate 2.5/s' or 'rate (sweep)', and
        ', repeat 2/3' when the level runs more than once."""
        if self.rate_per_s is None:
            load = f"concurrency {self.concurrency}"
        else:
            load = f"rate {plain(self.rate_per_s)}/s" if self.rate_per_s else "rate (sweep)"
        return f"{load}, repeat {self.repeat}/{self.repeats}" if self.repeats > 1 else load

    @property
    def workers(self) -> int:
        """Requests in flight while the level runs (run_level starts no more workers than it has requests)."""
        return max(1, min(self.concurrency, self.requests))


def _rounds(requests: int, workers: int) -> int:
    return -(-requests // workers)


def eta_s(
    plan: Sequence[PlannedLevel],
    finished: Mapping[int, tuple[int, float]],
    current: int,
    done: int = 0,
    done_at_s: float = 0.0,
    elapsed_s: float = 0.0,
) -> float | None:
    """Seconds until the sweep's last level ends, or None while nothing has been measured to estimate from.

    `finished` maps each finished level's index in `plan` to its requests done and seconds taken; `current` is the
    index of the level in progress (`done` of its requests finished, the last `done_at_s` into it, `elapsed_s` now),
    or of the next level to run.

    Why this estimator: on a closed loop with k requests in flight and latency L, a level of n requests takes about
    ceil(n / k) rounds of L (the last round is the tail, when fewer than k are in flight). So each finished level
    yields L = seconds / rounds, and the level in progress once a full round is back, L = done_at * k / done (its
    rate until the last completion, so the estimate does not creep up between completions). A level still to run
    takes the nearest measurement in sweep order (of the same experiment and bucket, else the same experiment,
    else the same bucket, else any: latency depends on the endpoint and the prompt lengths, and the nearest level
    in sweep order is the nearest in concurrency), scaled to its k as L * (k / k_measured) ** b. The exponent b
    lies between 0 (latency does not grow with load: optimistic) and 1 (throughput stops growing: pessimistic);
    it is measured from the last two concurrencies of the same bucket (else of the experiment) and is 0.5 until
    then, which is never more than sqrt(k / k_measured) off either bound. The level in progress counts as its
    predicted time less what has elapsed, never below 0. Only measuring time is counted, not an engine's start-up
    before the next experiment.
    """
    seen: list[tuple[PlannedLevel, float]] = []  # (level, its latency L), in sweep order
    for i in sorted(finished):
        n, seconds = finished[i]
        if i < min(current, len(plan)) and n > 0 and plan[i].rate_per_s is None:
            seen.append((plan[i], seconds / _rounds(n, plan[i].workers)))
    if current < len(plan) and plan[current].rate_per_s is None and done >= plan[current].workers:
        seen.append((plan[current], done_at_s * plan[current].workers / done))
    samples = [(level, latency) for level, latency in seen if latency > 0]  # a clock too coarse measures 0
    remaining = plan[max(current, 0) :]
    if not samples and (not remaining or any(level.rate_per_s is None for level in remaining)):
        return None  # nothing measured to estimate a closed level from (an open loop needs nothing)
    nearest: dict[tuple[str, ...], tuple[PlannedLevel, float]] = {}
    growth: dict[tuple[str, ...], float] = {}
    for level, latency in samples:  # later samples overwrite earlier ones: the nearest in sweep order wins
        pair = (level.experiment, level.bucket)
        if pair in nearest:
            before, before_latency = nearest[pair]
            if before.workers != level.workers:
                b = (math.log(latency) - math.log(before_latency)) / math.log(level.workers / before.workers)
                growth[pair] = growth[(level.experiment,)] = min(max(b, 0.0), 1.0)
        for key in (pair, (level.experiment,), ("", level.bucket), ()):
            nearest[key] = (level, latency)
    total = 0.0
    for i in range(max(current, 0), len(plan)):
        level = plan[i]
        if level.rate_per_s is not None:  # an open loop takes its schedule's time (a sweep's unknown rate: none)
            seconds = level.requests / level.rate_per_s if level.rate_per_s else 0.0
            total += max(seconds - elapsed_s, 0.0) if i == current else seconds
            continue
        pair = (level.experiment, level.bucket)
        measured, latency = next(
            nearest[k] for k in (pair, (level.experiment,), ("", level.bucket), ()) if k in nearest
        )
        b = growth.get(pair, growth.get((level.experiment,), DEFAULT_GROWTH))
        seconds = latency * (level.workers / measured.workers) ** b * _rounds(level.requests, level.workers)
        total += max(seconds - elapsed_s, 0.0) if i == current else seconds
    return total


def duration(seconds: float) -> str:
    """A duration as a person reads it at a glance: 2.1s, 42s, 3m05s, 1h02m (never negative, capped at 999h)."""
    s = max(seconds, 0.0)
    if s >= MAX_ETA_S:
        return ">999h"
    if s < 9.95:
        return f"{s:.1f}s"
    whole = round(s)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def latency_text(seconds: float) -> str:
    """A latency by the outputs' precision rule: milliseconds below one second, seconds above."""
    return f"{plain(seconds * 1000)} ms" if seconds < 1 else f"{plain(seconds)} s"


def rate_text(per_s: float) -> str:
    """Requests per second by the outputs' precision rule (0.42, 12.3, 123)."""
    return f"{plain(per_s)} req/s"


def errors_text(count: int, by_type: Mapping[str, int]) -> str:
    """'0 errors', '1 error (timeout)', '5 errors (3 timeout, 2 other)': the count and its most frequent type."""
    text = f"{count} error{'' if count == 1 else 's'}"
    if not count or not by_type:
        return text
    top, n = max(by_type.items(), key=lambda kv: kv[1])  # ties: the type seen first
    return f"{text} ({top})" if n == count else f"{text} ({n} {top}, {count - n} other)"


@dataclass
class LevelFigures:
    """The live figures of the level in progress: errors by type and the sorted latencies of its measured
    successes (warm-up excluded, as in the marts). One float per request, so requests_per_level bounds it."""

    latencies_s: list[float] = field(default_factory=list)
    error_types: Counter[str] = field(default_factory=Counter)

    def add(self, progress: LevelProgress) -> None:
        """Count the request that just finished (the last one `progress` describes)."""
        if progress.last_error_type is not None:
            self.error_types[progress.last_error_type] += 1
        elif not progress.last_is_warmup:
            bisect.insort(self.latencies_s, progress.last_e2e_ns / 1e9)

    def p50_s(self) -> float | None:
        """The median latency so far (the mean of the two middle values for an even count, as quantile_cont)."""
        xs = self.latencies_s
        if not xs:
            return None
        mid = len(xs) // 2
        return xs[mid] if len(xs) % 2 else (xs[mid - 1] + xs[mid]) / 2


@dataclass(frozen=True)
class LineView:
    """Everything one progress line shows."""

    index: int  # 0-based place of the level in the plan
    count: int  # levels in the plan
    level: PlannedLevel
    done: int
    errors: int
    error_types: Mapping[str, int]
    rate_per_s: float | None
    p50_s: float | None
    elapsed_s: float
    run_done: int
    run_total: int
    eta_s: float | None


@dataclass(frozen=True)
class Part:
    """One figure of a progress line. On a narrow terminal the steps go from the highest number down: shorten a
    part (to `short`) at its `shorten_at`, drop it at its `drop_at` (None: never), until the line fits."""

    name: str
    text: str
    short: str | None = None
    shorten_at: int | None = None
    drop_at: int | None = None
    sep: str = " | "


def line_parts(view: LineView, bar: bool) -> list[Part]:
    lv = view.level
    errors = errors_text(view.errors, view.error_types)
    short_errors = errors.replace(" errors", " err").replace(" error", " err")
    parts = [
        Part("level", f"level {view.index + 1} of {view.count}"),
        Part("experiment", lv.experiment, drop_at=60),
        Part("bucket", lv.bucket, drop_at=45),
        Part("concurrency", lv.label, lv.label.replace("concurrency ", "c="), shorten_at=40),
    ]
    if bar:
        filled = min(BAR_WIDTH, BAR_WIDTH * view.done // max(lv.requests, 1))
        parts.append(Part("bar", "[" + "#" * filled + "-" * (BAR_WIDTH - filled) + "]", drop_at=90, sep=" "))
    counts = f"{view.done}/{lv.requests}"
    parts.append(Part("requests", f"{counts} requests, {errors}", f"{counts} req, {short_errors}", shorten_at=35))
    if view.rate_per_s is not None:
        parts.append(Part("rate", rate_text(view.rate_per_s), drop_at=20))
    if view.p50_s is not None:
        parts.append(Part("p50", f"p50 {latency_text(view.p50_s)}", drop_at=10))
    parts.append(Part("elapsed", duration(view.elapsed_s), drop_at=80))
    run = f"run {view.run_done}/{view.run_total}"
    parts.append(Part("run", f"{run} requests", run, shorten_at=70, drop_at=50))
    if view.eta_s is not None:
        parts.append(Part("eta", f"ETA {duration(view.eta_s)}", drop_at=5))
    return parts


def join(parts: Sequence[Part], layout: Mapping[str, bool] | None = None) -> str:
    """The parts as one line; with a layout, only the parts it names, short where it says True."""
    texts: list[str] = []
    for part in parts:
        if layout is not None and part.name not in layout:
            continue
        text = part.short if layout is not None and layout[part.name] and part.short is not None else part.text
        texts.append((part.sep if texts else "") + text)
    return "".join(texts)


def fit(parts: Sequence[Part], width: int) -> dict[str, bool]:
    """The layout (part name -> shortened) that fits `width` columns, or the narrowest one there is."""
    layout = {part.name: False for part in parts}
    steps = [(p.shorten_at, p.name, True) for p in parts if p.shorten_at is not None and p.short is not None]
    steps += [(p.drop_at, p.name, False) for p in parts if p.drop_at is not None]
    for _, name, shorten in sorted(steps, key=lambda step: -step[0]):
        if len(join(parts, layout)) <= width:
            break
        if shorten:
            layout[name] = True
        else:
            del layout[name]
    return layout


def render(view: LineView, width: int | None = None) -> str:
    """A progress line. For a log (width None): every figure, no bar. For a terminal: a bar, and the figures that
    fit `width` columns, chosen on the level's widest figures so that the line does not change shape as they
    change; whatever still does not fit is cut."""
    if width is None:
        return join(line_parts(view, bar=False))
    widest = replace(
        view,
        done=view.level.requests,
        rate_per_s=99.9,
        p50_s=99.99,
        elapsed_s=3599,
        eta_s=3599,
        run_done=view.run_total,
    )
    layout = fit(line_parts(widest, bar=True), width)
    return join(line_parts(view, bar=True), layout)[: max(width, 0)]


def terminal_width(stream: TextIO) -> int:
    """Columns of the terminal `stream` writes to (else what shutil finds: $COLUMNS, stdout's terminal, 80)."""
    try:
        columns = os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):
        columns = 0
    return columns or shutil.get_terminal_size().columns


class ProgressPrinter:
    """Redraws one line in place on a terminal (at most every REDRAW_INTERVAL_S, and each finished level stays as a
    line); prints one line per finished level otherwise."""

    def __init__(
        self, plan: Sequence[PlannedLevel], stream: TextIO = sys.stderr, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.plan = list(plan)
        self.stream = stream
        self.clock = clock
        self.tty = stream.isatty()
        self.finished: dict[int, tuple[int, float]] = {}
        self.index = 0
        self.progress = LevelProgress()
        self.figures = LevelFigures()
        self.started = 0.0
        self.done_at = 0.0  # when the level's latest request finished, seconds into the level
        self.drawn_at = 0.0

    def replan(self, plan: Sequence[PlannedLevel]) -> None:
        """The plan changed after the level in progress (a sweep found its rates, or stopped a bucket's ladder)."""
        self.plan = list(plan)

    def start(self, index: int) -> None:
        """Level `index` of the plan begins."""
        self.index = index
        self.progress = LevelProgress()
        self.figures = LevelFigures()
        self.started = self.clock()
        self.done_at = 0.0
        self.drawn_at = self.started
        if self.tty:
            self._draw()

    def update(self, progress: LevelProgress) -> None:
        """A request of the current level finished (run_level's progress callback)."""
        self.progress = progress
        self.done_at = self.clock() - self.started
        self.figures.add(progress)
        self.redraw()

    def redraw(self) -> None:
        """Redraw the terminal's line unless it was drawn less than REDRAW_INTERVAL_S ago."""
        now = self.clock()
        if self.tty and now - self.drawn_at >= REDRAW_INTERVAL_S:
            self.drawn_at = now
            self._draw()

    async def ticking(self) -> None:
        """Redraw while no request finishes (a slow level's elapsed time and ETA still move); cancel to stop."""
        while True:
            await asyncio.sleep(REDRAW_INTERVAL_S)
            self.redraw()

    def view(self, finished: bool = False) -> LineView:
        done = self.progress.done
        if finished:  # the level's own time, and the run's remaining time after it
            elapsed = self.finished[self.index][1]
            eta = eta_s(self.plan, self.finished, self.index + 1) if self.index + 1 < len(self.plan) else None
        else:
            elapsed = max(self.clock() - self.started, 0.0)
            eta = eta_s(self.plan, self.finished, self.index, done, self.done_at, elapsed)
        before = sum(n for i, (n, _) in self.finished.items() if i != self.index)
        return LineView(
            index=self.index,
            count=len(self.plan),
            level=self.plan[self.index],
            done=done,
            errors=self.progress.errors,
            error_types=self.figures.error_types,
            rate_per_s=done / elapsed if done and elapsed > 0 else None,
            p50_s=self.figures.p50_s(),
            elapsed_s=elapsed,
            run_done=before + done,
            run_total=sum(lv.requests for lv in self.plan),
            eta_s=eta,
        )

    def _draw(self) -> None:
        # One column short of the width: writing the last column makes some terminals wrap.
        self.stream.write("\r\x1b[2K" + render(self.view(), terminal_width(self.stream) - 1))
        self.stream.flush()

    def finish(self) -> None:
        """The current level ended (completed or stopped): its line stays, with the run's remaining ETA."""
        self.finished[self.index] = (self.progress.done, max(self.clock() - self.started, 0.0))
        view = self.view(finished=True)
        if self.tty:
            self.stream.write("\r\x1b[2K" + render(view, terminal_width(self.stream) - 1) + "\n")
        else:
            self.stream.write(render(view) + "\n")
        self.stream.flush()
