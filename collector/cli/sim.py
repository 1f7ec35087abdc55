"""`sim` subcommand: run the simulated OpenAI-compatible LLM server in the foreground."""

from __future__ import annotations

import argparse
import typing
from typing import Any

from pydantic import ValidationError
from pydantic.fields import FieldInfo

from collector.errors import ConfigError
from collector.sim.settings import CLI_SETTINGS, SimSettings, option


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the `sim` subcommand to an argparse subparsers object and return its parser."""
    parser = subparsers.add_parser(
        "sim",
        help="run a simulated OpenAI-compatible LLM server",
        description=(
            "Serve /v1/completions and /v1/chat/completions on HOST:PORT with timings from a physical model "
            "of the chosen instance type and model. Prints one line "
            "'tokenbench simulator listening on http://HOST:PORT' once ready."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument(
        "--port", type=int, default=8000, help="port to listen on; 0 picks a free one (default: %(default)s)"
    )
    # The simulator's settings: names, types, defaults and help come from SimSettings.
    for name in CLI_SETTINGS:
        field = SimSettings.model_fields[name]
        parser.add_argument(option(name), dest=name, type=_value_type(field), default=field.default, help=_help(field))
    parser.add_argument(
        "--exit-on-stdin-close",
        action="store_true",
        help="stop when standard input closes, so the server dies with the process that started it",
    )
    return parser


def _value_type(field: FieldInfo) -> type:
    """The type an option's value is parsed as: the field's, without its None."""
    kinds = [a for a in typing.get_args(field.annotation) if a is not type(None)] or [field.annotation]
    if len(kinds) != 1 or kinds[0] not in (str, int, float):
        raise TypeError(f"a sim option must be a str, int or float setting, not {field.annotation}")
    return typing.cast(type, kinds[0])


def _help(field: FieldInfo) -> str:
    text = (field.description or "").replace("%", "%%")  # argparse formats help with %
    return text if field.default is None else f"{text.removesuffix('.')} (default: {field.default})"


def _settings(args: argparse.Namespace) -> SimSettings:
    try:
        return SimSettings(**{name: getattr(args, name) for name in CLI_SETTINGS})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = option(str(first["loc"][0])) if first["loc"] else "sim"
        raise ConfigError(f"invalid {where}: {first['msg']}") from exc


def run(args: argparse.Namespace) -> int:
    """Build the settings from parsed arguments and serve until interrupted."""
    # Imported here so that other subcommands do not pay for loading the simulator (and aiohttp.web).
    from collector.sim.server import run_server

    settings = _settings(args)
    run_server(settings, args.host, args.port, exit_on_stdin_close=args.exit_on_stdin_close)
    return 0
