"""`sim` subcommand: run the simulated OpenAI-compatible LLM server in the foreground."""

from __future__ import annotations

import argparse
from typing import Any

from pydantic import ValidationError

from collector.errors import ConfigError


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
    parser.add_argument(
        "--instance-type", default="g5.4xlarge", help="EC2 instance type to imitate (default: %(default)s)"
    )
    parser.add_argument(
        "--model", default="llama-3.1-8b", help="model profile key or Hugging Face id (default: %(default)s)"
    )
    parser.add_argument(
        "--served-model-name", default=None, help="model name clients must send (default: the model's Hugging Face id)"
    )
    parser.add_argument(
        "--mean-output-tokens",
        type=float,
        default=None,
        help="mean natural completion length in tokens, capped by max_tokens (default: 40)",
    )
    parser.add_argument("--seed", type=int, default=None, help="seed of the per-request random draws (default: 0)")
    parser.add_argument(
        "--speedup",
        type=float,
        default=None,
        help="divide every modeled duration by this (>= 1), for fast tests only (default: 1)",
    )
    parser.add_argument(
        "--tensor-parallel",
        type=int,
        default=None,
        help="GPUs to shard the model over (default: all GPUs of the instance)",
    )
    parser.add_argument(
        "--exit-on-stdin-close",
        action="store_true",
        help="stop when standard input closes, so the server dies with the process that started it",
    )
    return parser


def _settings(args: argparse.Namespace) -> Any:
    # Imported here so that other subcommands do not pay for loading the simulator (and aiohttp).
    from collector.sim.settings import SimSettings

    values = {
        "instance_type": args.instance_type,
        "model": args.model,
        "served_model_name": args.served_model_name,
        "mean_output_tokens": args.mean_output_tokens,
        "seed": args.seed,
        "speedup": args.speedup,
        "tensor_parallel": args.tensor_parallel,
    }
    try:
        return SimSettings(**{k: v for k, v in values.items() if v is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        option = "--" + str(first["loc"][0]).replace("_", "-") if first["loc"] else "sim"
        raise ConfigError(f"invalid {option}: {first['msg']}") from exc


def run(args: argparse.Namespace) -> int:
    """Build the settings from parsed arguments and serve until interrupted."""
    from collector.sim.server import run_server

    settings = _settings(args)
    run_server(settings, args.host, args.port, exit_on_stdin_close=args.exit_on_stdin_close)
    return 0
