"""Command line: `python -m collector COMMAND` (run, prepare, sim, build, report, app, launch, import); one-line
errors unless --debug.

Ctrl-C and SIGTERM are one and the same here: either prints `interrupted` and exits 130, wherever it lands.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import FrameType, ModuleType
from typing import Any

from collector import __version__
from collector.errors import UserError

COMMAND_NAMES = ("run", "prepare", "sim", "build", "report", "app", "launch", "import")
# A command whose name is a Python keyword lives in a module named with a trailing underscore.
COMMAND_MODULES = {"import": "import_"}
EXIT_INTERRUPTED = 130
INTERRUPT_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def command_module(name: str) -> ModuleType:
    # Imported on demand, after the signal handlers are in place: the heavy imports (dbt, duckdb, pandas)
    # take a second or more, and a Ctrl-C or SIGTERM then must not print a traceback or die silently.
    return importlib.import_module(f"collector.cli.{COMMAND_MODULES.get(name, name)}")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="python -m collector",
        description="tokenbench: benchmark LLM endpoints for price-performance; raw rows land in DuckDB, "
        "dbt derives the metrics.",
    )
    top.add_argument("--version", action="version", version=f"tokenbench {__version__}")
    top.add_argument("--debug", action="store_true", help="Show full tracebacks and debug logs.")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_NAMES:
        command_module(name).add_parser(sub)
    return top


class _Interrupts:
    """Whether an interrupt signal arrived: dbt catches KeyboardInterrupt and reports it as a failed build."""

    seen = False


def _on_interrupt(signum: int, frame: FrameType | None) -> None:
    _Interrupts.seen = True
    raise KeyboardInterrupt(signal.Signals(signum).name)


@contextmanager
def interrupt_handlers() -> Iterator[None]:
    """SIGINT and SIGTERM raise KeyboardInterrupt for the duration (the sweep installs its own meanwhile)."""
    if threading.current_thread() is not threading.main_thread():  # signal handlers live on the main thread
        yield
        return
    previous: dict[signal.Signals, Any] = {sig: signal.getsignal(sig) for sig in INTERRUPT_SIGNALS}
    _Interrupts.seen = False
    for sig in INTERRUPT_SIGNALS:
        signal.signal(sig, _on_interrupt)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


def os_error_line(exc: OSError) -> str:
    """`<path>: <reason>` for a fault of this host (full or read-only disk, permissions, no descriptors)."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    paths = [p for p in (exc.filename, exc.filename2) if p is not None]
    return ": ".join([*(str(p) for p in paths), reason])


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; its exit status. An interrupt that lands while the handlers are being put back (its
    Python-level handler can run late, after the work it interrupted has ended) is still `interrupted`."""
    try:
        return _main(argv)
    except KeyboardInterrupt:
        if _debug_asked(argv):
            raise
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def entry() -> None:
    """The process entry point (`python -m collector`, the `tokenbench` script): main's status, and a signal
    arriving once the command has ended cannot turn that status into a kill by SIGINT."""
    code = main()
    for sig in INTERRUPT_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    # CPython marks a KeyboardInterrupt that ends any exec() of source text as unhandled, even one the caller
    # then caught (dbt's Ctrl-C is), and at exit kills the process with SIGINT instead of exiting with `code`
    # (rc -2, not 130). The next exec() of source text clears that mark; this one does nothing else.
    exec("pass")
    raise SystemExit(code)


def _debug_asked(argv: Sequence[str] | None) -> bool:
    """--debug among the arguments, before they are parsed (parsing itself may be what fails)."""
    return "--debug" in (sys.argv[1:] if argv is None else argv)


def _main(argv: Sequence[str] | None) -> int:
    with interrupt_handlers():
        debug = _debug_asked(argv)
        try:
            args = parser().parse_args(argv)
            debug = args.debug
            level = logging.DEBUG if args.debug else logging.WARNING
            logging.basicConfig(level=level, format="%(levelname)s %(message)s")
            return int(command_module(args.command).run(args))
        except KeyboardInterrupt:
            if debug:
                raise
            print("interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
        except UserError as exc:
            if debug:
                raise
            if _Interrupts.seen:  # the error is the interrupt's doing (e.g. dbt stopped by it)
                print("interrupted", file=sys.stderr)
                return EXIT_INTERRUPTED
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except OSError as exc:
            if debug:
                raise
            print(f"error: {os_error_line(exc)}", file=sys.stderr)
            return 1
