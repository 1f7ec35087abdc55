"""`collector prepare`: write the payload files of a config's `prepare` buckets, and print every bucket's token
lengths as each experiment counts them."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collector.config import Config
    from collector.payloads import Prompt


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "prepare",
        help="Write the payload files of the config's prepare buckets from their datasets.",
        description="For each payload bucket with a `prepare` section: read its datasets, render each row with its "
        "template, count the rendered prompt with the tokenizer of the experiments that send it, keep the rows "
        "in the bucket's token range, and write the bucket's JSONL file with a provenance file beside it. "
        "`collector run` does this by itself for a file that is missing or out of date. Then print, for every "
        "experiment and bucket it sends (files, prepared and synthetic), the prompts' token lengths as that "
        "experiment's tokenizer counts them.",
    )
    p.add_argument("--config", type=Path, required=True, metavar="PATH", help="Experiment config (YAML).")
    p.add_argument(
        "--only-stale",
        action="store_true",
        help="Prepare only the files that are missing or out of date, as `collector run` does. Default: all.",
    )


def _table(rows: Sequence[tuple[str, ...]], left: tuple[int, ...]) -> list[str]:
    """Aligned columns: those in `left` to the left, numbers to the right."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(
            c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ).rstrip()
        for r in rows
    ]


def summary_table(provenance: dict[str, dict[str, Any]]) -> list[str]:
    """One line per prepared bucket: rows read, kept and asked for (count), rendered prompt tokens (min, mean,
    max), the tokenizer and the file."""
    rows = [("bucket", "rows read", "kept", "asked", "tokens min", "mean", "max", "tokenizer", "file")]
    for name, p in provenance.items():
        tokens = p.get("prompt_tokens") or {}
        asked = p.get("rows_asked")
        rows.append(
            (
                name,
                f"{p.get('rows_read', 0):,}",
                f"{p.get('rows_kept', 0):,}",
                f"{asked:,}" if asked else "all",
                f"{tokens.get('min', 0):,}",
                f"{tokens.get('mean', 0):,.1f}",
                f"{tokens.get('max', 0):,}",
                str((p.get("settings") or {}).get("tokenizer", "")),
                str(p.get("file", "")),
            )
        )
    return _table(rows, left=(0, 7, 8))


def sent_table(config: Config, prompts: dict[str, dict[str, list[Prompt]]]) -> list[str]:
    """One line per experiment and bucket it sends: its prompts' tokens as that experiment counts them."""
    rows = [("experiment", "bucket", "prompts", "tokens min", "mean", "max", "counted as")]
    for exp in config.experiments:
        for bucket, ps in prompts[exp.name].items():
            n = [p.client_tokens for p in ps]
            rows.append(
                (
                    exp.name,
                    bucket,
                    f"{len(n):,}",
                    f"{min(n):,}",
                    f"{sum(n) / len(n):,.1f}",
                    f"{max(n):,}",
                    f"{exp.endpoint.api_style or 'chat'} prompts",
                )
            )
    return _table(rows, left=(0, 1, 6))


def run(args: argparse.Namespace) -> int:
    from collector.config import load_config
    from collector.payloads import experiment_prompts
    from collector.prepare.build import ensure_prepared
    from collector.tokens import experiment_counters

    config = load_config(args.config)
    counters = experiment_counters(config, args.config)
    for exp in config.experiments:
        print(f"experiment {exp.name}: token counter {counters[exp.name].name}", file=sys.stderr)
    provenance = ensure_prepared(
        config, counters, force=not args.only_stale, say=lambda line: print(line, file=sys.stderr)
    )
    if provenance:
        for line in summary_table(provenance):
            print(line, file=sys.stdout)
        print(file=sys.stdout)
    prompts, _ = experiment_prompts(config, counters)
    for line in sent_table(config, prompts):
        print(line, file=sys.stdout)
    return 0
