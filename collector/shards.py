"""Client processes: one level's load split across several processes of the collector's host
(experiments[].client_processes), each with its own event loop and aiohttp session, sending its share of every
level (collector/shares.py) and landing its rows in its own files of the run (collector/landing.py).

The collector's own process only coordinates, over one pipe per process: it hands each level out, starts the
processes together (every one reports ready, then all are given one start instant on the host's monotonic
clock, which Linux shares across processes), relays the warm-up barrier (the measured phase starts only when
every process has finished its warm-up), relays Ctrl-C as stop or cancel, merges the requests' progress as they
finish, and fails the run with one line when a process dies. Rows land from the processes themselves: a row never
crosses a pipe (benchmarks/multiprocess.py measured that route at more CPU per row than a file per process).
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from collector.clock import RunClock, perf_counter_is_system_wide
from collector.errors import UserError
from collector.host_shards import ShardGroup
from collector.landing import Landing, RawStore, part_name, raw_store
from collector.loadgen import Level, LevelProgress, Target, client_session, run_level, sleep_until
from collector.loop_lag import sample_loop_lag
from collector.payloads import Prompt
from collector.schema import RequestRow
from collector.shares import Share

START_LEAD_NS = 20_000_000  # the shared start instant, this far after the last process reported ready
EVENTS_INTERVAL_S = 0.1  # how often a process reports the requests it finished (the live progress line)
PINGS = 5  # clock comparisons per process at start; the one with the shortest round trip is kept
STOP_WAIT_S = 30.0  # after a cancel, how long the processes get to land their in-flight requests' rows
START_TIMEOUT_S = 60.0  # a process that has not answered by then (imports, session) is reported

Event = tuple[int, bool, str | None, int, int | None, int | None]  # LevelProgress.record's arguments


class ClientProcessError(UserError):
    """A client process died, could not start, or could not land its rows."""


@dataclass(frozen=True)
class ProcessSetup:
    """What one client process needs for a whole experiment, pickled to it once."""

    store: str  # where it lands its rows: RawStore.spec (a folder, or an S3 URL)
    run_id: str
    part: str  # its landing part (collector/landing.py part_name)
    target: Target  # shard_index and shard_count set to its share
    prompts: dict[str, list[Prompt]]  # by bucket
    base_perf_ns: int  # the run clock's start, read in the parent
    seq_start: int  # its request numbering: seq_start, seq_start + seq_step, ... (RunClock)
    seq_step: int
    id_prefix: str
    hostname: str
    session_size: int  # its largest share of a level's concurrency


@dataclass(frozen=True)
class LevelOrder:
    """A level as handed to a client process: the Level less its prompts (the process holds them)."""

    payload_file: str
    concurrency: int
    requests: int
    warmup: int
    target_rate_rps: float | None
    send_offsets_s: Sequence[float]
    repeat_index: int

    @classmethod
    def of(cls, level: Level) -> LevelOrder:
        return cls(
            level.payload_file,
            level.concurrency,
            level.requests,
            level.warmup,
            level.target_rate_rps,
            list(level.send_offsets_s),
            level.repeat_index,
        )


def _event(row: RequestRow) -> Event:
    error_type = (row.error_type or "error") if row.status != "success" else None
    return (row.sequence_in_level, row.is_warmup, error_type, row.e2e_ns, row.start_offset_ns, row.first_content_ns)


# -- the client process ---------------------------------------------------------------------------------------


def process_main(conn: multiprocessing.connection.Connection, setup: ProcessSetup) -> None:
    """Entry point of a client process: serve the parent's orders until it says exit or goes away."""
    # Ctrl-C reaches the whole process group: the parent decides (stop, then cancel) and tells each process.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(BrokenPipeError, EOFError, ConnectionResetError):
        asyncio.run(_serve(conn, setup))


