"""Options several commands share: where the results folder (or S3 prefix) and the warehouse are."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from collector.errors import UserError
from collector.landing import RawStore, is_s3_url, raw_store
from collector.settings import DEFAULT_RESULTS_DIR, RESULTS_ENV
from collector.warehouse import warehouse_path


def add_location_options(p: argparse.ArgumentParser, *, warehouse: bool = True, s3: bool = False) -> None:
    """--results-dir (and --warehouse); with `s3`, the results may be an S3 prefix, and --local-dir says where the
    local part (the warehouse, logs, reports) goes then."""
    where = " or an S3 prefix s3://bucket/prefix (raw rows only; see --local-dir)" if s3 else ""
    p.add_argument(
        "--results-dir",
        default=None,
        help=f"Folder holding raw/ and the warehouse (tokenbench.duckdb){where}. Default: ${RESULTS_ENV} or ./results.",
    )
    if s3:
        p.add_argument(
            "--local-dir",
            type=Path,
            default=None,
            help="With an s3:// --results-dir: the local folder for the warehouse, logs and reports. "
            f"Default: ./{DEFAULT_RESULTS_DIR}.",
        )
    p.set_defaults(s3_results=s3)
    if warehouse:
        p.add_argument(
            "--warehouse", type=Path, default=None, help="Warehouse file. Default: <results-dir>/tokenbench.duckdb."
        )


def _results(args: argparse.Namespace) -> str:
    return str(args.results_dir or os.environ.get(RESULTS_ENV) or DEFAULT_RESULTS_DIR)


def results_dir(args: argparse.Namespace) -> Path:
    """The local results folder: the warehouse, logs and reports (and raw/, unless raw rows are on S3)."""
    value = _results(args)
    if is_s3_url(value):
        if not getattr(args, "s3_results", False):
            raise UserError(
                f"--results-dir {value}: only `collector run` and `collector build` take an S3 prefix; "
                "give this command the local folder of the warehouse"
            )
        return Path(getattr(args, "local_dir", None) or DEFAULT_RESULTS_DIR)
    return Path(value)


def raw(args: argparse.Namespace) -> RawStore:
    """Where raw rows land and are read: results_dir/raw/, or the S3 prefix given as the results dir."""
    value = _results(args)
    return raw_store(value if is_s3_url(value) else results_dir(args))


def warehouse(args: argparse.Namespace) -> Path:
    return Path(getattr(args, "warehouse", None) or warehouse_path(results_dir(args)))
