"""Options several commands share: where the results folder and the warehouse are."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from collector.settings import DEFAULT_RESULTS_DIR, RESULTS_ENV
from collector.warehouse import warehouse_path


def add_location_options(p: argparse.ArgumentParser, *, warehouse: bool = True) -> None:
    p.add_argument(
        "--results-dir",
        type=Path,
        default=None,
        help=f"Folder holding raw/ and the warehouse (tokenbench.duckdb). Default: ${RESULTS_ENV} or ./results.",
    )
    if warehouse:
        p.add_argument(
            "--warehouse", type=Path, default=None, help="Warehouse file. Default: <results-dir>/tokenbench.duckdb."
        )


def results_dir(args: argparse.Namespace) -> Path:
    return Path(args.results_dir or os.environ.get(RESULTS_ENV) or DEFAULT_RESULTS_DIR)


def warehouse(args: argparse.Namespace) -> Path:
    return Path(getattr(args, "warehouse", None) or warehouse_path(results_dir(args)))