async def _serve(conn: multiprocessing.connection.Connection, setup: ProcessSetup) -> None:
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()

    def readable() -> None:
        try:
            while conn.poll():
                inbox.put_nowait(conn.recv())
        except (EOFError, OSError):  # the parent is gone: stop everything
            loop.remove_reader(conn.fileno())
            inbox.put_nowait(("gone",))

    clock = RunClock(setup.base_perf_ns, setup.seq_start, setup.seq_step, setup.id_prefix)
    landing = raw_store(setup.store).open_run(setup.run_id, setup.part, join=True, manifest=None)
    landing.start()
    loop.add_reader(conn.fileno(), readable)
    try:
        async with client_session(setup.session_size) as session:
            conn.send(("started", os.getpid()))
            while True:
                message = await inbox.get()
                if message[0] == "ping":
                    conn.send(("pong", time.perf_counter_ns()))
                elif message[0] == "level":
                    if not await _level(conn, inbox, setup, session, clock, landing, message[1]):
                        return
                elif message[0] in ("exit", "gone"):
                    return
    finally:
        loop.remove_reader(conn.fileno())
        landing.close()


async def _level(
    conn: multiprocessing.connection.Connection,
    inbox: asyncio.Queue[tuple[Any, ...]],
    setup: ProcessSetup,
    session: Any,
    clock: RunClock,
    landing: Landing,
    order: LevelOrder,
) -> bool:
    """Send this process's share of one level; False when the parent went away meanwhile."""
    target = setup.target
    level = Level(
        payload_file=order.payload_file,
        prompts=setup.prompts[order.payload_file],
        concurrency=order.concurrency,
        requests=order.requests,
        warmup=order.warmup,
        target_rate_rps=order.target_rate_rps,
        send_offsets_s=order.send_offsets_s,
        repeat_index=order.repeat_index,
    )
    share = level.share(target.shard_index, target.shard_count)
    stop = asyncio.Event()
    events: list[Event] = []
    go: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
    gone = False

    def land(row: RequestRow) -> None:
        landing.append("requests", row)
        events.append(_event(row))
        if landing.failed.is_set():
            stop.set()  # rows can no longer be written: send no more requests

    def report() -> None:
        if events:
            conn.send(("events", events[:]))
            events.clear()

    async def reporting() -> None:
        while True:
            await asyncio.sleep(EVENTS_INTERVAL_S)
            report()

    async def after_warmup() -> int | None:
        report()
        conn.send(("warm",))
        return await go  # the measured phase's start instant, once every process is warm (None: stopped)

    conn.send(("ready",))
    start = await inbox.get()
    if start[0] != "start":  # stopped (or gone) before the level started
        conn.send(("done", None, clock.next_free))
        return start[0] != "gone"
    task = asyncio.ensure_future(_send(setup, session, level, clock, land, stop, after_warmup, share, start[1]))
    reporter = asyncio.ensure_future(reporting())
    lag = asyncio.ensure_future(
        sample_loop_lag(
            setup.run_id,
            target.experiment_name,
            setup.hostname,
            setup.base_perf_ns,
            lambda row: landing.append("telemetry_samples", row),
        )
    )
    try:
        while not task.done():
            getter = asyncio.ensure_future(inbox.get())
            await asyncio.wait({task, getter}, return_when=asyncio.FIRST_COMPLETED)
            if not getter.done():
                getter.cancel()
                continue
            kind = getter.result()
            if kind[0] == "go" and not go.done():
                go.set_result(kind[1])
            elif kind[0] == "stop":
                stop.set()
                if not go.done():
                    go.set_result(None)
            elif kind[0] in ("cancel", "gone", "exit"):  # exit: the parent is closing, the level abandoned
                gone = kind[0] != "cancel"
                task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    finally:
        reporter.cancel()
        lag.cancel()
    if gone:
        return False
    report()
    landing.flush_with_retry()  # the level's rows are on disk before the parent hears it is done
    conn.send(("done", landing.error, clock.next_free))
    return True


