"""Command line: `python -m collector {run,sim,build,report,app} ...`; errors print as one line unless --debug."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from collector import __version__
from collector.cli import app, build, report, run, sim
from collector.errors import UserError

COMMANDS = {"run": run, "sim": sim, "build": build, "report": report, "app": app}


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="python -m collector",
        description="tokenbench: benchmark LLM endpoints for price-performance; raw rows land in DuckDB, "
        "dbt derives the metrics.",
    )
    top.add_argument("--version", action="version", version=f"tokenbench {__version__}")
    top.add_argument("--debug", action="store_true", help="Show full tracebacks and debug logs.")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS.values():
        module.add_parser(sub)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        return int(COMMANDS[args.command].run(args))
    except UserError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
