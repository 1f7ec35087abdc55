"""Host shards: `collector run --shard i/n --run-id ID` on n hosts sends shard i of n of every level, all landing into
one run of one shared results location: a shared file system (NFS, EFS, or one host's disk for a local test) or an
S3 prefix.

No coordinator: the collectors meet on the run's shard board (collector/shard_boards.py: files or objects in the
run's `shards/`; collector/landing.py names the run's other files). Each one claims its shard exclusively (a second
collector given the same run id and shard is refused), then every level starts at a barrier: each shard records its
wall-clock arrival, waits until all n have arrived, and starts at the latest arrival plus the board's lead, so every
host computes the same instant. The run's offsets count from the start barrier's instant on every host
(RunClock.at_wall), so the hosts' offsets agree up to their wall-clock skew, which NTP bounds (each shard records
its kernel's max error; the skew between two hosts is at most the sum). While waiting, a shard watches the others'
manifests: one that ended (failed, interrupted) or whose collector is gone (its pid on this host, else no heartbeat
for STALE_AFTER_S) stops this one with one line naming it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from collector.clock import RunClock, iso_utc, wall_and_perf_ns, wall_clock_sync
from collector.config import NAME_RE, NAME_RULE, Config
from collector.errors import UserError
from collector.landing import collector_alive
from collector.load_models import SweepLoad
from collector.shard_boards import ShardBoard, ShardBoardError

SHARD_RE = re.compile(r"^\s*([0-9]+)\s*/\s*([0-9]+)\s*$")
MAX_SHARDS = 1024
CHECK_PEERS_S = 1.0
STALE_AFTER_S = 30.0  # six missed heartbeats (landing.HEARTBEAT_INTERVAL_S)
JOIN_WAIT_ENV = "TOKENBENCH_SHARD_JOIN_WAIT_S"
JOIN_WAIT_S = 600.0  # how long the first shard waits for the others to start
FINAL_WAIT_S = 60.0  # how long shard 1 waits, once done, for the others' final status


class ShardError(UserError):
    """Shards of a run disagree, or one of them stopped."""


@dataclass(frozen=True)
class HostShard:
    """Shard `index` (1-based) of `count` collectors sharing one run."""

    index: int
    count: int

    @property
    def label(self) -> str:
        return f"{self.index}/{self.count}"

    @property
    def part(self) -> str:
        """Its landing part: its files are requests.s<i>*.jsonl (collector/landing.py)."""
        return f"s{self.index}"

    @property
    def is_leader(self) -> bool:
        """Shard 1 writes the run's manifest, and alone samples telemetry and the server's metrics."""
        return self.index == 1


def parse_shard(text: str) -> HostShard:
    """`--shard i/n`: shard i of n, 1 <= i <= n."""
    match = SHARD_RE.match(text)
    if not match:
        raise UserError(f"--shard {text!r}: give it as i/n, e.g. --shard 1/2 on one host and --shard 2/2 on another")
    index, count = int(match[1]), int(match[2])
    if not 1 <= count <= MAX_SHARDS:
        raise UserError(f"--shard {text}: n must be between 1 and {MAX_SHARDS}")
    if not 1 <= index <= count:
        raise UserError(f"--shard {text}: i must be between 1 and n ({count})")
    return HostShard(index, count)


def check_run_id(run_id: str | None) -> None:
    """A run id given on the command line names a folder: the same safe names as experiments."""
    if run_id is not None and (not NAME_RE.match(run_id) or run_id.startswith("_")):
        raise UserError(f"--run-id {run_id!r}: {NAME_RULE}, and not starting with '_'")


def check_shardable(config: Config, shard: HostShard, run_id: str | None) -> None:
    """What `--shard` needs: a run id every shard is given, endpoints every shard reaches (not one each collector
    starts), and levels known before the run (a sweep's rates come from what one collector measured)."""
    if run_id is None:
        raise UserError(
            f"--shard {shard.label}: give every shard the same --run-id (e.g. --run-id "
            f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}-sharded), so that they land into one run"
        )
    for i, exp in enumerate(config.experiments):
        where = f"experiments[{i}] ({exp.name})"
        if exp.endpoint.type in ("simulated", "container", "process"):
            raise UserError(
                f"--shard: {where} starts its own endpoint (type {exp.endpoint.type}) on each collector's host, so "
                "the shards would not share one; point every shard at one endpoint (type openai with its base_url; "
                "`python -m collector sim` serves the simulator)"
            )
        if isinstance(exp.load, SweepLoad):
            raise UserError(
                f"--shard: {where} has load model sweep, whose rates come from the levels one collector measured; "
                "give the rates (load model rate) or run it unsharded"
            )


