"""`collector prepare`: write the payload files of a config's `prepare` buckets, and print their token lengths."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "prepare",
        help="Write the payload files of the config's prepare buckets from their datasets.",
        description="For each payload bucket with a `prepare` section: read its datasets, render each row with its "
        "template, count the rendered prompt with the tokenizer of the experiments that send it, keep the rows "
        "in the bucket's token range, and write the bucket's JSONL file with a provenance file beside it. "
        "`collector run` does this by itself for a file that is missing or out of date.",
    )
    p.add_argument("--config", type=Path, required=True, metavar="PATH", help="Experiment config (YAML).")
    p.add_argument(
        "--only-stale",
        action="store_true",
        help="Prepare only the files that are missing or out of date, as `collector run` does. Default: all.",
    )


def summary_table(provenance: dict[str, dict[str, Any]]) -> list[str]:
    """One line per prepared bucket: rows read, kept and asked for (count), rendered prompt tokens (min, mean,
    max), the tokenizer and the file."""
    head = ("bucket", "rows read", "kept", "asked", "tokens min", "mean", "max", "tokenizer", "file")
    rows = [head]
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
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    return [
        "  ".join(
            c.ljust(w) if i in (0, 7, 8) else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ).rstrip()
        for r in rows
    ]


def run(args: argparse.Namespace) -> int:
    from collector.config import load_config
    from collector.prepare.build import ensure_prepared
    from collector.tokens import experiment_counters

    config = load_config(args.config)
    counters = experiment_counters(config, args.config)
    provenance = ensure_prepared(
        config, counters, force=not args.only_stale, say=lambda line: print(line, file=sys.stderr)
    )
    if not provenance:
        print(f"{args.config}: no payload bucket has a prepare section", file=sys.stdout)
        return 0
    for line in summary_table(provenance):
        print(line, file=sys.stdout)
    return 0
