"""Bad input to `collector run`: each is one `error:` line naming the file and field or line, before any run folder."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from collector.config import load_config
from collector.endpoints import simulator_log_path
from collector.errors import ConfigError
from tests.conftest import PRICING, config_dict, run_cli, sim_experiment, write_config

Case = Callable[[Path, dict[str, Any]], Path]


def _yaml(text: bytes) -> Case:
    def make(work: Path, cfg: dict[str, Any]) -> Path:
        path = work / "bad.yml"
        path.write_bytes(text)
        return path

    return make


def _exp(**changes: Any) -> Case:
    def make(work: Path, cfg: dict[str, Any]) -> Path:
        cfg["experiments"][0].update(changes)
        return write_config(work / "bad.yml", cfg)

    return make


def _payload(content: bytes) -> Case:
    def make(work: Path, cfg: dict[str, Any]) -> Path:
        (work / "prompts.jsonl").write_bytes(content)
        cfg["payloads"].append({"name": "file", "file": "prompts.jsonl"})
        return write_config(work / "bad.yml", cfg)

    return make


def _prices(file: str, edit: Callable[[str], str]) -> Case:
    def make(work: Path, cfg: dict[str, Any]) -> Path:
        pricing = work / "pricing"
        shutil.copytree(PRICING, pricing)  # a private copy of the frozen prices, which this test edits
        (pricing / file).write_text(edit((pricing / file).read_text()))
        cfg["pricing_dir"] = "pricing"
        return write_config(work / "bad.yml", cfg)

    return make


def _text_price(text: str) -> str:
    return text.replace("g5.4xlarge,us-east-1,1.624,", "g5.4xlarge,us-east-1,cheap,")


def _no_price_column(text: str) -> str:
    return text.replace("usd_per_hour", "usd_hourly", 1)


SAFE_NAME = "may only hold letters, digits, '_', '.', '-' (at most 100, not starting with '.')"


# (case, the whole line: {config} is the config file, {work} its folder). Each names the file and field or line
# at fault, then the cause; a payload or price file at fault is named itself (after the config's field for a
# payload file, alone for the price file, which is read for every config).
CASES: dict[str, tuple[Case, str]] = {
    "binary_config": (
        _yaml(b"\x7fELF\x02\x01\x01\x00\x00\x00" * 20),
        "{config}: binary file (NUL byte at offset 7), not a config file",
    ),
    "non_utf8_config": (_yaml(b"run_name: caf\xe9\n"), "{config}: line 1: not UTF-8 text (byte 13: 0xe9)"),
    "infinite_timeout": (
        _exp(request_timeout_s=float("inf")),
        "{config}: experiments[0].request_timeout_s: Input should be a finite number",
    ),
    "nan_timeout": (
        _exp(request_timeout_s=float("nan")),
        "{config}: experiments[0].request_timeout_s: Input should be a finite number",
    ),
    "nan_in_extra_parameters": (
        _exp(inference_parameters={"extra": {"top_k": float("nan")}}),
        "{config}: experiments[0].inference_parameters: extra.top_k must be a finite number, not nan",
    ),
    "concurrency_above_100k": (
        _exp(concurrency_levels=[1, 100_001]),
        "{config}: experiments[0].concurrency_levels[1]: Input should be less than or equal to 100000",
    ),
    "concurrency_above_2_31": (
        _exp(concurrency_levels=[2**31 + 1]),
        "{config}: experiments[0].concurrency_levels[0]: Input should be less than or equal to 100000",
    ),
    "requests_per_level_absurd": (
        _exp(requests_per_level=10**12),
        "{config}: experiments[0].requests_per_level: Input should be less than or equal to 10000000",
    ),
    "instance_count_absurd": (
        _exp(instance_count=10**9),
        "{config}: experiments[0].instance_count: Input should be less than or equal to 10000",
    ),
    "experiment_name_with_path": (
        _exp(name="../../escaped"),
        "{config}: experiments[0].name: '../../escaped' " + SAFE_NAME,
    ),
    "experiment_name_markdown_link": (
        _exp(name="[x](javascript:alert(1))"),
        "{config}: experiments[0].name: '[x](javascript:alert(1))' " + SAFE_NAME,
    ),
    "non_utf8_payload": (
        _payload(b'{"prompt": "ok"}\n{"prompt": "caf\xe9"}\n'),
        "{config}: payloads[2].file: {work}/prompts.jsonl:2: not UTF-8 text (byte 15 of the line)",
    ),
    "binary_payload": (
        _payload(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03"),
        "{config}: payloads[2].file: {work}/prompts.jsonl:1: binary data (NUL byte), not JSON lines",
    ),
    "empty_payload": (
        _payload(b""),
        "{config}: payloads[2].file: {work}/prompts.jsonl: payload file has no prompts "
        "(one JSON object per line expected)",
    ),
    "non_json_payload": (
        _payload(b'{"prompt": "ok"}\nnot json\n'),
        "{config}: payloads[2].file: {work}/prompts.jsonl:2: bad payload row: not JSON (Expecting value, column 1)",
    ),
    "deeply_nested_payload": (
        _payload(b"[" * 100_000 + b"]" * 100_000 + b"\n"),
        "{config}: payloads[2].file: {work}/prompts.jsonl:1: bad payload row: JSON nested too deeply",
    ),
    "text_price": (
        _prices("instance_prices.csv", _text_price),
        "{work}/pricing/instance_prices.csv: line 4: usd_per_hour: not a number: 'cheap'",
    ),
    "missing_price_column": (
        _prices("instance_prices.csv", _no_price_column),
        "{work}/pricing/instance_prices.csv: missing column 'usd_per_hour' "
        "(columns: instance_type, region, usd_hourly, price_read_on, source)",
    ),
}


def _line(case: str, work: Path, config: Path) -> str:
    return CASES[case][1].format(config=config, work=work)


@pytest.fixture
def work(tmp_path: Path) -> Path:
    return tmp_path


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_config_error_naming_the_file(work: Path, case: str) -> None:
    make, _ = CASES[case]
    path = make(work, config_dict([sim_experiment()]))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == _line(case, work, path)


CLI_CASES = ["binary_config", "infinite_timeout", "non_utf8_payload", "empty_payload", "text_price"]


@pytest.mark.parametrize("case", CLI_CASES)
def test_cli_run_on_bad_input_prints_one_line_and_creates_no_run_folder(work: Path, case: str) -> None:
    make, _ = CASES[case]
    path = make(work, config_dict([sim_experiment()]))
    results = work / "results"
    proc = run_cli("run", "--config", str(path), "--results-dir", str(results))
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == f"error: {_line(case, work, path)}\n"
    assert proc.stdout == ""
    assert not results.exists()  # refused before anything was written


def test_safe_names_are_accepted(work: Path) -> None:
    cfg = config_dict([sim_experiment(name="llama-3.1_8b.g5")], run_name="Run_2026-11.a")
    config = load_config(write_config(work / "ok.yml", cfg))
    assert (config.run_name, config.experiments[0].name) == ("Run_2026-11.a", "llama-3.1_8b.g5")


def test_run_name_starting_with_a_dot_is_refused(work: Path) -> None:
    path = write_config(work / "bad.yml", config_dict([sim_experiment()], run_name=".hidden"))
    with pytest.raises(ConfigError, match=r"bad\.yml: run_name: '\.hidden' may only hold"):
        load_config(path)


def test_model_id_stays_free_text(work: Path) -> None:
    hostile = "[x](javascript:alert(1)) <script>alert(1)</script> ../../x"
    cfg = config_dict([sim_experiment(model_id=hostile)])
    assert load_config(write_config(work / "ok.yml", cfg)).experiments[0].model_id == hostile


@pytest.mark.parametrize("name", ["../../escaped", "/etc/passwd", "..", "a/../../b", "[x](javascript:alert(1))", "é"])
def test_simulator_log_stays_inside_the_log_folder_whatever_the_name(work: Path, name: str) -> None:
    log_dir = work / "logs" / "run"
    path = simulator_log_path(log_dir, name)
    assert path.parent == log_dir and path.name.startswith("simulator-") and path.name.endswith(".log")
    assert "/" not in path.name and ".." not in path.name.removesuffix(".log")


def test_an_api_key_with_a_trailing_newline_is_one_line_before_any_run_folder(tmp_path: Path) -> None:
    exp = sim_experiment(
        endpoint={"type": "openai", "base_url": "http://127.0.0.1:9/v1", "served_model_name": "m",
                  "api_key_env": "TB_TEST_KEY"},
    )  # fmt: skip
    cfg = write_config(tmp_path / "c.yml", config_dict([exp]))
    proc = run_cli(
        "run", "--config", str(cfg), "--results-dir", str(tmp_path / "r"), env={"TB_TEST_KEY": "sk-secret\n"}
    )
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "experiments[0].endpoint.api_key_env: TB_TEST_KEY holds whitespace" in proc.stderr
    assert "sk-secret" not in proc.stderr and not (tmp_path / "r" / "raw").exists()
