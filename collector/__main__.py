"""Entry point for `python -m collector`."""

from collector.cli import entry

entry()
