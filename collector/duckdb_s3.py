"""DuckDB reads raw rows on S3 through a read-only fsspec filesystem over boto3, registered on its connections.

Why not DuckDB's httpfs: it is an extension DuckDB downloads at first use, and no package on PyPI ships it for the
DuckDB this project installs (2.x), so it cannot load on a machine without that download. A filesystem registered
with `register_filesystem` needs nothing more than boto3, reads S3 and S3-compatible stores alike, and takes its
credentials, region and endpoint from the same AWS chain as the landing (AWS_ENDPOINT_URL for a custom endpoint).
"""

from __future__ import annotations

import re
import threading
from datetime import datetime
from typing import Any

import duckdb

from collector.errors import UserError

PROTOCOL = "s3"
BLOCK_SIZE = 8 * 2**20  # bytes fetched per ranged GET when DuckDB reads ahead
# Objects the landing never rewrites once put (segments, Parquet): their size from a listing stays true, so DuckDB's
# repeated stat of each file costs no HEAD request. A manifest (run.json) is rewritten, and always asked afresh.
IMMUTABLE_SUFFIXES = (".jsonl", ".parquet")
KNOWN_MAX = 100_000
_MAGIC = re.compile(r"[*?\[]")


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """A key pattern as a regex: `*` and `?` stay within one path segment, `**` crosses them, `[...]` is a class."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[" and (end := pattern.find("]", i + 1)) > i:
            body = pattern[i + 1 : end]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
            i = end
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out))


def filesystem() -> Any:
    """A new read-only S3 filesystem for DuckDB (fsspec's classes load here, only when S3 is read)."""
    try:
        from fsspec.spec import AbstractBufferedFile, AbstractFileSystem
    except ImportError as exc:
        raise UserError("reading raw rows on S3 needs fsspec and boto3: pip install 'tokenbench[aws]'") from exc
    from collector.landing_s3 import s3_client

    class S3ReadFile(AbstractBufferedFile):
        def _fetch_range(self, start: int, end: int) -> bytes:
            if start >= end:
                return b""
            bucket, key = self.fs.split(self.path)
            reply = self.fs.call(self.path, "get_object", Bucket=bucket, Key=key, Range=f"bytes={start}-{end - 1}")
            return bytes(reply["Body"].read())

    class S3ReadFileSystem(AbstractFileSystem):
        """s3://bucket/key, read-only: list, glob (one listing per pattern), stat and ranged reads."""

        protocol = PROTOCOL
        root_marker = ""
        cachable = False  # a new instance per registration: it must see the environment of its time

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self._client: Any = None
            self._client_lock = threading.Lock()
            self._known: dict[str, dict[str, Any]] = {}  # immutable objects seen in a listing, by name

        @property
        def client(self) -> Any:
            with self._client_lock:
                if self._client is None:
                    self._client = s3_client()
                return self._client

        @classmethod
        def _strip_protocol(cls, path: Any) -> str:
            text = str(path[0] if isinstance(path, list) else path)
            return text.removeprefix(f"{PROTOCOL}://").rstrip("/")

        def split(self, path: str) -> tuple[str, str]:
            bucket, _, key = self._strip_protocol(path).partition("/")
            return bucket, key

        def call(self, path: str, method: str, **kwargs: Any) -> Any:
            """One boto3 call; a missing object or bucket is FileNotFoundError, any other failure an OSError."""
            from botocore.exceptions import BotoCoreError, ClientError

            try:
                return getattr(self.client, method)(**kwargs)
            except ClientError as exc:
                code = str(exc.response.get("Error", {}).get("Code"))
                if code in ("404", "NoSuchKey", "NoSuchBucket"):
                    raise FileNotFoundError(f"s3://{self._strip_protocol(path)}") from exc
                raise OSError(f"s3://{self._strip_protocol(path)}: {method}: {code}") from exc
            except BotoCoreError as exc:
                raise OSError(f"s3://{self._strip_protocol(path)}: {str(exc).splitlines()[0]}") from exc

        def _keys(self, bucket: str, prefix: str, delimiter: str | None = None) -> tuple[list[Any], list[str]]:
            """(objects, common prefixes) under a key prefix, every page."""
            objects: list[Any] = []
            folders: list[str] = []
            kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
            if delimiter:
                kwargs["Delimiter"] = delimiter
            while True:
                reply = self.call(f"{bucket}/{prefix}", "list_objects_v2", **kwargs)
                objects += reply.get("Contents", [])
                folders += [p["Prefix"] for p in reply.get("CommonPrefixes", [])]
                if not reply.get("IsTruncated"):
                    return objects, folders
                kwargs["ContinuationToken"] = reply["NextContinuationToken"]

        def _file(self, bucket: str, obj: dict[str, Any]) -> dict[str, Any]:
            entry: dict[str, Any] = {
                "name": f"{bucket}/{obj['Key']}",
                "size": int(obj.get("Size", obj.get("ContentLength", 0))),
                "type": "file",
                "LastModified": obj.get("LastModified"),
            }
            if entry["name"].endswith(IMMUTABLE_SUFFIXES):
                if len(self._known) >= KNOWN_MAX:
                    self._known.clear()
                self._known[entry["name"]] = entry
            return entry

        def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
            bucket, key = self.split(path)
            objects, folders = self._keys(bucket, f"{key}/" if key else "", "/")
            entries = [self._file(bucket, o) for o in objects] + [
                {"name": f"{bucket}/{p.rstrip('/')}", "size": 0, "type": "directory"} for p in folders
            ]
            if not entries:
                entries = [self.info(path)]  # a file lists as itself; nothing at all is FileNotFoundError
            return entries if detail else [e["name"] for e in entries]

        def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
            bucket, key = self.split(path)
            known = self._known.get(f"{bucket}/{key}")
            if known is not None:
                return known
            if key:
                try:
                    head = self.call(path, "head_object", Bucket=bucket, Key=key)
                    return self._file(bucket, {"Key": key, **head})
                except FileNotFoundError:
                    pass
                objects, folders = self._keys(bucket, f"{key}/", "/")
                if not objects and not folders:
                    raise FileNotFoundError(f"s3://{bucket}/{key}")
            return {"name": f"{bucket}/{key}".rstrip("/"), "size": 0, "type": "directory"}

        def modified(self, path: str) -> datetime:
            return self.info(path)["LastModified"]

        def glob(self, path: str, maxdepth: int | None = None, **kwargs: Any) -> list[str]:
            """Keys matching a pattern, from one listing of the pattern's literal prefix (not a walk per folder)."""
            bucket, pattern = self.split(path)
            magic = _MAGIC.search(pattern)
            if magic is None:
                return [f"{bucket}/{pattern}"] if self.exists(path) else []
            regex = _glob_regex(pattern)
            objects, _ = self._keys(bucket, pattern[: magic.start()])
            return sorted(self._file(bucket, o)["name"] for o in objects if regex.fullmatch(o["Key"]))

        def _open(
            self,
            path: str,
            mode: str = "rb",
            block_size: int | None = None,
            autocommit: bool = True,
            cache_options: dict[str, Any] | None = None,
            **kwargs: Any,
        ) -> Any:
            if mode != "rb":
                raise PermissionError(f"s3://{self._strip_protocol(path)}: the warehouse reads S3, never writes it")
            return S3ReadFile(
                self, path, mode, block_size=block_size or BLOCK_SIZE, cache_options=cache_options, **kwargs
            )

    return S3ReadFileSystem()


def register(con: duckdb.DuckDBPyConnection) -> None:
    """Let `con` (and every connection to its database) read s3:// paths; once per database."""
    if any(PROTOCOL in str(name) for name in con.list_filesystems()):
        return
    con.register_filesystem(filesystem())


def register_if_needed(con: duckdb.DuckDBPyConnection) -> None:
    """Register the S3 filesystem on a warehouse connection whose raw views read S3 (and only then, so a local
    warehouse never loads boto3)."""
    reads_s3 = con.execute(
        "select count(*) from duckdb_views() where schema_name = 'raw' and sql like ?", [f"%{PROTOCOL}://%"]
    ).fetchone()
    if reads_s3 and reads_s3[0]:
        register(con)
