"""Shared test helpers: paths, and configs written the way a user writes them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

from collector.config import load_config
from collector.errors import ConfigError
from collector.landing import run_dirs

REPO = Path(__file__).resolve().parents[1]
# Tests price with a frozen copy of pricing/, so a user editing the project's prices cannot break them.
PRICING = REPO / "tests" / "fixtures" / "pricing"


def pytest_configure(config: pytest.Config) -> None:
    """No test reaches the Hugging Face hub or reads a user's cache of it: a model_id's tokenizer is never
    found, so experiments without `tokenizer:` use the fallback counter (inherited by every CLI the tests run)."""
    hf_home = Path(tempfile.mkdtemp(prefix="tokenbench-test-hf-"))
    os.environ["HF_HOME"] = str(hf_home)
    os.environ["HF_HUB_CACHE"] = str(hf_home / "hub")
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ["TOKENBENCH_PRICING_DIR"] = str(PRICING)  # `collector build` without a config prices with it too


def pytest_unconfigure(config: pytest.Config) -> None:
    hf_home = os.environ.get("HF_HOME", "")
    if Path(hf_home).name.startswith("tokenbench-test-hf-"):
        shutil.rmtree(hf_home, ignore_errors=True)


def run_cli(*args: str, timeout: float = 120, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m collector ARGS` from the repo root, as a user types it; output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "collector", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **env} if env else None,
    )


def start_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """`python -m collector ARGS` started from the repo root, as run_cli runs it, for a test that acts on it while it
    runs (kills it, watches its files); output piped as text."""
    return subprocess.Popen(
        [sys.executable, "-m", "collector", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env} if env else None,
    )


def fetch(warehouse: Path, sql: str, store: Any = None) -> list[tuple[Any, ...]]:
    """Rows of a query on a warehouse file, opened read-only; `store` (a RawStore) when its raw views read S3."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        if store is not None:
            store.attach(con)
        return con.execute(sql).fetchall()
    finally:
        con.close()


def quantile_cont(values: list[float], q: float) -> float:
    """Linear interpolation between order statistics (numpy's default, DuckDB's quantile_cont), for checking the
    marts' percentiles by hand."""
    xs = sorted(values)
    pos = (len(xs) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def sim_experiment(name: str = "sim", **overrides: Any) -> dict[str, Any]:
    """An experiment on the built-in simulator, fast (speedup) unless overridden."""
    exp: dict[str, Any] = {
        "name": name,
        "model_id": "meta-llama/Llama-3.1-8B-Instruct",
        "endpoint": {"type": "simulated", "model": "llama-3.1-8b", "speedup": 20, "mean_output_tokens": 20},
        "instance_type": "g5.4xlarge",
        "concurrency_levels": [1, 4],
        "requests_per_level": 8,
        "warmup_requests_per_level": 1,
        "payloads": ["short"],
        "inference_parameters": {"max_tokens": 40},
        "request_timeout_s": 30,
    }
    exp.update(overrides)
    return exp


def config_dict(experiments: list[dict[str, Any]], **overrides: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "run_name": "test-run",
        "payloads": [
            {"name": "short", "synthetic": {"min_tokens": 20, "max_tokens": 60, "count": 10, "seed": 3}},
            {"name": "en_500-1000", "synthetic": {"min_tokens": 500, "max_tokens": 1000, "count": 10, "seed": 4}},
        ],
        "experiments": experiments,
        "report": {
            "latency_budget_s": 2,
            "cost_per_10k_txn_budget_usd": 20,
            "error_rate_budget": 0,
            "dataset_of_interest": "short",
        },
        "pricing_dir": str(PRICING),
    }
    cfg.update(overrides)
    return cfg


def write_config(path: Path, cfg: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def config_error(
    tmp_path: Path, mutate: Callable[[dict[str, Any]], object] | None = None, cfg: dict[str, Any] | None = None
) -> str:
    """The error that loading a bad config gives: `cfg` (a one-experiment config by default), changed by
    `mutate`, written to tmp_path/bad.yml. It must be one line that names the file."""
    cfg = config_dict([sim_experiment()]) if cfg is None else cfg
    if mutate is not None:
        mutate(cfg)
    path = write_config(tmp_path / "bad.yml", cfg)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    return message


@pytest.fixture
def repo() -> Path:
    return REPO


def e2e_config() -> dict[str, Any]:
    """Two serving setups on the same bucket pair, so comparisons and the no-collapse rule are exercised."""
    return config_dict(
        [
            sim_experiment(
                name="llama8b-g5-stackA",
                endpoint={"type": "simulated", "speedup": 10, "mean_output_tokens": 30},
                concurrency_levels=[1, 4],
                requests_per_level=8,
                payloads=["short", "en_500-1000"],
            ),
            sim_experiment(
                name="llama8b-g5-stackB",
                endpoint={"type": "simulated", "speedup": 10, "mean_output_tokens": 30, "seed": 7},
                concurrency_levels=[1, 4],
                requests_per_level=8,
                payloads=["short", "en_500-1000"],
            ),
        ],
        run_name="e2e",
        report={
            "latency_budget_s": 0.3,
            "cost_per_10k_txn_budget_usd": 20,
            "error_rate_budget": 0,
            "dataset_of_interest": "en_500-1000",
        },
    )


@pytest.fixture(scope="session")
def e2e_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One real CLI run (sweep, dbt build, summary) shared by the end-to-end and app tests."""
    work = tmp_path_factory.mktemp("e2e")
    cfg = write_config(work / "e2e.yml", e2e_config())
    results = work / "results"
    proc = run_cli("run", "--config", str(cfg), "--results-dir", str(results), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_id = run_dirs(results)[0].name
    return {
        "results": results,
        "warehouse": results / "tokenbench.duckdb",
        "run_id": run_id,
        "config": cfg,
        "stdout": proc.stdout,
        "stderr": proc.stderr,
    }


OPEN_LOOP_SIM = {"type": "simulated", "speedup": 10, "mean_output_tokens": 20}


@pytest.fixture(scope="session")
def open_loop_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One real CLI run of open-loop levels (rates 10/s and 400/s through 2 slots), a rate sweep and a closed level
    repeated three times, shared by the open-loop and repeats end-to-end tests and the app tests."""
    work = tmp_path_factory.mktemp("open-loop")
    cfg = config_dict(
        [
            # 10/s is easy for the simulator; 400/s with 2 in flight at most cannot be kept: sends wait for a slot.
            sim_experiment(
                name="rates",
                endpoint=OPEN_LOOP_SIM,
                concurrency_levels=[],
                load={"model": "rate", "rates_per_s": [10, 400], "arrival": "constant", "max_in_flight": 2},
                requests_per_level=30,
            ),
            sim_experiment(
                name="sweep",
                endpoint=OPEN_LOOP_SIM,
                concurrency_levels=[1, 4],
                load={"model": "sweep", "rate_count": 2},
                requests_per_level=16,
            ),
            # A closed level run three times (tests/test_repeats_end_to_end.py).
            sim_experiment(name="repeated", concurrency_levels=[2], requests_per_level=8, repeats_per_level=3),
        ],
        run_name="open-loop",
    )
    results = work / "results"
    proc = run_cli(
        "run", "--config", str(write_config(work / "c.yml", cfg)), "--results-dir", str(results), timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| rates | short | rate 10/s | 31/31 requests" in proc.stderr
    return {"results": results, "warehouse": results / "tokenbench.duckdb", "stderr": proc.stderr}
