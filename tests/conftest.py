"""Shared test helpers: paths, and configs written the way a user writes them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


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
        "pricing_dir": str(REPO / "pricing"),
    }
    cfg.update(overrides)
    return cfg


def write_config(path: Path, cfg: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


@pytest.fixture
def repo() -> Path:
    return REPO
