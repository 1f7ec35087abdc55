"""Landing on S3: the same `raw/<run_id>/` layout as on disk, under `s3://bucket/prefix/`, written through boto3.

S3 has no append, so a run's streamed rows land as numbered, immutable segment objects
(`requests-000001.jsonl`, ...), one per table every flush (FLUSH_INTERVAL_S; at most SEGMENT_MAX_ROWS rows each):
a reader never sees half an object, a kill -9 loses at most the rows of the last flush interval, and no two
collectors ever write the same object. The run id is claimed by a conditional put (If-None-Match) of a claim
object, so two collectors given one run id cannot share it. At the end the segments are compacted to one Parquet
object per table (put only if absent, so two compactors cannot clobber each other), then deleted.
Credentials, region and endpoint come from boto3's own chain (AWS_* variables, profile, instance role).
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import tempfile
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import duckdb

from collector.landing import (
    MANIFEST_FILE,
    PART_PATTERN,
    SCHEMA_DIR,
    STREAM_TABLES,
    Landing,
    LandingError,
    RawStore,
    _dumps,
    collector_gone,
    json_object,
    lost_manifest,
    part_file,
    process_identity,
    raw_root,
    select_json,
    struct_of,
    write_schema_files,
)
from collector.schema import RAW_TABLES, SCHEMA_VERSION, RunManifest

T = TypeVar("T")
log = logging.getLogger(__name__)

CLAIM_FILE = ".claim.json"  # put if absent: the collector that owns the run id
SEGMENT_MAX_ROWS = 10_000  # a flush with more rows queued writes several segments
SEGMENT_DIGITS = 6
# Zero-row files per raw schema version: immutable once written, so collectors of different versions never
# rewrite each other's (a local _schema/ folder is simply rewritten by every refresh).
SCHEMA_FOLDER = f"_schema-v{SCHEMA_VERSION}"
# A running run whose collector is on another host, and whose heartbeat is older than this, is marked lost.
LOST_AFTER_S = 120.0
# Segments outlive their run's Parquet by this long: a query that listed them before the Parquet was put can still
# read them all (the raw views prefer the Parquet, so rows are never counted twice). A later refresh deletes them.
SEGMENT_GRACE_S = 600.0
_GLOB_CHARS = re.compile(r"[*?\[\]]")


class S3CallError(OSError):
    """An S3 call failed: one line naming the call and AWS's error code. An OSError, so a landing retries it."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class S3Conflict(S3CallError):
    """A conditional put found the object there already (PreconditionFailed)."""


def parse_s3_url(url: str) -> tuple[str, str]:
    """(bucket, prefix without slashes at either end) of `s3://bucket/prefix`; LandingError if malformed."""
    rest = url.removeprefix("s3://")
    bucket, _, prefix = rest.partition("/")
    prefix = prefix.strip("/")
    if not bucket:
        raise LandingError(f"{url}: no bucket name (expected s3://bucket/prefix)")
    if _GLOB_CHARS.search(bucket + prefix):
        raise LandingError(f"{url}: a results prefix cannot contain * ? [ or ] (they are glob characters)")
    return bucket, prefix


def s3_client() -> Any:
    """A boto3 S3 client from the standard chain: AWS_ENDPOINT_URL(_S3) points it at S3-compatible storage."""
    try:
        import boto3
    except ImportError as exc:
        raise LandingError("results on S3 need boto3 and fsspec: pip install 'tokenbench[aws]'") from exc
    return boto3.session.Session().client("s3")


