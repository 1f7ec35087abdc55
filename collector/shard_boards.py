"""Where the host shards of one run meet (collector/host_shards.py): claims, barrier arrivals and each shard's
manifest, in the run's own place of the results location.

- On a local or shared folder (NFS, EFS): files in `raw/<run_id>/shards/`, a claim created exclusively (O_EXCL),
  an arrival written atomically (temp file, rename).
- On S3: objects under `raw/<run_id>/shards/`, a claim put only if absent (If-None-Match), an arrival carried in
  its key (`shards/<barrier>/<index>-<wall ns>`) so that one LIST reads every shard's (S3's listing is strongly
  consistent). Polls are slower than on a file system and the barrier's lead longer, to cover a request's
  round trip.
"""

from __future__ import annotations

import json
import os
import socket
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any

from collector.errors import UserError
from collector.landing import (
    MANIFEST_FILE,
    LocalStore,
    RawStore,
    json_object,
    raw_root,
    read_manifest,
    shard_manifest_file,
)

if TYPE_CHECKING:
    from collector.landing_s3 import S3Store

SHARDS_DIR = "shards"


class ShardBoardError(UserError):
    """The run cannot be joined as a sharded run (it exists unsharded)."""


class ShardBoard(ABC):
    """The shards' meeting place of one run."""

    run_id: str
    poll_s: float  # how often a waiting shard looks again
    lead_s: float  # every shard starts a barrier this long after the last one arrived

    @abstractmethod
    def join(self) -> None:
        """Make the run a sharded one, or join it as such; ShardBoardError when it exists unsharded."""

    @abstractmethod
    def claim(self, index: int, record: dict[str, Any]) -> dict[str, Any] | None:
        """Take shard `index` exclusively, leaving `record`; the holder's record when another has it."""

    @abstractmethod
    def claims(self) -> list[dict[str, Any]]:
        """Every claim readable so far (one being written is read at the next poll)."""

    @abstractmethod
    def arrive(self, barrier: str, index: int, wall_ns: int) -> None:
        """Record shard `index`'s arrival at `barrier`."""

    @abstractmethod
    def arrivals(self, barrier: str) -> dict[int, int]:
        """Shard index -> wall-clock arrival (ns) of every shard at `barrier` so far."""

    @abstractmethod
    def manifest(self, shard_part: str) -> dict[str, Any] | None:
        """Host shard `shard_part`'s ('s2') manifest as last written, or None."""


class FolderBoard(ShardBoard):
    """Files in `raw/<run_id>/shards/` of a local or shared folder."""

    poll_s = 0.005
    lead_s = 0.2  # longer than a poll and a scrape

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.run_id = run_dir.name
        self.dir = run_dir / SHARDS_DIR

    def join(self) -> None:
        if (self.run_dir / MANIFEST_FILE).exists() and not self.dir.exists():
            raise ShardBoardError(f"run {self.run_id} already exists and is not sharded; give a new --run-id")
        self.dir.mkdir(parents=True, exist_ok=True)

    def claim(self, index: int, record: dict[str, Any]) -> dict[str, Any] | None:
        path = self.dir / f"claim.{index}.json"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return self._read(path) or {}
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(record))
        return None

    @staticmethod
    def _read(path: Path) -> dict[str, Any] | None:
        try:
            text = path.read_text()
        except (OSError, ValueError):  # missing, or not UTF-8
            return None
        return json_object(text)

    def claims(self) -> list[dict[str, Any]]:
        return [c for path in sorted(self.dir.glob("claim.*.json")) if (c := self._read(path)) is not None]

    def arrive(self, barrier: str, index: int, wall_ns: int) -> None:
        path = self.dir / f"{barrier}.{index}"
        tmp = path.with_name(f".{path.name}.{socket.gethostname()}.{os.getpid()}.tmp")
        tmp.write_text(str(wall_ns))
        os.replace(tmp, path)

    def arrivals(self, barrier: str) -> dict[int, int]:
        out = {}
        for path in self.dir.glob(f"{barrier}.*"):
            index = path.name[len(barrier) + 1 :]
            try:
                out[int(index)] = int(path.read_text())
            except (OSError, ValueError):
                continue  # not a shard's arrival (another barrier's name starts alike), or gone
        return out

    def manifest(self, shard_part: str) -> dict[str, Any] | None:
        return read_manifest(self.run_dir, shard_manifest_file(shard_part))


class S3Board(ShardBoard):
    """Objects under `raw/<run_id>/shards/` of an S3 prefix."""

    poll_s = 0.05
    lead_s = 1.0  # a few S3 round trips (each tens of ms) and a scrape

    def __init__(self, store: S3Store, run_id: str) -> None:
        self.store = store
        self.run_id = run_id
        self._claims: dict[str, dict[str, Any]] = {}  # a claim never changes once put: each is read once

    def _key(self, *parts: str) -> str:
        return self.store.key(self.run_id, SHARDS_DIR, *parts)

    def join(self) -> None:
        # The run's claim object (collector/landing_s3.py) says it is sharded: an unsharded collector given this
        # run id is refused by it, as a shard is by an unsharded run's claim.
        from collector.landing_s3 import CLAIM_FILE, S3Conflict

        key = self.store.key(self.run_id, CLAIM_FILE)
        try:
            self.store.put(key, json.dumps({"sharded": True}).encode(), if_absent=True)
        except S3Conflict:
            found = self.store.get(key)
            holder = json_object(found[0]) if found else None
            if not (holder or {}).get("sharded"):
                raise ShardBoardError(
                    f"run {self.run_id} already exists and is not sharded; give a new --run-id"
                ) from None

    def claim(self, index: int, record: dict[str, Any]) -> dict[str, Any] | None:
        from collector.landing_s3 import S3Conflict

        key = self._key(f"claim.{index}.json")
        try:
            self.store.put(key, json.dumps(record).encode(), if_absent=True)
        except S3Conflict:
            found = self.store.get(key)
            return (json_object(found[0]) if found else None) or {}
        return None

    def claims(self) -> list[dict[str, Any]]:
        for obj in self.store.objects(self._key("claim.")):
            key = str(obj["Key"])
            if key not in self._claims:
                found = self.store.get(key)
                if found is not None and (claim := json_object(found[0])) is not None:
                    self._claims[key] = claim
        return [self._claims[key] for key in sorted(self._claims)]

    def arrive(self, barrier: str, index: int, wall_ns: int) -> None:
        self.store.put(self._key(barrier, f"{index}-{wall_ns}"), b"")

    def arrivals(self, barrier: str) -> dict[int, int]:
        prefix = self._key(barrier) + "/"
        out = {}
        for obj in self.store.objects(prefix):
            index, _, wall = str(obj["Key"])[len(prefix) :].partition("-")
            if index.isdigit() and wall.isdigit():
                out[int(index)] = int(wall)
        return out

    def manifest(self, shard_part: str) -> dict[str, Any] | None:
        found = self.store.get(self.store.key(self.run_id, shard_manifest_file(shard_part)))
        return json_object(found[0]) if found else None


def shard_board(store: RawStore, run_id: str) -> ShardBoard:
    """The meeting place of run `run_id`'s host shards in `store`."""
    if isinstance(store, LocalStore):
        return FolderBoard(raw_root(store.results_dir) / run_id)
    from collector.landing_s3 import S3Store

    assert isinstance(store, S3Store), f"no shard board for {type(store).__name__}"
    return S3Board(store, run_id)