async def _send(
    setup: ProcessSetup,
    session: Any,
    level: Level,
    clock: RunClock,
    land: Callable[[RequestRow], None],
    stop: asyncio.Event,
    after_warmup: Callable[[], Awaitable[int | None]],
    share: Share,
    start_ns: int,
) -> None:
    await sleep_until(start_ns, stop)
    if not stop.is_set():
        await run_level(session, setup.target, level, clock, land, stop, None, after_warmup, share)


# -- the parent's side ----------------------------------------------------------------------------------------


@dataclass
class _Process:
    index: int  # 0-based among this host's processes
    process: multiprocessing.process.BaseProcess
    conn: multiprocessing.connection.Connection
    pid: int | None = None
    clock_offset_ns: int | None = None
    clock_bound_ns: int | None = None


def _exit_text(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class ClientPool:
    """This host's client processes for one experiment (used as `async with`): starts them, runs levels on
    them, and stops them."""

    def __init__(
        self,
        store: RawStore,
        run_id: str,
        target: Target,
        prompts: dict[str, list[Prompt]],
        clock: RunClock,
        processes: int,
        first_shard: int,
        shard_count: int,
        host_part: str,
        session_size: int,
    ) -> None:
        """`processes` client processes, holding shards first_shard ... first_shard + processes - 1 of
        `shard_count` (more than `processes` when other hosts share the run); `host_part` is this host
        shard's landing part ('' unsharded, 's2')."""
        self.hostname = socket.gethostname()
        self.where = store.run_location(run_id)
        self.setups = [
            ProcessSetup(
                store=store.spec,
                run_id=run_id,
                part=part_name(host_part, f"w{k}"),
                target=replace(target, shard_index=first_shard + k, shard_count=shard_count),
                prompts=prompts,
                base_perf_ns=clock.base_perf_ns,
                seq_start=clock.next_free + k,
                seq_step=processes,
                id_prefix=clock.id_prefix,
                hostname=self.hostname,
                session_size=session_size,
            )
            for k in range(processes)
        ]
        self.procs: list[_Process] = []
        self.next_seq = clock.next_free  # past every sequence number its processes used, once they are done
        self.inbox: asyncio.Queue[tuple[int, tuple[Any, ...]]] = asyncio.Queue()
        self.dead: dict[int, str] = {}

    # -- start and stop --
    async def __aenter__(self) -> ClientPool:
        try:
            await self._start()
        except BaseException:
            await self._close()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._close()

    async def _start(self) -> None:
        ctx = multiprocessing.get_context("spawn")  # never fork a process that runs threads and an event loop
        loop = asyncio.get_running_loop()
        for k, setup in enumerate(self.setups):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=process_main, args=(child, setup), name=f"tokenbench-client-{k}", daemon=True)
            await asyncio.to_thread(proc.start)
            child.close()
            entry = _Process(k, proc, parent)
            self.procs.append(entry)
            loop.add_reader(parent.fileno(), self._readable, entry)
            loop.add_reader(proc.sentinel, self._exited, entry)
        started = await self._gather("started", START_TIMEOUT_S)
        for entry in self.procs:
            entry.pid = started[entry.index][1]
        for entry in self.procs:
            await self._compare_clocks(entry)

    def _readable(self, entry: _Process) -> None:
        try:
            while entry.conn.poll():
                self.inbox.put_nowait((entry.index, entry.conn.recv()))
        except (EOFError, OSError):
            asyncio.get_running_loop().remove_reader(entry.conn.fileno())

    def _exited(self, entry: _Process) -> None:
        loop = asyncio.get_running_loop()
        loop.remove_reader(entry.process.sentinel)
        self._readable(entry)  # whatever it sent before it ended comes first
        entry.process.join(1.0)  # its pipes close as it exits, a moment before it can be reaped
        self.inbox.put_nowait((entry.index, ("exited", entry.process.exitcode)))

    def _describe(self, entry: _Process) -> str:
        return f"client process {entry.index + 1} of {len(self.procs)} (pid {entry.pid or entry.process.pid})"

    def _died(self, entry: _Process, code: int | None) -> str:
        line = f"{self._describe(entry)} died ({_exit_text(code)}); the rows it had landed are kept in {self.where}"
        self.dead[entry.index] = line
        return line

    async def _gather(self, kind: str, timeout_s: float, only: _Process | None = None) -> dict[int, tuple[Any, ...]]:
        """Wait for `kind` from every process (or `only` one); used at start, when nothing else is in flight."""
        deadline = time.monotonic() + timeout_s
        waiting = {e.index for e in self.procs} if only is None else {only.index}
        got: dict[int, tuple[Any, ...]] = {}
        while waiting:
            try:
                index, message = await asyncio.wait_for(self.inbox.get(), max(deadline - time.monotonic(), 0.01))
            except TimeoutError:
                late = self.procs[min(waiting)]
                raise ClientProcessError(f"{self._describe(late)} did not answer within {timeout_s:g} s") from None
            if message[0] == "exited":
                raise ClientProcessError(self._died(self.procs[index], message[1]))
            if index in waiting and message[0] == kind:
                waiting.discard(index)
                got[index] = message
        return got

    async def _compare_clocks(self, entry: _Process) -> None:
        """The process's perf counter against ours: its reading minus the midpoint of our send and receipt,
        from the ping with the shortest round trip (bound: half that round trip). Linux's CLOCK_MONOTONIC is one
        clock for every process, so this checks the shared clock rather than correcting it."""
        best: tuple[int, int] | None = None
        for _ in range(PINGS):
            sent = time.perf_counter_ns()
            entry.conn.send(("ping",))
            message = (await self._gather("pong", START_TIMEOUT_S, entry))[entry.index]
            received = time.perf_counter_ns()
            offset, bound = message[1] - (sent + received) // 2, (received - sent + 1) // 2
            if best is None or bound < best[1]:
                best = (offset, bound)
        assert best is not None
        entry.clock_offset_ns, entry.clock_bound_ns = best

    def records(self) -> list[dict[str, Any]]:
        """Per process, for the run manifest's shards_json."""
        return [
            {
                "shard_index": self.setups[e.index].target.shard_index,
                "pid": e.pid,
                "clock_offset_ns": e.clock_offset_ns,
                "clock_offset_bound_ns": e.clock_bound_ns,
                "clock_shared": perf_counter_is_system_wide(),
            }
            for e in self.procs
        ]

    def check_clocks(self) -> str | None:
        """A line when a process's measured clock offset exceeds its bound on a clock said to be shared."""
        for entry in self.procs:
            if entry.clock_offset_ns is None or entry.clock_bound_ns is None or not perf_counter_is_system_wide():
                continue
            if abs(entry.clock_offset_ns) > entry.clock_bound_ns:
                return (
                    f"{self._describe(entry)}: its perf counter is {entry.clock_offset_ns} ns off this process's "
                    f"(more than the {entry.clock_bound_ns} ns the measurement allows)"
                )
        return None

    async def _close(self) -> None:
        loop = asyncio.get_running_loop()
        for entry in self.procs:
            with contextlib.suppress(OSError, ValueError):
                entry.conn.send(("exit",))
        deadline = time.monotonic() + STOP_WAIT_S
        for entry in self.procs:
            await asyncio.to_thread(entry.process.join, max(deadline - time.monotonic(), 0.1))
            if entry.process.exitcode is None:
                entry.process.kill()
                await asyncio.to_thread(entry.process.join, 5)
            with contextlib.suppress(OSError, ValueError):
                loop.remove_reader(entry.conn.fileno())
            with contextlib.suppress(OSError, ValueError):
                loop.remove_reader(entry.process.sentinel)
            entry.conn.close()

    # -- one level --
    async def run_level(
        self,
        level: Level,
        stop: asyncio.Event,
        on_progress: Callable[[LevelProgress], None] | None,
        start_at: Callable[[], Awaitable[int | None]],
        after_warmup: Callable[[], Awaitable[int | None]],
    ) -> LevelProgress:
        """Send one level from every process; return the merged progress of all their requests.

        `start_at` is awaited once every process is ready (a host shard's barrier with the other hosts) and gives
        the shared start instant (perf counter; None: stopped meanwhile); `after_warmup` once every process has
        finished its warm-up, and gives the measured phase's.
        Raises ClientProcessError when a process dies or cannot land rows (the others are stopped first).
        """
        if self.dead:
            raise ClientProcessError(next(iter(self.dead.values())))
        progress = LevelProgress()
        order = LevelOrder.of(level)
        pending = {e.index for e in self.procs}
        ready: set[int] = set()
        warm: set[int] = set()
        failure: str | None = None
        stopped = False
        started = False

        def send_all(message: tuple[Any, ...]) -> None:
            for entry in self.procs:
                if entry.index not in self.dead:
                    with contextlib.suppress(OSError, ValueError):
                        entry.conn.send(message)

        def stop_all() -> None:
            nonlocal stopped
            if not stopped:
                stopped = True
                send_all(("stop",) if started else ("start-cancelled",))

        send_all(("level", order))
        stop_watch = asyncio.ensure_future(stop.wait())
        getter = asyncio.ensure_future(self.inbox.get())
        try:
            while pending:
                waits: set[asyncio.Future[Any]] = {getter} if stopped else {getter, stop_watch}
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                if not getter.done():  # the run was stopped (Ctrl-C): in-flight requests finish, no more are sent
                    stop_all()
                    continue
                index, message = getter.result()
                getter = asyncio.ensure_future(self.inbox.get())
                kind = message[0]
                if kind == "events":
                    for event in message[1]:
                        progress.record(*event)
                        if on_progress is not None:
                            on_progress(progress)
                elif kind == "ready":
                    ready.add(index)
                    if len(ready) == len(self.procs) and not stopped:
                        start_ns = await start_at()
                        if start_ns is None or stop.is_set():
                            stop_all()
                        else:
                            started = True
                            send_all(("start", start_ns))
                elif kind == "warm":
                    warm.add(index)
                    if warm == pending and not stopped:
                        measured_ns = await after_warmup()
                        if measured_ns is None or stop.is_set():
                            stop_all()
                        else:
                            send_all(("go", measured_ns))
                elif kind == "done":
                    pending.discard(index)
                    self.next_seq = max(self.next_seq, message[2])
                    if message[1] and failure is None:
                        failure = f"{self._describe(self.procs[index])}: {message[1]}"
                        stop_all()
                elif kind == "exited":
                    pending.discard(index)
                    line = self._died(self.procs[index], message[1])
                    failure = failure or line
                    stop_all()
        except asyncio.CancelledError:
            # A second Ctrl-C: every process cancels its requests, landing each as a `cancelled` row.
            if getter.done() and not getter.cancelled():  # a message taken but not handled yet
                index, message = getter.result()
                if message[0] in ("done", "exited"):
                    pending.discard(index)
            getter.cancel()
            send_all(("cancel",))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drain(pending), STOP_WAIT_S)
            raise
        finally:
            stop_watch.cancel()
            getter.cancel()
        if failure is not None:
            raise ClientProcessError(failure)
        return progress

    async def _drain(self, pending: set[int]) -> None:
        while pending:
            index, message = await self.inbox.get()
            if message[0] in ("done", "exited"):
                pending.discard(index)