def call(what: str, fn: Callable[..., T], **kwargs: Any) -> T:
    """One S3 call; any failure becomes an S3CallError (S3Conflict for a failed precondition) with one line."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    try:
        return fn(**kwargs)
    except NoCredentialsError as exc:
        raise S3CallError(f"{what}: no AWS credentials found (environment, profile or role)") from exc
    except ClientError as exc:
        err = exc.response.get("Error", {})
        code = str(err.get("Code") or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or "Unknown")
        lines = str(err.get("Message") or "").splitlines()
        kind = S3Conflict if code == "PreconditionFailed" else S3CallError
        raise kind(f"{what}: {code}: {lines[0] if lines else exc}", code) from exc
    except BotoCoreError as exc:
        raise S3CallError(f"{what}: {str(exc).splitlines()[0]}") from exc


# requests-000001.jsonl (an unsharded collector's), requests.w1-000001.jsonl (its client process 1's),
# requests.s2-000001.jsonl (host shard 2's), requests.s2.w1-000001.jsonl: collector/landing.py part_name.
SEGMENT_RE = re.compile(rf"^{PART_PATTERN}-(?P<number>[0-9]+)\.jsonl$")
MANIFEST_RE = re.compile(r"^run(?:\.(?P<shard>s[0-9]+))?\.json$")  # run.json, run.s2.json (shard_manifest_file)


def _segment_name(table: str, number: int, part: str = "") -> str:
    return f"{part_file(table, part, '')}-{number:0{SEGMENT_DIGITS}d}.jsonl"


def _segment(name: str) -> tuple[str, str, str, int] | None:
    """(table, group, process, number) of a segment named `name` ('' when unsharded), or None if not one.
    A group's segments compact to one Parquet object: requests.parquet, requests.s2.parquet."""
    match = SEGMENT_RE.match(name)
    if match is None or match["table"] not in STREAM_TABLES:
        return None
    return match["table"], match["shard"] or "", match["process"] or "", int(match["number"])


def _groups_of(manifest_name: str) -> set[str]:
    """The groups of parts whose writers `manifest_name` speaks for: run.json an unsharded collector's or host
    shard 1's, run.s2.json host shard 2's."""
    match = MANIFEST_RE.match(manifest_name)
    if match is None:
        return set()
    return {"", "s1"} if match["shard"] is None else {match["shard"]}


