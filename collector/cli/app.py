"""`collector app`: start the Streamlit app on a warehouse (`streamlit run streamlit_app/app.py -- --warehouse`)."""

from __future__ import annotations

import argparse
import importlib.util
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

from collector.cli import options
from collector.errors import UserError

APP_SCRIPT = Path(__file__).resolve().parents[2] / "streamlit_app" / "app.py"
STOP_TIMEOUT_S = 10  # how long the server gets to stop after a signal before it is killed


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


def serve(cmd: list[str]) -> int:
    """Run the server as a child; SIGINT or SIGTERM to us is passed on to it, and we wait for it to end.

    Without this, a SIGTERM (a service manager, `kill`, a closed terminal) ended this process and left the
    Streamlit server running, holding its port.
    """
    received: list[int] = []
    started: list[subprocess.Popen[bytes]] = []

    def forward(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        if started and started[0].poll() is None:
            started[0].terminate()  # Streamlit stops cleanly on SIGTERM; on SIGINT it prints a traceback

    # Handlers first, so a signal that lands while the child starts is not lost (it is sent on below).
    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    # Its own process group, so a Ctrl-C at the terminal reaches only us, and we stop it the clean way.
    child = subprocess.Popen(cmd, process_group=0)
    started.append(child)
    if received:
        child.terminate()
    try:
        deadline: float | None = None
        while True:
            try:
                code = child.wait(timeout=0.2)
                break
            except subprocess.TimeoutExpired:
                if received and deadline is None:
                    deadline = time.monotonic() + STOP_TIMEOUT_S
                if deadline is not None and time.monotonic() > deadline:
                    child.kill()  # it did not stop when asked
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if child.poll() is None:  # leaving on an error of our own: do not leave the server behind
            child.kill()
            child.wait()
    if received:
        raise KeyboardInterrupt(signal.Signals(received[0]).name)
    return code


def run(args: argparse.Namespace) -> int:
    if importlib.util.find_spec("streamlit") is None:
        raise UserError("streamlit is not installed: pip install -e '.[app]'")
    warehouse = options.warehouse(args)
    return serve(command(warehouse, args.port, args.address))
