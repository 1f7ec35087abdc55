"""`prepare`: read a bucket's datasets, render and count each row, keep those in range, write the JSONL atomically.

A provenance file beside the payload file (`<file>.provenance.json`) says how it was made; `collector run`
prepares again when the file is missing, or its provenance does not match the bucket's settings or contents.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from collector import __version__
from collector.config import Config, PayloadBucket
from collector.errors import ConfigError, UserError
from collector.lengths import stats
from collector.prepare.sources import read_rows
from collector.prepare.spec import PrepareSpec
from collector.prepare.templates import FORMATS, default_instruction, render
from collector.tokens import (
    CHAT_STYLES,
    DEFAULT_COUNTER,
    TokenCounter,
    TransformersTokenCounter,
    count_prompt,
    load_tokenizer,
)

PROVENANCE_SUFFIX = ".provenance.json"


@dataclass(frozen=True)
class BucketPlan:
    """A prepared bucket with the tokenizer that counts it and how its prompts are sent (chat or text)."""

    index: int
    bucket: PayloadBucket
    spec: PrepareSpec
    file: Path
    counter: TokenCounter
    sends_as: str  # chat: messages through the server's chat template; text: a text prompt

    @property
    def where(self) -> str:
        return f"payloads[{self.index}] ({self.bucket.name})"

    @property
    def api_style(self) -> str:
        return "chat" if self.sends_as == "chat" else "completions"


def provenance_path(file: Path) -> Path:
    return file.with_name(file.name + PROVENANCE_SUFFIX)


def plan(config: Config, counters: dict[str, TokenCounter]) -> list[BucketPlan]:
    """Every bucket with a `prepare` section, with the one tokenizer and wire form its experiments agree on.

    Experiments that would count a bucket differently (other tokenizers, chat and text endpoints) are an error
    unless the bucket names its own tokenizer: FMBench filtered every bucket with one experiment's tokenizer.
    """
    plans = []
    for i, bucket in enumerate(config.payloads):
        spec = bucket.prepare
        if spec is None:
            continue
        assert bucket.file is not None
        where = f"payloads[{i}] ({bucket.name})"
        users = [e for e in config.experiments if bucket.name in e.payloads]
        styles = {"chat" if (e.endpoint.api_style or "chat") in CHAT_STYLES else "text" for e in users}
        if len(styles) > 1:
            raise ConfigError(
                f"{where}: sent to chat and to text endpoints, whose prompts count differently: give each its own "
                "bucket"
            )
        sends_as = styles.pop() if styles else ("chat" if spec.template == "chat" else "text")
        if spec.template in FORMATS and sends_as == "chat":
            names = ", ".join(e.name for e in users)
            raise ConfigError(
                f"{where}: template {spec.template} writes text prompts, but {names} send chat messages (the server "
                "applies its own template): use template: chat or plain"
            )
        if spec.tokenizer is not None:
            try:
                counter: TokenCounter = load_tokenizer(spec.tokenizer, spec.tokenizer_download)
            except ConfigError as exc:
                raise ConfigError(f"{where}: prepare.tokenizer: {exc}") from exc
        else:
            named = {counters[e.name].name: counters[e.name] for e in users}
            if len(named) > 1:
                raise ConfigError(
                    f"{where}: its experiments count tokens differently ({', '.join(sorted(named))}): name the one "
                    "that filters it with prepare.tokenizer, or give each experiment its own bucket"
                )
            counter = next(iter(named.values())) if named else DEFAULT_COUNTER
        if spec.template == "chat" and not (
            isinstance(counter, TransformersTokenCounter) and getattr(counter.tokenizer, "chat_template", None)
        ):
            raise ConfigError(f"{where}: template chat needs a tokenizer with a chat template; {counter.name} has none")
        plans.append(BucketPlan(i, bucket, spec, bucket.file, counter, sends_as))
    return plans


def file_sha256(path: Path) -> str:
    """The hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def settings_of(p: BucketPlan) -> dict[str, Any]:
    """What the prepared file depends on: the spec, the tokenizer, the wire form and the local sources' bytes."""
    sources = []
    for s in p.spec.source:
        path = Path(s)
        sources.append(
            {"source": s, "sha256": file_sha256(path) if not s.startswith("hf:") and path.is_file() else None}
        )
    spec = p.spec.model_dump(mode="json", exclude={"source", "tokenizer_download"})
    return {**spec, "sources": sources, "tokenizer": p.counter.name, "sends_as": p.sends_as}


