"""Dataset rows for `prepare`: local JSONL, CSV or Parquet files, or a Hugging Face dataset (`hf:`).

Every row comes with where it was read (`file:line`), and every fault is one ConfigError naming the file and row.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from collector.errors import ConfigError
from collector.jsonl import jsonl_objects

SUFFIXES = (".jsonl", ".json", ".csv", ".parquet")
HF_PREFIX = "hf:"


@dataclass(frozen=True)
class SourceRow:
    where: str  # file:line (JSONL, CSV), file:row (Parquet) or hf:...:row
    fields: dict[str, Any]


def read_rows(source: str, limit: int | None = None) -> Iterator[SourceRow]:
    """The rows of one source, at most `limit` of them."""
    if source.startswith(HF_PREFIX):
        rows = hf_rows(*parse_hf(source))
    else:
        path = Path(source)
        suffix = path.suffix.lower()
        if suffix in (".jsonl", ".json"):
            rows = jsonl_rows(path)
        elif suffix == ".csv":
            rows = csv_rows(path)
        elif suffix == ".parquet":
            rows = parquet_rows(path)
        else:
            raise ConfigError(
                f"{path}: unknown dataset format {suffix or '(no suffix)'} (known: {', '.join(SUFFIXES)})"
            )
    for n, row in enumerate(rows):
        if limit is not None and n >= limit:
            return
        yield row


def jsonl_rows(path: Path) -> Iterator[SourceRow]:
    for lineno, obj in jsonl_objects(path):
        if not isinstance(obj, dict):
            raise ConfigError(f"{path}:{lineno}: a row must be a JSON object, not {type(obj).__name__}")
        yield SourceRow(f"{path}:{lineno}", obj)


def _decoded_lines(path: Path, fh: Any) -> Iterator[str]:
    for lineno, raw in enumerate(fh, start=1):
        if lineno == 1:
            raw = raw.removeprefix(b"\xef\xbb\xbf")
        if b"\x00" in raw:
            raise ConfigError(f"{path}:{lineno}: binary data (NUL byte), not CSV text")
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path}:{lineno}: not UTF-8 text (byte {exc.start} of the line)") from exc


def csv_rows(path: Path) -> Iterator[SourceRow]:
    """Rows of a CSV file with a header line, each named by its first line in the file; decoded line by line so
    a non-UTF-8 byte names its own line."""
    try:
        fh = path.open("rb")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    with fh:
        reader = csv.DictReader(_decoded_lines(path, fh))
        start = 2
        try:
            for row in reader:
                if None in row:
                    raise ConfigError(f"{path}:{start}: more fields than the header names")
                yield SourceRow(f"{path}:{start}", {k: v for k, v in row.items() if k is not None})
                start = reader.line_num + 1
        except csv.Error as exc:
            raise ConfigError(f"{path}:{reader.line_num}: bad CSV: {exc}") from exc
        if reader.fieldnames is None:
            raise ConfigError(f"{path}: empty CSV file (a header line is expected)")


def parquet_rows(path: Path) -> Iterator[SourceRow]:
    """Rows of a Parquet file through DuckDB, in file order (row numbers start at 1)."""
    import duckdb

    try:
        con = duckdb.connect()
        cur = con.execute("select * from read_parquet(?)", [str(path)])
        names = [d[0] for d in cur.description or ()]
        n = 0
        while batch := cur.fetchmany(1024):
            for values in batch:
                n += 1
                yield SourceRow(f"{path}:{n}", dict(zip(names, values, strict=True)))
    except duckdb.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"{path}: cannot read Parquet: {first[:300]}") from exc


def parse_hf(source: str) -> tuple[str, str | None, str]:
    """`hf:org/name[/subset]/split` as (dataset id, subset, split)."""
    parts = source.removeprefix(HF_PREFIX).strip("/").split("/")
    if len(parts) not in (3, 4) or not all(parts):
        raise ConfigError(f"{source}: a hub dataset is hf:org/name/split or hf:org/name/subset/split")
    return "/".join(parts[:2]), (parts[2] if len(parts) == 4 else None), parts[-1]


def hf_rows(dataset: str, subset: str | None, split: str) -> Iterator[SourceRow]:
    """Rows of a Hugging Face dataset, streamed (only the rows read are downloaded); `dataset` may also be a
    local dataset folder, as `datasets.load_dataset` allows."""
    name = f"hf:{dataset}{'/' + subset if subset else ''}/{split}"
    try:
        import datasets
    except ImportError as exc:
        raise ConfigError(f"{name}: hub datasets need the datasets package: pip install 'tokenbench[hf]'") from exc
    datasets.logging.set_verbosity_error()
    try:
        rows = datasets.load_dataset(dataset, subset, split=split, streaming=True)
        for n, row in enumerate(rows, start=1):
            yield SourceRow(f"{name}:{n}", dict(row))
    except ConfigError:
        raise
    except Exception as exc:  # datasets raises many kinds (FileNotFoundError, ValueError, DatasetNotFoundError...)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"{name}: cannot read the dataset: {first[:300]}") from exc
