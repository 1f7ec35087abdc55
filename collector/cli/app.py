"""`collector app`: start the Streamlit app on a warehouse (`streamlit run streamlit_app/app.py -- --warehouse`)."""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
from pathlib import Path

from collector.cli import options
from collector.errors import UserError

APP_SCRIPT = Path(__file__).resolve().parents[2] / "streamlit_app" / "app.py"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "app",
        help="Open the results in the Streamlit app.",
        description="Run `streamlit run streamlit_app/app.py -- --warehouse PATH`. The app opens the warehouse "
        "read-only, briefly per query, so it can stay open while a sweep runs or the marts are rebuilt.",
    )
    options.add_location_options(p)
    p.add_argument("--port", type=int, default=8501, help="Port to serve on (default: %(default)s).")
    p.add_argument(
        "--address",
        default="127.0.0.1",
        help="Address to serve on (default: %(default)s, this machine only; 0.0.0.0 shares it on the network).",
    )


def command(warehouse: Path, port: int, address: str = "127.0.0.1") -> list[str]:
    """The streamlit command line the subcommand runs."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP_SCRIPT),
        "--server.port",
        str(port),
        "--server.address",  # set explicitly, so streamlit does not look up this machine's external IP
        address,
        "--browser.gatherUsageStats",
        "false",
        "--",
        "--warehouse",
        str(warehouse.resolve()),
    ]


def run(args: argparse.Namespace) -> int:
    if importlib.util.find_spec("streamlit") is None:
        raise UserError("streamlit is not installed: pip install -e '.[app]'")
    warehouse = options.warehouse(args)
    try:
        return subprocess.call(command(warehouse, args.port, args.address))
    except KeyboardInterrupt:
        return 130