def session_size(levels: Sequence[int], processes: int) -> int:
    """The largest share of any level's concurrency that one of `processes` client processes gets."""
    return max((-(-c // processes) for c in levels), default=1)


# -- what the sweep calls -------------------------------------------------------------------------------------

Sender = Callable[[Level, int, Callable[[], Awaitable[None]]], Awaitable[LevelProgress]]  # level, index, scrape


@dataclass
class SendContext:
    """What sending a level needs from the sweep (collector/runner.py Sweep)."""

    session: Any  # the collector process's own aiohttp session (unused when client processes send)
    target: Target
    clock: RunClock
    land: Callable[[RequestRow], None]
    stop: asyncio.Event
    on_progress: Callable[[LevelProgress], None]
    prompts: dict[str, list[Prompt]]
    store: RawStore  # where the run lands (its client processes land there too)
    group: ShardGroup | None  # this collector's host shard, when several hosts share the run
    records: list[dict[str, Any]]  # client processes' records for the manifest, appended per experiment


@contextlib.asynccontextmanager
async def level_sender(ctx: SendContext, processes: int, concurrencies: Sequence[int]) -> AsyncIterator[Sender]:
    """A coroutine function sending one level (level, its index in the plan, the server scrape at its measured
    window's start): from this process as before, or from `processes` client processes, or as this host's share
    of the run's shards; the pool of client processes lives as long as the context (one experiment)."""
    group = ctx.group
    hosts, host = (group.shard.count, group.shard.index) if group is not None else (1, 1)
    shard_count, first = hosts * processes, (host - 1) * processes
    target = replace(ctx.target, shard_index=first, shard_count=shard_count)

    async def start_at(index: int) -> int | None:
        if group is None:
            return time.perf_counter_ns() + START_LEAD_NS
        return await group.barrier(f"{index}.start", ctx.stop)

    def measured_at(index: int, scrape: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[int | None]]:
        async def after_warmup() -> int | None:
            if group is None:
                await scrape()
                return time.perf_counter_ns() + START_LEAD_NS
            instant = await group.barrier(f"{index}.measured", ctx.stop)
            if instant is not None:
                await scrape()  # every shard's warm-up has ended: nothing of the level is in flight
            return instant

        return after_warmup

    async def level_ended(index: int) -> None:
        """Host shards: wait for every shard to end the level (the server's measured_end scrape follows)."""
        if group is not None and not ctx.stop.is_set():
            await group.barrier(f"{index}.end", ctx.stop)

    if processes == 1 and group is None:

        async def send_here(level: Level, index: int, scrape: Callable[[], Awaitable[None]]) -> LevelProgress:
            return await run_level(
                ctx.session, target, level, ctx.clock, ctx.land, ctx.stop, ctx.on_progress, scrape_only(scrape)
            )

        yield send_here
        return

    if processes == 1:  # one host shard, sending from this process

        async def send_share(level: Level, index: int, scrape: Callable[[], Awaitable[None]]) -> LevelProgress:
            start = await start_at(index)
            if start is None:
                return LevelProgress()
            await sleep_until(start, ctx.stop)
            done = await run_level(
                ctx.session,
                target,
                level,
                ctx.clock,
                ctx.land,
                ctx.stop,
                ctx.on_progress,
                measured_at(index, scrape),
                level.share(first, shard_count),
            )
            await level_ended(index)
            return done

        yield send_share
        return

    pool = ClientPool(
        ctx.store,
        target.run_id,
        target,
        ctx.prompts,
        ctx.clock,
        processes,
        first,
        shard_count,
        group.shard.part if group is not None else "",
        session_size(concurrencies, shard_count),
    )
    async with pool:
        ctx.records.extend({"experiment": target.experiment_name, **r} for r in pool.records())
        mismatch = pool.check_clocks()
        if mismatch is not None:
            raise ClientProcessError(mismatch)

        async def send_pooled(level: Level, index: int, scrape: Callable[[], Awaitable[None]]) -> LevelProgress:
            try:
                done = await pool.run_level(
                    level, ctx.stop, ctx.on_progress, lambda: start_at(index), measured_at(index, scrape)
                )
            finally:
                ctx.clock.skip_to(pool.next_seq)
            await level_ended(index)
            return done

        yield send_pooled


def scrape_only(scrape: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[int | None]]:
    """run_level's after_warmup for an unsharded level: the scrape, and no shared start instant."""

    async def after_warmup() -> int | None:
        await scrape()
        return None

    return after_warmup
