"""Engines the collector starts itself (`type: container` via a stand-in docker, `type: process`): launch
arguments from the stack data, readiness, teardown of exactly what was started, and each startup fault as one line."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from collector.config import load_config
from collector.landing import run_dirs
from collector.stacks.catalog import docker_run_argv, stacks
from collector.stacks.endpoint_config import ContainerEndpoint
from tests.conftest import REPO, config_dict, sim_experiment, write_config

FAKES = REPO / "tests" / "fakes"
SECRET = "hf_SECRET_value_123"
MODEL = "meta-llama/Llama-3.1-8B-Instruct"

# What each stack must be asked, for tensor_parallel 2, max_model_len 4096, max_batch 32, bfloat16 where it has them.
EXPECTED = {
    "vllm": ["--tensor-parallel-size 2", "--max-model-len 4096", "--max-num-seqs 32", "--dtype bfloat16",
             f"--model {MODEL}", "--port 8000"],
    "sglang": ["--tp-size 2", "--context-length 4096", "--max-running-requests 32", "--dtype bfloat16",
               f"--model-path {MODEL}", "--port 30000"],
    "tgi": ["--num-shard 2", "--max-total-tokens 4096", "--max-concurrent-requests 32", "--dtype bfloat16",
            f"--model-id {MODEL}", "--port 80"],
    "djl-lmi": ["--env TENSOR_PARALLEL_DEGREE=2", "--env OPTION_MAX_MODEL_LEN=4096",
                "--env OPTION_MAX_ROLLING_BATCH_SIZE=32", "--env OPTION_DTYPE=bf16", f"--env HF_MODEL_ID={MODEL}"],
    "trtllm": ["--tp_size 2", "--max_seq_len 4096", "--max_batch_size 32", "--backend pytorch", "--port 8000"],
    "llama.cpp": ["--ctx-size 4096", "--parallel 32", f"--alias {MODEL}", "--port 8080"],
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_stack_docker_command_carries_the_experiment_settings_and_names_the_token_only(name: str, monkeypatch) -> None:
    monkeypatch.setenv("MY_HF", SECRET)
    stack = stacks()[name]
    settings: dict[str, Any] = {"max_model_len": 4096, "max_batch": 32}
    if "tensor_parallel" in stack.settings_used():
        settings["tensor_parallel"] = 2
    if "bfloat16" in stack.dtypes:
        settings["dtype"] = "bfloat16"
    ep = ContainerEndpoint(type="container", stack=name, hf_token_env="MY_HF", port=18000, **settings)
    launch = docker_run_argv(stack, ep, MODEL, 18000)
    line = " ".join(launch.argv)
    for flag in EXPECTED[name]:
        assert flag in line, (flag, line)
    assert f"-p 127.0.0.1:18000:{stack.container_port}" in line
    assert "--env HF_TOKEN " in line + " " and SECRET not in line
    assert launch.secret_env == {"HF_TOKEN": "MY_HF"}
    assert stack.source.startswith("http") and stack.read_on


def test_stack_refuses_a_setting_it_cannot_take() -> None:
    with pytest.raises(ValueError, match=r"llama\.cpp has no launch setting for tensor_parallel"):
        ContainerEndpoint(type="container", stack="llama.cpp", tensor_parallel=2)
    with pytest.raises(ValueError, match="cannot set dtype 'float32'"):
        ContainerEndpoint(type="container", stack="tgi", dtype="float32")


@pytest.mark.parametrize(
    "name", ["vllm-g6e-container.yml", "sglang-vs-vllm-g5.yml", "llama3-1-8b-g5-djl-container.yml"]
)
def test_example_engine_configs_validate(name: str) -> None:
    config = load_config(REPO / "configs" / name)
    assert all(e.endpoint.type == "container" for e in config.experiments)
    if name.startswith("sglang"):
        assert [e.endpoint.stack for e in config.experiments] == ["sglang", "vllm"]
        assert len({e.instance_type for e in config.experiments}) == 1


# -- lifecycle against the stand-in docker and the simulator as an engine ----------------------------------


def fake_docker_env(tmp_path: Path, mode: str = "ok", docker: bool = True) -> dict[str, str]:
    path = os.environ["PATH"] if docker else "/usr/bin:/bin"
    return {
        "PATH": f"{FAKES}:{path}" if docker else f"{Path(sys.executable).parent}:{path}",
        "FAKE_DOCKER_STATE": str(tmp_path / "docker"),
        "FAKE_DOCKER_PYTHON": sys.executable,
        "FAKE_DOCKER_MODE": mode,
        "MY_HF": SECRET,
    }


def container_exp(**endpoint: Any) -> dict[str, Any]:
    ep = {"type": "container", "stack": "vllm", "hf_token_env": "MY_HF", "startup_timeout_s": 30, **endpoint}
    return sim_experiment("box", endpoint=ep, concurrency_levels=[2], requests_per_level=6)


def sim_command(speedup: int = 20) -> list[str]:
    return [sys.executable, "-m", "collector", "sim", "--host", "{host}", "--port", "{port}", "--instance-type",
            "g5.4xlarge", "--speedup", str(speedup), "--served-model-name", "{served_model_name}"]  # fmt: skip


def docker_calls(tmp_path: Path) -> list[list[str]]:
    file = tmp_path / "docker" / "calls.jsonl"
    return [json.loads(line) for line in file.read_text().splitlines()] if file.is_file() else []


def run_in_tmp(tmp_path: Path, exp: dict[str, Any], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    cfg = write_config(tmp_path / "c.yml", config_dict([exp]))
    full = {**os.environ, **env}
    return subprocess.run(
        [sys.executable, "-m", "collector", "run", "--config", str(cfg), "--results-dir", str(tmp_path / "res"),
         "--no-build"],
        cwd=REPO, capture_output=True, text=True, timeout=120, env=full,
    )  # fmt: skip


@pytest.mark.slow
def test_container_run_lands_rows_and_stops_and_removes_exactly_the_container_it_started(tmp_path, monkeypatch) -> None:
    from collector.runner import collect

    for key, value in fake_docker_env(tmp_path).items():
        monkeypatch.setenv(key, value)
    cfg = write_config(tmp_path / "c.yml", config_dict([container_exp()]))
    outcome = collect(cfg, tmp_path / "res")
    assert outcome.status == "completed", outcome
    assert outcome.requests == 7 and outcome.errors == 0  # 6 measured + 1 warm-up, all answered
    calls = docker_calls(tmp_path)
    run = next(c for c in calls if c[0] == "run")
    assert SECRET not in json.dumps(calls)  # the token went by name, docker read it from its environment
    cid = next(p.name for p in (tmp_path / "docker" / "containers").iterdir())
    assert json.loads((tmp_path / "docker" / "containers" / cid / "removed.json").read_text())["env_from_client"] == {
        "HF_TOKEN": SECRET
    }
    assert ["stop", "-t", "10", cid] in calls and ["rm", "-f", cid] in calls
    assert all(c[-1] == cid for c in calls if c[0] in ("stop", "rm", "logs", "inspect"))
    assert "--served-model-name" in run
    record = json.loads(next((outcome_dir := tmp_path / "res").rglob("launch-box.json")).read_text())
    assert record["container_id"] == cid and record["image_digest"].startswith("vllm/vllm-openai@sha256:")
    assert "HF_TOKEN" in record["launch_command"] and SECRET not in json.dumps(record)
    assert "listening on" in next(outcome_dir.rglob("engine-box.log")).read_text()


@pytest.mark.slow
def test_process_run_lands_rows_and_leaves_no_engine_running(tmp_path) -> None:
    exp = sim_experiment("proc", endpoint={"type": "process", "command": sim_command(), "startup_timeout_s": 30},
                         concurrency_levels=[2], requests_per_level=6)  # fmt: skip
    proc = run_in_tmp(tmp_path, exp, {})
    assert proc.returncode == 0, proc.stderr
    record = json.loads(next((tmp_path / "res").rglob("launch-proc.json")).read_text())
    (run_dir,) = run_dirs(tmp_path / "res")
    rows = pq_or_jsonl_rows(run_dir)
    # 6 measured + 1 warm-up at concurrency 2, every one answered by the engine the run started
    assert sorted((r["experiment_name"], r["concurrency"], r["is_warmup"], r["status"]) for r in rows) == [
        ("proc", 2, False, "success")
    ] * 6 + [("proc", 2, True, "success")]
    assert all(r["endpoint_url"].startswith(record["base_url"]) for r in rows), (rows[0]["endpoint_url"], record)
    assert not psutil.pid_exists(record["pid"]) or psutil.Process(record["pid"]).status() == "zombie"
    assert "ready after" in proc.stderr


FAULTS = [
    ("missing_docker", "ok", {}, "docker not found on PATH"),
    ("pull_fail", "pull_fail", {}, "pull access denied"),
    ("exit_during_load", "exit_during_load", {}, "exited (code"),
    ("timeout", "never_ready", {"startup_timeout_s": 3}, "not ready within 3 s"),
]


@pytest.mark.parametrize(("case", "mode", "endpoint", "cause"), FAULTS, ids=[f[0] for f in FAULTS])
def test_container_start_fault_is_one_line_naming_cause_and_cleanup(tmp_path, case, mode, endpoint, cause) -> None:
    env = fake_docker_env(tmp_path, mode, docker=case != "missing_docker")
    proc = run_in_tmp(tmp_path, container_exp(**endpoint), env)
    assert proc.returncode != 0
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error") or "Traceback" in ln]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert cause in lines[0], lines[0]
    if case == "exit_during_load":
        assert "ERROR CUDA out of memory" in lines[0]  # the engine's last log lines
    started = [p.name for p in (tmp_path / "docker" / "containers").glob("*")] if case != "missing_docker" else []
    for cid in started:
        assert (tmp_path / "docker" / "containers" / cid / "removed.json").is_file()
        assert f"container {cid[:12]} stopped and removed" in lines[0], lines[0]
    if case in ("missing_docker", "pull_fail"):
        assert started == [] and "run" not in [c[0] for c in docker_calls(tmp_path) if case == "missing_docker"]


def test_port_already_taken_is_one_line_and_starts_nothing(tmp_path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        proc = run_in_tmp(tmp_path, container_exp(port=port), fake_docker_env(tmp_path))
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert f"port {port} on this host is already in use; nothing was started" in proc.stderr
    assert docker_calls(tmp_path) == []


@pytest.mark.slow
def test_kill_9_of_the_collector_leaves_no_engine_running(tmp_path) -> None:
    # Slow enough that the sweep is still running when the collector is killed.
    exp = sim_experiment("k9", endpoint={"type": "process", "command": sim_command(speedup=1)},
                         concurrency_levels=[1], requests_per_level=500)  # fmt: skip
    cfg = write_config(tmp_path / "c.yml", config_dict([exp]))
    collector = subprocess.Popen(
        [sys.executable, "-m", "collector", "run", "--config", str(cfg), "--results-dir", str(tmp_path / "res"),
         "--no-build"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        started: list[psutil.Process] = []
        while time.monotonic() < deadline:
            started = psutil.Process(collector.pid).children(recursive=True)
            if any("sim" in p.cmdline() for p in started if p.is_running()) and list(
                (tmp_path / "res").rglob("launch-k9.json")
            ):
                break
            time.sleep(0.2)
        assert any("sim" in p.cmdline() for p in started), "the engine never started"
        os.kill(collector.pid, signal.SIGKILL)
        collector.wait()
        _gone, alive = psutil.wait_procs(started, timeout=20)
        assert alive == [], [p.cmdline() for p in alive]
    finally:
        if collector.poll() is None:
            collector.kill()


@pytest.mark.slow
@pytest.mark.parametrize("victim", ["engine", "guard"])
def test_an_engine_lost_mid_sweep_fails_the_run_in_one_line_keeps_its_rows_and_leaves_nothing_running(
    tmp_path, victim
) -> None:
    exp = sim_experiment("gone", endpoint={"type": "process", "command": sim_command(speedup=1)},
                         concurrency_levels=[1, 2], requests_per_level=500)  # fmt: skip
    cfg = write_config(tmp_path / "c.yml", config_dict([exp]))
    collector = subprocess.Popen(
        [sys.executable, "-m", "collector", "run", "--config", str(cfg), "--results-dir", str(tmp_path / "res"),
         "--no-build"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        landed = 0
        while time.monotonic() < deadline and landed < 3:  # the sweep is under way: some rows have landed
            rows = list((tmp_path / "res" / "raw").glob("2*/requests.jsonl"))
            landed = len(rows[0].read_text().splitlines()) if rows else 0
            time.sleep(0.2)
        assert landed >= 3, "the sweep never got going"
        record = json.loads(next((tmp_path / "res").rglob("launch-gone.json")).read_text())
        everything = psutil.Process(collector.pid).children(recursive=True)
        guard = next(p for p in everything if "collector.engine_guard" in p.cmdline())
        os.kill(record["pid"] if victim == "engine" else guard.pid, signal.SIGKILL)
        _, err = collector.communicate(timeout=60)
    finally:
        if collector.poll() is None:
            collector.kill()
    assert collector.returncode == 1 and "Traceback" not in err, err
    (line,) = [ln for ln in err.splitlines() if ln.startswith("error")]
    expected = "exited (code -9) during the sweep" if victim == "engine" else "lost its guard process"
    assert line.startswith("error: gone: engine process ") and expected in line, line
    (run_dir,) = run_dirs(tmp_path / "res")
    manifest = json.loads((run_dir / "run.json").read_text())
    assert manifest["status"] == "failed" and expected in manifest["error_message"]
    requests = pq_or_jsonl_rows(run_dir)
    assert len(requests) >= landed  # nothing already collected was lost
    assert max(r["concurrency"] for r in requests) == 1  # no later level hammered a dead endpoint
    _gone, alive = psutil.wait_procs(everything, timeout=20)
    assert alive == [], [p.cmdline() for p in alive]


def pq_or_jsonl_rows(run_dir: Path) -> list[dict[str, Any]]:
    import duckdb

    parquet = run_dir / "requests.parquet"
    source = f"read_parquet('{parquet}')" if parquet.is_file() else f"read_json_auto('{run_dir / 'requests.jsonl'}')"
    con = duckdb.connect()
    try:
        cur = con.execute(f"select * from {source}")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    finally:
        con.close()