def config_digest(config_json: Any) -> str:
    """What the shards of one run must agree on: the resolved config (secrets redacted)."""
    return hashlib.sha256(json.dumps(config_json, sort_keys=True, default=str).encode()).hexdigest()


def _seconds_since(iso: object) -> float | None:
    try:
        then = datetime.fromisoformat(str(iso))
    except ValueError:
        return None
    return (datetime.now(UTC) - then).total_seconds()


class ShardGroup:
    """This collector's place among the shards of one run: its claim, the barriers, the others' state."""

    def __init__(self, board: ShardBoard, shard: HostShard, digest: str) -> None:
        self.board = board
        self.run_id = board.run_id
        self.shard = shard
        self.digest = digest
        self.late_ns: list[int] = []  # per barrier: how late this shard saw it complete (its start skew)
        self.epoch_wall_ns: int | None = None
        self.join_wait_s = JOIN_WAIT_S

    # -- joining --
    def claim(self) -> None:
        """Take this shard of the run, exclusively: a second collector given the same run id and shard is refused,
        and so is a run id an unsharded run already has."""
        try:
            self.board.join()
        except ShardBoardError as exc:
            raise ShardError(str(exc)) from None
        record = {
            "shard": self.shard.label,
            "count": self.shard.count,
            "hostname": socket.gethostname(),
            "pid": os.getpid(),
            "config_sha256": self.digest,
            "claimed_at": iso_utc(time.time_ns()),
        }
        holder = self.board.claim(self.shard.index, record)
        if holder is not None:
            raise ShardError(
                f"run {self.run_id}: shard {self.shard.label} is already taken by pid {holder.get('pid')} on "
                f"{holder.get('hostname')}; give each collector its own --shard"
            )

    def _check_claims(self) -> None:
        """Every claim so far names the same number of shards and the same config as this one."""
        for claim in self.board.claims():
            if claim.get("count") != self.shard.count:
                raise ShardError(
                    f"run {self.run_id}: shard {claim.get('shard')} was started as one of {claim.get('count')} "
                    f"shards, this one as one of {self.shard.count}"
                )
            if claim.get("config_sha256") != self.digest:
                raise ShardError(
                    f"run {self.run_id}: shard {claim.get('shard')} runs a different config than shard "
                    f"{self.shard.label} (every shard needs the same config file, after secrets are redacted)"
                )

    async def start(self, stop: asyncio.Event, say: Any = print) -> RunClock | None:
        """Wait until every shard has joined and reached the start barrier; the run clock all of them share
        (offsets from the barrier's instant), or None when this collector was stopped meanwhile."""
        self.join_wait_s = float(os.environ.get(JOIN_WAIT_ENV, JOIN_WAIT_S))
        instant = await self._barrier("start", stop, join_wait_s=self.join_wait_s, say=say)
        if instant is None:
            return None
        self.epoch_wall_ns = instant
        return RunClock.at_wall(instant)

    async def barrier(self, name: str, stop: asyncio.Event) -> int | None:
        """Meet the other shards at barrier `name`; the perf-counter instant at which all of them start (the same
        wall-clock instant on every host), or None when this collector was stopped meanwhile."""
        instant = await self._barrier(name, stop)
        if instant is None:
            return None
        wall, perf = wall_and_perf_ns()
        return perf + (instant - wall)

    async def _barrier(
        self, name: str, stop: asyncio.Event, join_wait_s: float | None = None, say: Any = None
    ) -> int | None:
        self.board.arrive(name, self.shard.index, time.time_ns())
        count = self.shard.count
        deadline = time.monotonic() + join_wait_s if join_wait_s is not None else None
        next_check = time.monotonic() + CHECK_PEERS_S
        told = False
        while not stop.is_set():
            times = {i: t for i, t in (await asyncio.to_thread(self.board.arrivals, name)).items() if i <= count}
            if len(times) == count:
                if join_wait_s is not None:
                    await asyncio.to_thread(self._check_claims)
                instant = max(times.values()) + round(self.board.lead_s * 1e9)
                self.late_ns.append(max(time.time_ns() - instant, 0))
                return instant
            now = time.monotonic()
            if now >= next_check:
                next_check = now + CHECK_PEERS_S
                missing = [i for i in range(1, count + 1) if i not in times]
                if join_wait_s is not None:
                    await asyncio.to_thread(self._check_claims)
                    if say is not None and not told:
                        waiting = ", ".join(f"{i}/{count}" for i in missing)
                        say(f"run {self.run_id}: shard {self.shard.label} waiting for shard(s) {waiting} to join")
                        told = True
                await asyncio.to_thread(self._check_peers, missing, deadline)
            await asyncio.sleep(self.board.poll_s)
        return None

    def _check_peers(self, missing: list[int], join_deadline: float | None) -> None:
        """Raise ShardError when a shard this one waits for has ended, died, or (at the start) never came."""
        for index in missing:
            manifest = self.board.manifest(f"s{index}")
            label = f"shard {index}/{self.shard.count}"
            if manifest is None:
                if join_deadline is not None and time.monotonic() > join_deadline:
                    raise ShardError(
                        f"run {self.run_id}: {label} did not join within {self.join_wait_s:g} s "
                        f"(start it with the same --run-id, or raise ${JOIN_WAIT_ENV})"
                    )
                continue
            status = manifest.get("status")
            host, pid = manifest.get("hostname"), manifest.get("pid")
            if status != "running":
                reason = manifest.get("error_message") or "no error recorded"
                raise ShardError(f"{label} (pid {pid} on {host}) ended {status}: {reason}")
            alive = collector_alive(manifest)
            if alive is False:
                raise ShardError(f"{label} (pid {pid} on {host}) is gone without finishing (killed?)")
            quiet = _seconds_since(manifest.get("heartbeat_at"))
            if alive is None and quiet is not None and quiet > STALE_AFTER_S:
                raise ShardError(f"{label} (pid {pid} on {host}) has written no heartbeat for {quiet:.0f} s")

    # -- the end --
    def record(self, status: str, error: str | None, processes: list[dict[str, Any]]) -> dict[str, Any]:
        """This shard's entry of the run manifest's shards_json."""
        return {
            "shard": self.shard.label,
            "hostname": socket.gethostname(),
            "pid": os.getpid(),
            "status": status,
            "error_message": error,
            "clock": {
                "epoch_wall_ns": self.epoch_wall_ns,
                "epoch_at": iso_utc(self.epoch_wall_ns) if self.epoch_wall_ns is not None else None,
                "base_perf_ns": None,
                "wall_clock_sync": wall_clock_sync(),
                "barrier_late_max_ns": max(self.late_ns, default=None),
                "barriers": len(self.late_ns),
            },
            "processes": processes,
        }

    def gather(self, stop_waiting: float = FINAL_WAIT_S) -> list[dict[str, Any]]:
        """Shard 1, once done: the other shards' final manifests (waiting up to `stop_waiting` s for those still
        running and alive), as (label, manifest or None)."""
        deadline = time.monotonic() + stop_waiting
        while True:
            manifests = {i: self.board.manifest(f"s{i}") for i in range(2, self.shard.count + 1)}
            running = [
                i
                for i, m in manifests.items()
                if m is not None and m.get("status") == "running" and collector_alive(m) is not False
            ]
            if not running or time.monotonic() > deadline:
                return [{"index": i, "manifest": m} for i, m in manifests.items()]
            time.sleep(0.2)