class S3Store(RawStore):
    """Runs under `s3://bucket/prefix/raw/<run_id>/`."""

    def __init__(self, url: str, segment_grace_s: float = SEGMENT_GRACE_S) -> None:
        self.bucket, self.prefix = parse_s3_url(url)
        self.spec = url
        self.segment_grace_s = segment_grace_s
        self.location = self.url(self.key())
        self._client: Any = None
        self._client_lock = threading.Lock()

    @property
    def client(self) -> Any:
        with self._client_lock:
            if self._client is None:
                self._client = s3_client()
            return self._client

    def key(self, *parts: str) -> str:
        """The key of raw/<parts...> under the prefix."""
        return "/".join(p for p in (self.prefix, "raw", *parts) if p)

    def url(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    # -- objects --------------------------------------------------------------------------
    def put(self, key: str, body: bytes, *, if_absent: bool = False, if_match: str | None = None) -> None:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key, "Body": body}
        if if_absent:
            kwargs["IfNoneMatch"] = "*"
        if if_match is not None:
            kwargs["IfMatch"] = if_match
        call(f"put {self.url(key)}", self.client.put_object, **kwargs)

    def get(self, key: str) -> tuple[bytes, str] | None:
        """(body, ETag) of an object, or None when there is none."""
        try:
            reply = call(f"get {self.url(key)}", self.client.get_object, Bucket=self.bucket, Key=key)
        except S3CallError as exc:
            if exc.code in ("NoSuchKey", "404"):
                return None
            raise
        return reply["Body"].read(), str(reply["ETag"])

    def objects(self, prefix: str) -> Iterator[dict[str, Any]]:
        """Every object under a key prefix (Key, Size, ...), in key order."""
        paginator = self.client.get_paginator("list_objects_v2")
        pages = call(f"list {self.url(prefix)}", lambda: list(paginator.paginate(Bucket=self.bucket, Prefix=prefix)))
        for page in pages:
            yield from page.get("Contents", [])

    def delete(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):  # DeleteObjects takes at most 1000 keys
            batch = [{"Key": k} for k in keys[start : start + 1000]]
            reply = call(
                f"delete in {self.location}",
                self.client.delete_objects,
                Bucket=self.bucket,
                Delete={"Objects": batch, "Quiet": True},
            )
            if reply.get("Errors"):
                first = reply["Errors"][0]
                raise S3CallError(
                    f"delete {self.url(first.get('Key', ''))}: {first.get('Code')}: {first.get('Message')}"
                )

    def runs(self) -> dict[str, dict[str, dict[str, Any]]]:
        """run id -> file name -> object, for every run folder (not _schema-* or hidden ones)."""
        out: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        root = self.key() + "/"
        for obj in self.objects(root):
            run_id, _, name = str(obj["Key"])[len(root) :].partition("/")
            if name and "/" not in name and not run_id.startswith(("_", ".")):
                out[run_id][name] = obj
        return dict(out)

    # -- RawStore -------------------------------------------------------------------------
    def preflight(self, expected_rows: int) -> None:
        """A bucket that does not exist, cannot be reached or denies writes fails here, in one line."""
        try:
            call(f"bucket {self.bucket}", self.client.head_bucket, Bucket=self.bucket)
        except S3CallError as exc:
            if exc.code in ("404", "NoSuchBucket"):
                raise LandingError(f"{self.location}: bucket {self.bucket} does not exist") from exc
            if exc.code in ("403", "AccessDenied"):
                raise LandingError(f"{self.location}: access to bucket {self.bucket} denied ({exc.code})") from exc
            raise LandingError(f"{self.location}: {exc}") from exc
        try:
            self._put_schema_files()  # writes: a bucket that denies them fails before the sweep
        except S3CallError as exc:
            if exc.code in ("403", "AccessDenied"):
                raise LandingError(f"{self.location}: writing to bucket {self.bucket} denied ({exc.code})") from exc
            raise LandingError(f"{self.location}: {exc}") from exc

    def open_run(
        self, run_id: str, part: str = "", *, join: bool = False, manifest: str | None = MANIFEST_FILE
    ) -> S3RunLanding:
        return S3RunLanding(self, run_id, part, join=join, manifest=manifest)

    def run_location(self, run_id: str) -> str:
        return self.url(self.key(run_id)) + "/"

    def has_runs(self) -> bool:
        try:
            reply = call(
                f"list {self.location}", self.client.list_objects_v2, Bucket=self.bucket, Prefix=self.key() + "/"
            )
        except S3CallError as exc:
            raise LandingError(f"{self.location}: {exc}") from exc
        return bool(reply.get("KeyCount"))

    def glob(self, file_name: str) -> str:
        return self.url(self.key("*", file_name))

    def jsonl_name(self, table: str) -> str:
        return f"{table}*-*.jsonl"  # every writer's segments: requests-000001.jsonl, requests.s2.w1-000001.jsonl

    def attach(self, con: duckdb.DuckDBPyConnection) -> None:
        from collector.duckdb_s3 import register

        register(con)

    def write_schema_files(self) -> None:
        """Make sure the zero-row files of this schema version are there; a reader without write access is fine
        once a collector has put them."""
        try:
            self._put_schema_files()
        except S3CallError:
            there = {str(obj["Key"]).rsplit("/", 1)[-1] for obj in self.objects(self.key(SCHEMA_FOLDER) + "/")}
            if not set(schema_files()) <= there:
                raise

    def _put_schema_files(self) -> None:
        """Put the zero-row files of this schema version where absent (they never change once there). Each put is
        conditional, and S3 checks permissions before conditions: a bucket that denies writes refuses every one,
        so this is also the preflight's write check."""
        for name, data in schema_files().items():
            with contextlib.suppress(S3Conflict):  # there already (another collector, or an earlier run)
                self.put(self.key(SCHEMA_FOLDER, name), data, if_absent=True)

    def reconcile(self) -> list[str]:
        """Mark runs whose collector is gone as lost (its process, on this host; else a heartbeat older than
        LOST_AFTER_S) and compact the segments of runs that are over; returns the lost ids. In a sharded run each
        host shard's manifest is judged, and each shard's segments compacted, on their own.

        Safe from several hosts at once: the lost manifest is put only if the manifest is still the one read
        (If-Match), and a compacted Parquet only if there is none yet.
        """
        lost = []
        for run_id, files in sorted(self.runs().items()):
            groups = {seg[1] for name in files if (seg := _segment(name)) is not None}
            manifests = sorted(name for name in files if MANIFEST_RE.match(name))
            sharded = any(name != MANIFEST_FILE for name in manifests)
            if not manifests or (not groups and not sharded and "requests.parquet" in files):
                continue  # compacted and over (only such runs are skipped without reading their manifest)
            over: set[str] = set()
            try:
                for name in manifests:
                    found = self.get(self.key(run_id, name))
                    manifest = json_object(found[0]) if found is not None else None
                    if manifest is None:
                        continue
                    if manifest.get("status") == "running":
                        if not collector_gone(manifest, LOST_AFTER_S):
                            continue
                        try:
                            lost_body = _manifest_body(lost_manifest(manifest))
                            self.put(self.key(run_id, name), lost_body, if_match=found[1])  # type: ignore[index]
                        except S3Conflict:
                            continue  # a heartbeat landed meanwhile: its collector is alive after all
                        if name == MANIFEST_FILE:
                            lost.append(run_id)
                    over |= _groups_of(name)
                if groups & over:
                    self.compact_run(run_id, files, sorted(groups & over))
            except S3CallError as exc:  # e.g. a reader without write access: the views read the segments as they are
                log.warning("run %s left as it is: %s", run_id, exc)
        return lost

    def mirror(self, results: Path) -> Path:
        """Copy what an engine without an S3 connector reads (local Spark) into `results`/raw/, laid out as a
        local results folder's: every run's compacted Parquet and manifest, beside this schema version's zero-row
        files (_schema/, written here as on disk). Incremental (Parquet objects never change once put: one already
        there at its size is kept; manifests are fetched again) and exact (files no longer on S3 are removed).
        Segments of runs still streaming are not copied: such runs are read once compacted, as on disk. Returns
        the raw/ folder."""
        dest = raw_root(results)
        wanted = {
            dest / run_id / name: obj
            for run_id, files in self.runs().items()
            for name, obj in files.items()
            if name.endswith(".parquet") or name == MANIFEST_FILE
        }
        dest.mkdir(parents=True, exist_ok=True)
        for path in sorted(p for p in dest.rglob("*") if p.is_file() and p.parent.name != SCHEMA_DIR):
            if path not in wanted:
                path.unlink()
        write_schema_files(results)
        for path, obj in wanted.items():
            if path.suffix == ".parquet" and path.is_file() and path.stat().st_size == obj["Size"]:
                continue
            found = self.get(str(obj["Key"]))
            if found is None:
                continue  # deleted since it was listed
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_bytes(found[0])
            tmp.replace(path)
        for run_dir in sorted(p for p in dest.iterdir() if p.is_dir()):
            if not any(run_dir.iterdir()):
                run_dir.rmdir()
        return dest

    def compact_run(
        self, run_id: str, files: dict[str, dict[str, Any]] | None = None, groups: list[str] | None = None
    ) -> None:
        """Rewrite a finished run's segments as one Parquet object per table and group of parts (`groups`, else
        all: requests.parquet, requests.s2.parquet); delete the segments once that Parquet is older than
        `segment_grace_s` (a later refresh does it).

        Resumable and safe to run twice at once: the Parquet is put only if absent, and segments are deleted only
        long after a Parquet is there, so a compactor that read a half-deleted set of segments cannot put its file.
        Only a group whose writers are all done may be compacted: a segment put later would not be in its Parquet.
        """
        if files is None:
            files = self.runs().get(run_id, {})
        segments: dict[tuple[str, str], list[tuple[str, int, str]]] = defaultdict(list)
        for name in files:
            if (seg := _segment(name)) is not None and (groups is None or seg[1] in groups):
                table, group, process, number = seg
                segments[(table, group)].append((process, number, name))
        now = datetime.now(UTC)
        for (table, group), found in sorted(segments.items()):
            names = [name for _p, _n, name in sorted(found)]
            target = part_file(table, group, ".parquet")
            parquet = files.get(target)
            if parquet is None:
                with contextlib.suppress(S3Conflict):  # another compactor was first; its file holds the same rows
                    self.put(self.key(run_id, target), self._parquet_of(run_id, table, names), if_absent=True)
                if self.segment_grace_s > 0:
                    continue
            elif (now - parquet["LastModified"]).total_seconds() < self.segment_grace_s:
                continue
            self.delete([self.key(run_id, name) for name in names])

    def _parquet_of(self, run_id: str, table: str, segments: list[str]) -> bytes:
        with tempfile.TemporaryDirectory(prefix="tokenbench-compact-") as tmp:
            jsonl, out = Path(tmp) / f"{table}.jsonl", Path(tmp) / f"{table}.parquet"
            with jsonl.open("wb") as f:
                for name in segments:
                    found = self.get(self.key(run_id, name))
                    if found is None:  # deleted by a compactor that finished first: this copy is not whole
                        raise S3Conflict(f"{self.url(self.key(run_id, name))}: segment gone while compacting")
                    f.write(found[0])
            con = duckdb.connect()
            try:
                select_json(con, table, str(jsonl)).write_parquet(str(out), compression="zstd")
            finally:
                con.close()
            return out.read_bytes()


