"""The sweep's progress lines: figures and ETA on hand-computed inputs, the estimator's bounds, the printer's
lines on a log and on a terminal, and the real CLI under a pseudo-terminal."""

from __future__ import annotations

import io
import math
import os
import pty
import re
import select
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.loadgen import LevelProgress
from collector.progress import (
    LevelFigures,
    LineView,
    PlannedLevel,
    ProgressPrinter,
    duration,
    errors_text,
    eta_s,
    latency_text,
    rate_text,
    render,
)
from tests.conftest import REPO, config_dict, sim_experiment, write_config

PLAN = [
    PlannedLevel("a", "short", 1, 10),
    PlannedLevel("a", "long", 1, 10),
    PlannedLevel("a", "short", 2, 10),
    PlannedLevel("a", "long", 2, 10),
    PlannedLevel("b", "short", 1, 10),
]
# Level 0 took 5 s for 10 requests at one worker (latency 0.5 s), level 1 took 20 s (2 s).
FINISHED = {0: (10, 5.0), 1: (10, 20.0)}


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-3, "0.0s"),
        (0, "0.0s"),
        (2.14, "2.1s"),
        (9.96, "10s"),
        (42.4, "42s"),
        (59.6, "1m00s"),
        (185, "3m05s"),
        (3599.6, "1h00m"),
        (3720, "1h02m"),
        (998 * 3600, "998h00m"),
        (1e12, ">999h"),
    ],
)
def test_duration_reads_as_seconds_minutes_or_hours_never_negative_and_capped(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_latency_rate_and_errors_read_with_their_units_and_the_most_frequent_error_type() -> None:
    assert [latency_text(s) for s in (0.0042, 0.4123, 2.345)] == ["4.2 ms", "412 ms", "2.35 s"]
    assert [rate_text(r) for r in (0.4234, 12.34, 123.4)] == ["0.423 req/s", "12.3 req/s", "123 req/s"]
    assert errors_text(0, {}) == "0 errors"
    assert errors_text(1, {"timeout": 1}) == "1 error (timeout)"
    assert errors_text(3, {"timeout": 3}) == "3 errors (timeout)"
    assert errors_text(5, {"http_error": 2, "timeout": 3}) == "5 errors (3 timeout, 2 other)"


def _finished(e2e_s: float, error_type: str | None = None, warmup: bool = False) -> LevelProgress:
    return LevelProgress(last_e2e_ns=int(e2e_s * 1e9), last_error_type=error_type, last_is_warmup=warmup)


def test_live_p50_counts_measured_successes_only_and_errors_by_type() -> None:
    figures = LevelFigures()
    assert figures.p50_s() is None
    figures.add(_finished(9.0, warmup=True))  # warm-up: progress, not latency
    figures.add(_finished(0.3, error_type="timeout"))  # a failure has no latency to show
    figures.add(_finished(0.4, error_type="timeout", warmup=True))  # but a warm-up failure is still an error
    for s in (0.5, 0.1, 0.3):
        figures.add(_finished(s))
    assert figures.p50_s() == pytest.approx(0.3)
    figures.add(_finished(0.2))
    assert figures.p50_s() == pytest.approx(0.25)  # even count: the mean of the two middle values
    assert figures.error_types == {"timeout": 2}


def test_eta_is_unknown_until_a_level_has_finished_a_full_round_or_an_earlier_level_finished() -> None:
    assert eta_s(PLAN, {}, 0) is None
    assert eta_s(PLAN, {}, 2, done=1, done_at_s=3.0, elapsed_s=3.0) is None  # one of two workers back
    # The first request back after 0.5 s: latency 0.5 s everywhere, scaled by sqrt(concurrency) at first.
    first = eta_s(PLAN, {}, 0, done=1, done_at_s=0.5, elapsed_s=0.6)
    assert first == pytest.approx((0.5 * 10 - 0.6) + 0.5 * 10 + 2 * 0.5 * math.sqrt(2) * 5 + 0.5 * 10)


def test_eta_scales_the_nearest_measured_latency_to_each_remaining_levels_concurrency_and_rounds() -> None:
    # Level 2 (a/short, 2 workers): 4 back, the last after 1 s: latency 1 * 2 / 4 = 0.5 s, as at 1 worker, so
    # a's latency does not grow with concurrency (b = 0). Level 2 takes 5 rounds of 0.5 s, 1.2 s of them gone;
    # level 3 (a/long, 2 workers) 5 rounds of a/long's 2 s; level 4 (b/short, 1 worker) 10 rounds of bucket
    # short's latest, 0.5 s measured at 2 workers, scaled by (1 / 2) ** 0.5 (nothing of b measured yet).
    assert eta_s(PLAN, FINISHED, 2, done=4, done_at_s=1.0, elapsed_s=1.2) == pytest.approx(
        (2.5 - 1.2) + 10 + 0.5 * math.sqrt(0.5) * 10
    )
    # One request back of two workers is no measurement: level 2 takes a/short's 0.5 s at 1 worker, * 2 ** 0.5.
    assert eta_s(PLAN, FINISHED, 2, done=1, done_at_s=1.0, elapsed_s=1.2) == pytest.approx(
        (0.5 * math.sqrt(2) * 5 - 1.2) + 2.0 * math.sqrt(2) * 5 + 0.5 * 10
    )
    # Level 2 took 4 s (0.8 s a round): a's latency grows as concurrency ** log2(1.6), level 3's 2 s by 1.6.
    assert eta_s(PLAN, {**FINISHED, 2: (10, 4.0)}, 3) == pytest.approx(2.0 * 1.6 * 5 + 0.8 * math.sqrt(0.5) * 10)
    # Growth beyond linear (throughput falling with load) is taken as linear.
    assert eta_s(PLAN, {**FINISHED, 2: (10, 15.0)}, 3) == pytest.approx(2.0 * 2 * 5 + 3.0 * math.sqrt(0.5) * 10)
    assert eta_s(PLAN, {**FINISHED, 2: (10, 3.0), 3: (10, 9.0), 4: (10, 4.0)}, 5) == 0.0


def test_eta_counts_a_levels_tail_as_a_whole_round() -> None:
    # 13 requests on 8 workers are 2 rounds: 8 s measured is 4 s a round, and the next such level takes 8 s.
    plan = [PlannedLevel("a", "x", 8, 13), PlannedLevel("a", "x", 8, 13)]
    assert eta_s(plan, {0: (13, 8.0)}, 1) == pytest.approx(8.0)
    # A bucket not measured yet takes its experiment's latest latency (2 s at 1 worker): 2 rounds at 4 workers.
    other = [*PLAN[:2], PlannedLevel("a", "huge", 4, 8)]
    assert eta_s(other, FINISHED, 2) == pytest.approx(2.0 * math.sqrt(4) * 2)


levels = st.builds(
    PlannedLevel,
    experiment=st.sampled_from(["a", "b"]),
    bucket=st.sampled_from(["x", "y"]),
    concurrency=st.integers(1, 64),
    requests=st.integers(1, 500),
)


def _rounds(level: PlannedLevel) -> int:
    return math.ceil(level.requests / level.workers)


@given(plan=st.lists(levels, min_size=1, max_size=8), data=st.data())
def test_eta_stays_between_the_remaining_rounds_at_the_fastest_and_the_slowest_latency_scaled_to_any_load(
    plan: list[PlannedLevel], data: st.DataObject
) -> None:
    current = data.draw(st.integers(0, len(plan)), label="current")
    seconds = st.floats(0, 1e5, allow_nan=False)
    finished = {i: (data.draw(st.integers(0, plan[i].requests)), data.draw(seconds)) for i in range(current)}
    done = data.draw(st.integers(0, plan[current].requests)) if current < len(plan) else 0
    done_at = data.draw(seconds)
    elapsed = done_at + data.draw(seconds)
    eta = eta_s(plan, finished, current, done, done_at, elapsed)

    latencies = [s / math.ceil(n / plan[i].workers) for i, (n, s) in finished.items() if n > 0]
    if current < len(plan) and done >= plan[current].workers:
        latencies.append(done_at * plan[current].workers / done)
    latencies = [latency for latency in latencies if latency > 0]
    if not latencies:
        assert eta is None
        return
    assert eta is not None and math.isfinite(eta)
    most = max(lv.workers for lv in plan)  # a latency scales by at most the ratio of two levels' concurrency
    upper = sum(_rounds(lv) for lv in plan[current:]) * max(latencies) * most
    lower = sum(_rounds(lv) for lv in plan[current + 1 :]) * min(latencies) / most
    assert lower * (1 - 1e-9) <= eta <= upper * (1 + 1e-9)


VIEW = LineView(
    index=2,
    count=8,
    level=PlannedLevel("llama8b-g5-stackA", "en_500-1000", 4, 9),
    done=9,
    errors=3,
    error_types={"timeout": 3},
    rate_per_s=12.34,
    p50_s=0.4123,
    elapsed_s=2.14,
    run_done=27,
    run_total=72,
    eta_s=65,
)


def test_a_log_line_has_every_figure_and_no_bar() -> None:
    assert render(VIEW) == (
        "level 3 of 8 | llama8b-g5-stackA | en_500-1000 | concurrency 4 | 9/9 requests, 3 errors (timeout) "
        "| 12.3 req/s | p50 412 ms | 2.1s | run 27/72 requests | ETA 1m05s"
    )


def test_a_terminal_line_has_a_bar_when_there_is_room() -> None:
    assert render(VIEW, 300) == (
        "level 3 of 8 | llama8b-g5-stackA | en_500-1000 | concurrency 4 [####################] | 9/9 requests, "
        "3 errors (timeout) | 12.3 req/s | p50 412 ms | 2.1s | run 27/72 requests | ETA 1m05s"
    )


def test_a_terminal_line_keeps_the_counts_live_figures_and_eta_within_80_columns() -> None:
    clean = replace(VIEW, errors=0, error_types={})
    assert render(clean, 79) == "level 3 of 8 | c=4 | 9/9 req, 0 err | 12.3 req/s | p50 412 ms | ETA 1m05s"
    # An error type takes the room of the request rate.
    assert render(VIEW, 79) == "level 3 of 8 | c=4 | 9/9 req, 3 err (timeout) | p50 412 ms | ETA 1m05s"


def _shape(line: str) -> tuple[int, bool, bool]:
    return line.count(" | "), " [" in line, "concurrency" in line


@given(
    width=st.integers(0, 250),
    done=st.integers(0, 9),
    rate=st.floats(0, 1e5),
    p50=st.floats(0, 1e4),
    elapsed=st.floats(0, 1e7),
    eta=st.floats(0, 1e7),
)
def test_a_terminal_line_fits_its_width_and_keeps_its_shape_as_the_figures_change(
    width: int, done: int, rate: float, p50: float, elapsed: float, eta: float
) -> None:
    line = render(replace(VIEW, done=done, rate_per_s=rate, p50_s=p50, elapsed_s=elapsed, eta_s=eta), width)
    assert len(line) <= width
    if width >= 60:  # wide enough for the narrowest layout: nothing is cut, figures only shorten or go
        assert line.startswith("level 3 of 8 | ")
        assert _shape(line) == _shape(render(VIEW, width))


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _sweep(printer: ProgressPrinter, clock: FakeClock, step_s: float) -> None:
    """Two levels of two requests each, one finishing every step_s, the second level's last one a timeout."""
    for index in range(2):
        printer.start(index)
        progress = LevelProgress()
        for k in range(2):
            clock.now += step_s
            failed = index == 1 and k == 1
            progress.done += 1
            progress.errors += failed
            progress.last_e2e_ns = int(step_s * 1e9)
            progress.last_error_type = "timeout" if failed else None
            progress.last_is_warmup = k == 0
            printer.update(progress)
        printer.finish()


def test_a_log_gets_one_line_per_finished_level_with_the_runs_eta() -> None:
    clock, out = FakeClock(), io.StringIO()
    printer = ProgressPrinter([PlannedLevel("a", "x", 1, 2), PlannedLevel("a", "y", 1, 2)], out, clock)
    _sweep(printer, clock, 0.5)
    assert out.getvalue().splitlines() == [
        "level 1 of 2 | a | x | concurrency 1 | 2/2 requests, 0 errors | 2 req/s | p50 500 ms | 1.0s "
        "| run 2/4 requests | ETA 1.0s",
        "level 2 of 2 | a | y | concurrency 1 | 2/2 requests, 1 error (timeout) | 2 req/s | 1.0s | run 4/4 requests",
    ]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_line_is_redrawn_in_place_at_most_every_tenth_of_a_second(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    clock, out = FakeClock(), Terminal()
    printer = ProgressPrinter([PlannedLevel("a", "x", 1, 2), PlannedLevel("a", "y", 1, 2)], out, clock)
    _sweep(printer, clock, 0.06)  # draws at each start, then at most one per 0.1 s, then each finished line
    frames = out.getvalue().split("\r\x1b[2K")[1:]
    assert len(frames) == 2 * (1 + 1 + 1)  # start, the update at 0.12 s, finish
    assert all(len(f.rstrip("\n")) <= 199 for f in frames)
    # Level 1: two requests of 0.06 s on one worker, 0.12 s in all: 16.7 req/s, and the p50 of its one measured
    # request (the first is the warm-up) 60 ms. Level 2 is two such rounds more: ETA 0.12 s, from level 2's start
    # on (it begins with the first level's measurement to estimate from); a finished run has no ETA left to show.
    bar, empty = "[" + "#" * 20 + "]", "[" + "-" * 20 + "]"
    one = f"level 1 of 2 | a | x | concurrency 1 {bar} | 2/2 requests, 0 errors | 16.7 req/s | p50 60 ms | 0.1s"
    two = f"level 2 of 2 | a | y | concurrency 1 {bar} | 2/2 requests, 1 error (timeout) | 16.7 req/s | 0.1s"
    assert frames == [
        f"level 1 of 2 | a | x | concurrency 1 {empty} | 0/2 requests, 0 errors | 0.0s | run 0/4 requests",
        f"{one} | run 2/4 requests | ETA 0.1s",
        f"{one} | run 2/4 requests | ETA 0.1s\n",
        f"level 2 of 2 | a | y | concurrency 1 {empty} | 0/2 requests, 0 errors | 0.0s | run 2/4 requests | ETA 0.1s",
        f"{two} | run 4/4 requests | ETA 0.0s",
        f"{two} | run 4/4 requests\n",
    ]


def _read_pty(fd: int, proc: subprocess.Popen[bytes], timeout_s: float) -> Iterator[bytes]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: every writer of the terminal has closed it
            return
        if not chunk:
            return
        yield chunk
    proc.kill()
    pytest.fail("the run did not end in time")


@pytest.mark.slow
def test_cli_on_a_terminal_redraws_one_line_within_its_width_and_shows_an_eta(tmp_path: Path) -> None:
    import fcntl
    import termios

    cfg = write_config(
        tmp_path / "c.yml",
        config_dict(
            [
                sim_experiment("a", concurrency_levels=[1, 2], payloads=["short", "en_500-1000"]),
                sim_experiment("b", concurrency_levels=[2], payloads=["short"]),
            ]
        ),
    )
    columns = 100
    results = tmp_path / "results"
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "collector", "run", "--no-build", "--config", str(cfg), "--results-dir", str(results)],
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=slave,
    )
    os.close(slave)
    try:
        out = b"".join(_read_pty(master, proc, 300)).decode()
    finally:
        os.close(master)
    assert proc.wait(timeout=60) == 0, out[-3000:]
    # Each level: drawn at its start, maybe redrawn, and its last frame ends the line; nothing else breaks it.
    frames = [(f.split("\r\n")[0], "\r\n" in f) for f in re.split(r"\r\x1b\[2K", out)[1:]]
    levels = [(line, ended) for line, ended in frames if line.startswith("level ")]
    assert all(len(line) <= columns - 1 for line, _ in levels)
    finished = [line for line, ended in levels if ended]
    assert [re.match(r"level (\d+) of (\d+) ", line).groups() for line in finished] == [  # type: ignore[union-attr]
        (str(i), "5") for i in range(1, 6)
    ]
    for i in range(1, 6):
        own = [ended for line, ended in levels if line.startswith(f"level {i} of 5 ")]
        assert len(own) >= 2 and own[-1] and not any(own[:-1])  # redrawn in place, then kept as a line
    assert any("ETA" in line for line, ended in levels if not ended)
    assert all("ETA" in line for line in finished[:-1])