def fold(own_status: str, own_error: str | None, peers: list[dict[str, Any]], count: int) -> tuple[str, str | None]:
    """The run's status from shard 1's own and the other shards' final manifests: shard 1's when it did not
    complete (it names the cause), else the first other shard's that did not complete."""
    if own_status != "completed":
        return own_status, own_error
    for peer in peers:
        manifest = peer["manifest"]
        label = f"shard {peer['index']}/{count}"
        if manifest is None:
            return "failed", f"{label} never started"
        status = manifest.get("status")
        if status == "running":
            return "failed", f"{label} was still running when shard 1/{count} finished"
        if status != "completed":
            return ("failed" if status == "lost" else status), f"{label} {status}: {manifest.get('error_message')}"
    return own_status, own_error


def with_clock_offsets(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each shard's clock offset to shard 1's, where both ran on one host (CLOCK_MONOTONIC is shared there, so
    the difference of their run-start readings is exactly how far apart their offsets are); across hosts it is
    bounded by the hosts' NTP max errors instead, recorded in each shard's clock."""
    leader = next((r for r in records if str(r.get("shard", "")).startswith("1/")), None)
    for record in records:
        clock = record.get("clock") or {}
        same_host = leader is not None and record.get("hostname") == leader.get("hostname")
        lead_base = (leader or {}).get("clock", {}).get("base_perf_ns")
        if same_host and clock.get("base_perf_ns") is not None and lead_base is not None:
            clock["offset_to_shard_1_ns"] = clock["base_perf_ns"] - lead_base
        else:
            clock["offset_to_shard_1_ns"] = None
    return records