def _manifest_body(manifest: RunManifest) -> bytes:
    return (_dumps(asdict(manifest)) + "\n").encode()


def schema_files() -> dict[str, bytes]:
    """The zero-row file of every raw table, by file name: an empty manifest, empty JSONL, zero-row Parquet."""
    files: dict[str, bytes] = {MANIFEST_FILE: b""}
    con = duckdb.connect()
    try:
        with tempfile.TemporaryDirectory(prefix="tokenbench-schema-") as tmp:
            for table in RAW_TABLES:
                if table == "runs":
                    continue
                files[_segment_name(table, 0)] = b""
                cols = ", ".join(f"null::{t} as {n}" for n, t in struct_of(table).items())
                path = Path(tmp) / f"{table}.parquet"
                con.sql(f"select {cols} where false").write_parquet(str(path))
                files[f"{table}.parquet"] = path.read_bytes()
    finally:
        con.close()
    return files


class S3RunLanding(Landing):
    """Lands one run under `s3://bucket/prefix/raw/<run_id>/`: claimed at once, rows as numbered segments.

    `part`, `join` and `manifest` are a sharded run's writers' (collector/landing.py RunLanding): a writer that
    joins does not claim the run (a host shard claimed its shard on the run's board, a client process is its
    collector's); its segments carry its part in their names.
    """

    def __init__(
        self,
        store: S3Store,
        run_id: str,
        part: str = "",
        *,
        join: bool = False,
        manifest: str | None = MANIFEST_FILE,
    ) -> None:
        super().__init__()
        self.store = store
        self.run_id = run_id
        self.part = part
        self.manifest_file = manifest
        self.where = store.run_location(run_id)
        self._next = dict.fromkeys(STREAM_TABLES, 1)
        # Segments cut but not yet put, (number, body, rows), oldest first: retried as they are, so a put that
        # failed after S3 stored it only writes the same object again.
        self._pending: dict[str, list[tuple[int, bytes, int]]] = {t: [] for t in STREAM_TABLES}
        if not join:
            self._claim()

    def _claim(self) -> None:
        host, pid, started = process_identity()
        claim = json.dumps({"hostname": host, "pid": pid, "process_started_at": started}).encode()
        key = self.store.key(self.run_id, CLAIM_FILE)
        try:
            self.store.put(key, claim, if_absent=True)
        except S3Conflict:
            holder = self.store.get(key)
            who = (json_object(holder[0]) if holder else None) or {}
            by = f" by process {who['pid']} on {who.get('hostname')}" if who.get("pid") else ""
            by = " by a sharded run (collector run --shard)" if who.get("sharded") else by
            raise LandingError(
                f"{self.where}: run id {self.run_id} is already taken{by}; runs never share one"
            ) from None
        except S3CallError as exc:
            raise LandingError(f"{self.where}: cannot claim the run id: {exc}") from exc

    def stream_location(self, table: str) -> str:
        return f"{self.where}{part_file(table, self.part, '')}-*.jsonl"

    def rows_pending(self, table: str = "requests") -> int:
        with self._lock:
            return len(self._buffers[table]) + sum(n for _seq, _body, n in self._pending[table])

    def flush(self) -> None:
        """Put the queued rows as new segments (whole objects: no torn rows); raise OSError on failure.

        A segment that could not be put stays first in line, with the same number and bytes."""
        with self._write_lock:
            for table in STREAM_TABLES:
                with self._lock:
                    lines, self._buffers[table] = self._buffers[table], []
                    for start in range(0, len(lines), SEGMENT_MAX_ROWS):
                        chunk = lines[start : start + SEGMENT_MAX_ROWS]
                        self._pending[table].append((self._next[table], "".join(chunk).encode(), len(chunk)))
                        self._next[table] += 1
                    pending = list(self._pending[table])
                for number, body, rows in pending:
                    self.store.put(self.store.key(self.run_id, _segment_name(table, number, self.part)), body)
                    with self._lock:
                        self._pending[table].pop(0)
                    self.rows_written[table] += rows

    def write_manifest(self, manifest: RunManifest, *, final: bool = False) -> None:
        assert self.manifest_file is not None, "this writer owns no manifest"
        self.store.put(self.store.key(self.run_id, self.manifest_file), _manifest_body(manifest))

    def compact(self) -> None:
        # its own group of parts: other host shards may still put theirs
        self.store.compact_run(self.run_id, groups=[self.part])
