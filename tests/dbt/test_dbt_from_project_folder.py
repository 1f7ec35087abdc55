"""Plain dbt finds the warehouse and the price files by its defaults both from the repo root (--project-dir) and
from models_dbt/ itself, as dbt users run a project: the same marts either way, no env var set."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.dbt.builders import PRICING_DIR, REPO, query

pytestmark = pytest.mark.slow


def _checkout(built: Path, dest: Path) -> Path:
    """The parts of a checkout dbt reads (models_dbt/ with its links, pricing/) and a results/ holding the built
    scenario's raw files, with raw.* pointed at them."""
    from collector.warehouse import refresh

    shutil.copytree(
        REPO / "models_dbt", dest / "models_dbt", symlinks=True, ignore=shutil.ignore_patterns("target", "logs")
    )
    shutil.copytree(PRICING_DIR, dest / "pricing")
    shutil.copytree(built.parent, dest / "results", ignore=shutil.ignore_patterns(".dbt"))
    refresh(dest / "results")
    return dest


def _dbt(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENBENCH_")}
    dbt = Path(sys.executable).with_name("dbt")
    return subprocess.run([str(dbt), "build", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def _marts(warehouse: Path) -> list[dict[str, object]]:
    return query(
        warehouse,
        "select experiment_name, payload_file, concurrency, latency_p95, cost_per_10k_txn "
        "from marts.fct_concurrency_metrics order by all",
    )


def test_dbt_build_from_the_project_folder_and_from_the_root_give_the_same_marts(built: Path, tmp_path: Path) -> None:
    root = _checkout(built, tmp_path / "checkout")
    warehouse = root / "results" / "tokenbench.duckdb"
    from_folder = _dbt(root / "models_dbt")
    assert from_folder.returncode == 0, from_folder.stdout[-3000:]
    assert not (root / "models_dbt" / "results" / "results").exists()
    first = _marts(warehouse)
    from_root = _dbt(root, "--project-dir", "models_dbt", "--profiles-dir", "models_dbt")
    assert from_root.returncode == 0, from_root.stdout[-3000:]
    assert _marts(warehouse) == first == _marts(built)
    assert len(first) > 4 and all(r["cost_per_10k_txn"] is not None for r in first if r["experiment_name"] == "vllm-g5")