def read_provenance(file: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(provenance_path(file).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def why_prepare(p: BucketPlan) -> str | None:
    """Why the bucket's file must be (re)written, or None when it is up to date."""
    if not p.file.is_file():
        return "missing"
    recorded = read_provenance(p.file)
    if recorded is None:
        return f"no readable {provenance_path(p.file).name} beside it"
    if recorded.get("settings") != settings_of(p):
        return "prepared from other settings, sources or tokenizer"
    if recorded.get("file_sha256") != file_sha256(p.file):
        return "changed since it was prepared"
    return None


@dataclass
class _Kept:
    order: int
    where: str
    tokens: int
    row: dict[str, Any]


def _render_all(p: BucketPlan, counts: dict[str, int]) -> tuple[list[_Kept], str | None]:
    """The rows whose rendered prompt is in range, and the instruction used (the default is chosen by the first
    row)."""
    spec = p.spec
    instruction = spec.instruction
    in_range: list[_Kept] = []
    lengths: list[int] = []
    for source in spec.source:
        for row in read_rows(source, spec.max_source_rows):
            counts["rows_read"] += 1
            fields = row.fields
            if spec.language is not None:
                if "language" not in fields:
                    raise ConfigError(f"{row.where}: no 'language' field to filter on (prepare.language)")
                if fields["language"] != spec.language:
                    continue
            counts["rows_in_language"] += 1
            if instruction is None:
                instruction = default_instruction(fields)
            text, messages = render(spec.template, instruction, fields, row.where, p.sends_as, p.counter)
            tokens = count_prompt(p.counter, text, messages, p.api_style)
            lengths.append(tokens)
            if tokens < spec.min_tokens or (spec.max_tokens is not None and tokens >= spec.max_tokens):
                continue
            out: dict[str, Any] = {"inputs": text} if text is not None else {"messages": messages}
            if fields.get("messages") is None:  # a text row: the chat rows' messages were rendered above
                if fields.get("answers") is not None:  # FMBench's row shape: ground truth and question beside it
                    out["ground_truth"] = fields["answers"]
                if isinstance(fields.get("input"), str):
                    out["question"] = fields["input"]
            out["source"] = row.where
            in_range.append(_Kept(len(in_range), row.where, tokens, out))
    counts["rows_in_range"] = len(in_range)
    if not in_range:
        upper = "" if spec.max_tokens is None else f", {spec.max_tokens:,}"
        seen = f"rendered lengths {min(lengths):,} to {max(lengths):,}" if lengths else "none rendered"
        lang = f" in language {spec.language}" if spec.language else ""
        raise ConfigError(
            f"{p.where}: no row of {', '.join(spec.source)}{lang} has a rendered prompt of [{spec.min_tokens:,}"
            f"{upper or ', ∞'}) tokens with {p.counter.name} ({counts['rows_read']:,} rows read, {seen}): the "
            "bucket would be empty"
        )
    return in_range, instruction


def _sample(rows: list[_Kept], count: int | None, seed: int) -> list[_Kept]:
    if count is None or len(rows) <= count:
        return rows
    return sorted(random.Random(seed).sample(rows, count), key=lambda k: k.order)


def _remove_orphans(path: Path) -> None:
    """Delete the temporaries a killed prepare left beside `path` (their pid no longer runs)."""
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        pid = tmp.name.removeprefix(f".{path.name}.").removesuffix(".tmp")
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            tmp.unlink(missing_ok=True)
        except PermissionError:  # alive, another user's
            pass


def _write_atomically(path: Path, lines: Iterable[str]) -> None:
    """Write a temporary file in the same folder, then rename it over `path`: never a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_orphans(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as fh:
            for line in lines:
                fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def prepare_bucket(p: BucketPlan) -> dict[str, Any]:
    """Write the bucket's file and its provenance; return the provenance."""
    counts = {"rows_read": 0, "rows_in_language": 0}
    in_range, instruction = _render_all(p, counts)
    kept = _sample(in_range, p.spec.count, p.spec.seed)
    try:
        _write_atomically(p.file, (json.dumps(k.row, ensure_ascii=False) + "\n" for k in kept))
        provenance = {
            "bucket": p.bucket.name,
            "file": str(p.file),
            "file_sha256": file_sha256(p.file),
            "prepared_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "tokenbench_version": __version__,
            "settings": settings_of(p),
            "instruction": instruction,
            **counts,
            "rows_kept": len(kept),
            "rows_asked": p.spec.count,
            "prompt_tokens": stats([k.tokens for k in kept], digits=1),
        }
        _write_atomically(provenance_path(p.file), [json.dumps(provenance, indent=2, ensure_ascii=False) + "\n"])
    except OSError as exc:
        raise UserError(f"{p.where}: cannot write {exc.filename or p.file}: {exc.strerror or exc}") from exc
    return provenance


def ensure_prepared(
    config: Config, counters: dict[str, TokenCounter], force: bool = False, say: Any = None
) -> dict[str, dict[str, Any]]:
    """Prepare every bucket whose file is missing or out of date (all of them when `force`); return each prepared
    bucket's provenance by name. `say(line)` hears why each one is written."""
    out = {}
    for p in plan(config, counters):
        reason = "asked for" if force else why_prepare(p)
        if reason is None:
            recorded = read_provenance(p.file)
            assert recorded is not None
            out[p.bucket.name] = recorded
            continue
        if say is not None:
            say(f"{p.where}: preparing {p.file} ({reason}) with {p.counter.name}")
        out[p.bucket.name] = prepare_bucket(p)
    return out
