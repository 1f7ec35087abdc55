"""Ctrl-C and SIGTERM through the real CLI: one line `interrupted`, exit 130, no traceback, no stray process."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.conftest import REPO, config_dict, sim_experiment, write_config

PROMPT_LINE = (
    b'{"messages": [{"role": "user", "content": "hello there world"}, {"role": "assistant", "content": "hi"}]}\n'
)


def _start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "collector", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(condition: Callable[[], bool], proc: subprocess.Popen[str], what: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if proc.poll() is not None:
            _, err = proc.communicate()
            pytest.fail(f"the command ended (rc {proc.returncode}) before {what}: {err[-2000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def _has_open(proc: subprocess.Popen[str], name: str) -> bool:
    try:
        return any(Path(f.path).name == name for f in psutil.Process(proc.pid).open_files())
    except psutil.Error:
        return False


def _assert_interrupted(proc: subprocess.Popen[str], sig: signal.Signals) -> str:
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-3000:]
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == "interrupted", err[-3000:]
    return err


@pytest.fixture(scope="module")
def big_payload(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A payload file that takes seconds to check, so a signal can land while the config loads."""
    path = tmp_path_factory.mktemp("payload") / "big.jsonl"
    path.write_bytes(PROMPT_LINE * 400_000)
    return path


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"])
def test_signal_during_run_start_up_prints_interrupted_exits_130_and_leaves_no_run(
    tmp_path: Path, big_payload: Path, sig: signal.Signals
) -> None:
    cfg = config_dict([sim_experiment(payloads=["big"])])
    cfg["payloads"].append({"name": "big", "file": str(big_payload)})
    path = write_config(tmp_path / "c.yml", cfg)
    results = tmp_path / "results"
    proc = _start("run", "--config", str(path), "--results-dir", str(results))
    _wait_for(lambda: _has_open(proc, big_payload.name), proc, "the payload file was being read")
    err = _assert_interrupted(proc, sig)
    assert err.strip() == "interrupted"  # nothing else: the config was still loading
    assert not (results / "raw").exists()


def _dbt_log_exists(results: Path) -> bool:
    try:
        return any(results.rglob("dbt.log"))
    except OSError:  # a temporary folder vanished mid-walk
        return False


def _wait_for_dbt(results: Path, proc: subprocess.Popen[str]) -> None:
    _wait_for(lambda: _dbt_log_exists(results), proc, "dbt started")
    time.sleep(1.5)  # well into parsing and building
    assert proc.poll() is None, "the build ended before the signal; the test proves nothing"


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"])
def test_signal_during_build_prints_interrupted_and_exits_130(
    e2e_run: dict[str, Any], tmp_path: Path, sig: signal.Signals
) -> None:
    results = tmp_path / "results"
    shutil.copytree(e2e_run["results"], results, ignore=shutil.ignore_patterns(".dbt", "reports"))
    proc = _start("build", "--results-dir", str(results))
    _wait_for_dbt(results, proc)
    _assert_interrupted(proc, sig)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"])
def test_signal_during_the_build_of_run_prints_interrupted_and_exits_130(tmp_path: Path, sig: signal.Signals) -> None:
    exp = sim_experiment(concurrency_levels=[2], requests_per_level=4, warmup_requests_per_level=0)
    path = write_config(tmp_path / "c.yml", config_dict([exp]))
    results = tmp_path / "results"
    proc = _start("run", "--config", str(path), "--results-dir", str(results))
    _wait_for_dbt(results, proc)
    _assert_interrupted(proc, sig)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "sigint"])
def test_signal_to_collector_app_stops_its_streamlit_server(tmp_path: Path, sig: signal.Signals) -> None:
    port = _free_port()
    proc = _start("app", "--warehouse", str(tmp_path / "absent.duckdb"), "--port", str(port))
    children: list[psutil.Process] = []
    try:
        _wait_for(lambda: _listening(port), proc, f"streamlit listening on {port}", timeout_s=90)
        children = psutil.Process(proc.pid).children(recursive=True)
        assert children, "collector app started no server process"
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, err[-2000:]
        assert "Traceback" not in err
        _, alive = psutil.wait_procs(children, timeout=10)
        assert not alive, f"left running: {[p.pid for p in alive]}"
        assert not _listening(port)
    finally:  # only what this test started
        for process in [*children, psutil.Process(proc.pid)] if proc.poll() is None else children:
            if process.is_running():
                process.kill()
