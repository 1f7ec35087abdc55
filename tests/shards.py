"""Host shards for end-to-end tests: one simulator every shard reaches, the config they share, and a shard started
as a user starts it (`collector run --shard i/n --run-id ID`), each collector on this host standing for a host."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from collector.sim.server import READY_LINE_PREFIX
from tests.conftest import REPO, config_dict, sim_experiment, start_cli, write_config


@pytest.fixture(scope="module")
def simulator() -> Iterator[str]:
    """`collector sim` on a free port: the base URL every shard points at."""
    cmd = [sys.executable, "-m", "collector", "sim", "--port", "0", "--speedup", "10", "--served-model-name", "sim-8b"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith(READY_LINE_PREFIX), line
        yield line[len(READY_LINE_PREFIX) :].strip()
    finally:
        proc.terminate()
        proc.wait(10)


def shard_config(path: Path, base_url: str, **overrides: Any) -> Path:
    """One level of concurrency 4, 16 requests, against the simulator at `base_url`."""
    endpoint = {"type": "openai", "base_url": base_url + "/v1", "served_model_name": "sim-8b"}
    exp = sim_experiment(**{"endpoint": endpoint, "concurrency_levels": [4], "requests_per_level": 16, **overrides})
    return write_config(path, config_dict([exp]))


def start_shard(
    cfg: Path, results: Path | str, shard: str, run_id: str, *extra: str, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """`collector run --shard SHARD --run-id RUN_ID --no-build` into `results` (a folder or an S3 URL)."""
    return start_cli(
        *("run", "--config", str(cfg), "--results-dir", str(results)),
        *("--shard", shard, "--run-id", run_id, "--no-build", *extra),
        env=env,
    )
