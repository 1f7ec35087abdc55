"""A run killed after the last build shows as lost in the app at once: its collector's process is gone."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import psutil
import pytest

from collector.landing import MANIFEST_FILE
from collector.outputs import queries
from tests.dbt.builders import build_warehouse, land_run, run_a

pytestmark = pytest.mark.slow


def _pretend_running(run_dir: Path, pid: int, started: float) -> None:
    """Rewrite a manifest as a live collector would have left it: running, heartbeat just now."""
    manifest = json.loads((run_dir / MANIFEST_FILE).read_text())
    manifest.update(
        status="running",
        ended_at=None,
        heartbeat_at=datetime.now(UTC).isoformat(),
        hostname=socket.gethostname(),
        pid=pid,
        process_started_at=datetime.fromtimestamp(started, UTC).isoformat(),
    )
    (run_dir / MANIFEST_FILE).write_text(json.dumps(manifest) + "\n")


def test_a_run_whose_collector_died_after_the_build_is_lost_in_the_app_without_a_rebuild(tmp_path: Path) -> None:
    results = tmp_path / "results"
    run_dir = land_run(results, run_a())
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        _pretend_running(run_dir, alive.pid, psutil.Process(alive.pid).create_time())
        warehouse = build_warehouse(results)  # built mid-run, as `collector build` may be
        assert queries.runs(warehouse)["status"].tolist() == ["running"]  # a live collector: still collecting
        alive.kill()
        alive.wait()
        # no build, no refresh, heartbeat seconds old: the app tells by the process
        assert queries.runs(warehouse)["status"].tolist() == ["lost"]
    finally:
        alive.kill()
