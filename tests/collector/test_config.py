"""Config validation: the shipped configs load; each kind of bad input is one clear line from the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.config import load_config
from collector.errors import ConfigError
from collector.landing import run_dirs
from collector.pricing import applied_prices, read_prices
from tests.conftest import REPO, config_dict, config_error, run_cli, sim_experiment, write_config


def test_default_config_is_the_simulated_reference_setup() -> None:
    cfg = load_config(REPO / "configs" / "default.yml")
    exp = cfg.experiments[0]
    assert (exp.endpoint.type, exp.instance_type, exp.endpoint.stream) == ("simulated", "g5.4xlarge", True)
    assert [b.name for b in cfg.payloads] == ["en_1-500", "en_500-1000"]
    # The project's own prices, whatever they are today (tests elsewhere price with a frozen copy).
    assert cfg.pricing_dir == REPO / "pricing"
    shipped = read_prices(REPO / "pricing")[0]["g5.4xlarge"]["usd_per_hour"]
    assert applied_prices(cfg)[0]["usd_per_hour"] == pytest.approx(float(shipped))


def test_reference_ec2_config_loads_with_the_reports_budgets() -> None:
    cfg = load_config(REPO / "configs" / "llama3-1-8b-g5-ec2.yml")
    exp = cfg.experiments[0]
    assert exp.endpoint.type == "openai"
    assert exp.concurrency_levels == [1, 2]
    assert (cfg.report.latency_budget_s, cfg.report.cost_per_10k_txn_budget_usd) == (2, 20)
    assert cfg.report.dataset_of_interest == "en_500-1000"
    assert [(b.prepare.min_tokens, b.prepare.max_tokens) for b in cfg.payloads if b.prepare] == [(1, 500), (500, 1000)]
    assert all(b.prepare.template == "llama3" and b.prepare.language == "en" for b in cfg.payloads if b.prepare)
    assert exp.tokenizer == exp.model_id


def test_unknown_key_is_named(tmp_path: Path) -> None:
    msg = config_error(tmp_path, lambda c: c["experiments"][0].update(concurrency=[1]))
    assert "experiments[0].concurrency: unknown key" in msg


def test_unknown_key_in_nested_endpoint_is_named(tmp_path: Path) -> None:
    msg = config_error(tmp_path, lambda c: c["experiments"][0]["endpoint"].update(sped=2))
    assert "experiments[0].endpoint.sped: unknown key" in msg


def test_wrong_type_is_named(tmp_path: Path) -> None:
    msg = config_error(tmp_path, lambda c: c["experiments"][0].update(requests_per_level="many"))
    assert msg.endswith(
        ": experiments[0].requests_per_level: Input should be a valid integer, unable to parse string as an integer"
    )


def test_missing_field_is_named(tmp_path: Path) -> None:
    msg = config_error(tmp_path, lambda c: c["report"].pop("latency_budget_s"))
    assert "report.latency_budget_s: required field is missing" in msg


def test_unknown_endpoint_type_is_named(tmp_path: Path) -> None:
    msg = config_error(tmp_path, lambda c: c["experiments"][0]["endpoint"].update(type="grpc"))
    assert msg.endswith(
        ": experiments[0].endpoint: Input tag 'grpc' found using 'type' does not match any of the expected tags: "
        "'openai', 'simulated', 'container', 'process', 'bedrock', 'sagemaker'"
    )


def test_simulated_instance_type_without_a_hardware_profile_is_named(tmp_path: Path) -> None:
    msg = config_error(tmp_path, lambda c: c["experiments"][0].update(instance_type="p4de.24xlarge"))
    assert "experiments[0].instance_type: simulator: unknown instance type 'p4de.24xlarge'" in msg


def test_simulated_model_that_does_not_fit_is_named(tmp_path: Path) -> None:
    msg = config_error(tmp_path, lambda c: c["experiments"][0]["endpoint"].update(model="llama-3.1-70b"))
    assert "experiments[0]: simulator: model llama-3.1-70b needs 141 GB of weights" in msg


def test_unknown_bucket_reference_is_named(tmp_path: Path) -> None:
    msg = config_error(tmp_path, lambda c: c["experiments"][0].update(payloads=["nope"]))
    assert "experiments[0].payloads: unknown bucket 'nope'" in msg


def test_missing_payload_file_is_named(tmp_path: Path) -> None:
    msg = config_error(tmp_path, lambda c: c["payloads"].append({"name": "f", "file": "missing.jsonl"}))
    assert "payloads[2].file: file not found" in msg and "missing.jsonl" in msg


def test_dataset_of_interest_must_match_a_bucket(tmp_path: Path) -> None:
    msg = config_error(tmp_path, lambda c: c["report"].update(dataset_of_interest="de_1-500"))
    assert msg.endswith(": report.dataset_of_interest: 'de_1-500' matches no payload bucket")


def test_missing_config_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nothere\.yml: config file not found"):
        load_config(tmp_path / "nothere.yml")


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yml"
    path.write_text("run_name: x\nexperiments: [\n")
    with pytest.raises(ConfigError, match=r"broken\.yml: line \d+: not valid YAML"):
        load_config(path)


@settings(max_examples=25, deadline=None)
@given(
    levels=st.lists(
        st.one_of(st.integers(min_value=-3, max_value=600), st.integers(min_value=99_990, max_value=2**40)),
        min_size=1,
        max_size=6,
    )
)
def test_concurrency_levels_accepted_iff_between_1_and_100k_and_distinct(tmp_path_factory, levels: list[int]) -> None:
    path = write_config(
        tmp_path_factory.mktemp("h") / "c.yml", config_dict([sim_experiment(concurrency_levels=levels)])
    )
    out_of_range = [(i, c) for i, c in enumerate(levels) if not 1 <= c <= 100_000]
    if not out_of_range and len(set(levels)) == len(levels):
        assert load_config(path).experiments[0].concurrency_levels == levels
        return
    if out_of_range:  # the first level out of range, by its index and the bound it breaks; then how many more
        (i, c), more = out_of_range[0], len(out_of_range) - 1
        bound = "greater than or equal to 1" if c < 1 else "less than or equal to 100000"
        expected = f"experiments[0].concurrency_levels[{i}]: Input should be {bound}"
        expected += f" (and {more} more)" if more else ""
    else:
        expected = "experiments[0]: concurrency_levels has duplicates"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}: {expected}"


def test_cli_prints_one_line_and_no_traceback_for_a_bad_config(tmp_path: Path) -> None:
    cfg = config_dict([sim_experiment()])
    cfg["experiments"][0]["warmup"] = 2
    path = write_config(tmp_path / "typo.yml", cfg)
    proc = run_cli("run", "--config", str(path), "--results-dir", str(tmp_path / "r"))
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: {path}: experiments[0].warmup: unknown key"
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "r").exists()  # nothing started, nothing written


def test_cli_debug_shows_the_traceback(tmp_path: Path) -> None:
    proc = run_cli("--debug", "run", "--config", str(tmp_path / "none.yml"))
    assert proc.returncode != 0 and "Traceback" in proc.stderr and "config file not found" in proc.stderr


def test_cli_unreachable_endpoint_fails_with_the_url_and_keeps_the_run(tmp_path: Path) -> None:
    exp = sim_experiment(
        name="down",
        endpoint={
            "type": "openai",
            "base_url": "http://127.0.0.1:9/v1",
            "served_model_name": "m",
            "startup_timeout_s": 1,
        },
    )
    path = write_config(tmp_path / "down.yml", config_dict([exp]))
    proc = run_cli("run", "--config", str(path), "--results-dir", str(tmp_path / "r"), "--no-build")
    assert proc.returncode == 1
    assert "endpoint http://127.0.0.1:9/v1/models not healthy within 1 s" in proc.stderr
    assert "Traceback" not in proc.stderr
    manifest = yaml.safe_load((run_dirs(tmp_path / "r")[0] / "run.json").read_text())
    assert manifest["status"] == "failed" and "127.0.0.1:9" in manifest["error_message"]


def test_every_command_explains_each_of_its_options() -> None:
    import argparse

    from collector.cli import parser

    top = parser()
    sub = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction))
    assert set(sub.choices) >= {"run", "sim"}
    for name, command in sub.choices.items():
        for action in command._actions:
            assert action.help, f"{name} {action.option_strings or action.dest} has no help"
    run_help = run_cli("run", "--help").stdout
    assert "--config" in run_help and "embedded simulated endpoint" in run_help and "--results-dir" in run_help


@pytest.mark.parametrize(
    ("api_style", "path"),
    [
        ("chat", "/models"),
        ("completions", "/models"),
        ("tgi", "/health"),
        ("djl", "/ping"),
        ("triton", "/v2/health/ready"),
    ],
)
def test_an_openai_type_endpoint_is_probed_where_its_wire_format_answers(
    tmp_path: Path, api_style: str, path: str
) -> None:
    from collector.endpoints import health_url

    exp = sim_experiment(endpoint={"type": "openai", "base_url": "http://127.0.0.1:8080", "served_model_name": "m",
                                   "api_style": api_style})  # fmt: skip
    cfg = load_config(write_config(tmp_path / "c.yml", config_dict([exp])))
    assert health_url(cfg.experiments[0], "http://127.0.0.1:8080") == "http://127.0.0.1:8080" + path


REMOTE = {"type": "openai", "base_url": "http://127.0.0.1:9/v1", "served_model_name": "m"}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"price": {"usd_per_hour": 3.2}, "unpriced": True}, "give either price or unpriced: true, not both"),
        ({"price": {"usd_per_hour": -1}}, "experiments[0].price.usd_per_hour"),
        ({"price": {"usd_per_hour": 3.2, "per": "hour"}}, "experiments[0].price.per"),
    ],
)
def test_a_bad_inline_price_is_named(tmp_path: Path, change: dict, expected: str) -> None:
    msg = config_error(tmp_path, lambda c: c["experiments"][0].update(endpoint=REMOTE, **change))
    assert expected in msg, msg


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda c: c["experiments"][0].update(concurrency_level=[1]),
            "experiments[0].concurrency_level: unknown key (did you mean 'concurrency_levels'?)",
        ),
        (
            lambda c: c["experiments"][0]["endpoint"].update(speedupp=2),
            "experiments[0].endpoint.speedupp: unknown key (did you mean 'speedup'?)",
        ),
        (lambda c: c["report"].update(latency_budget=2), "report.latency_budget: unknown key (did you mean 'latency"),
        (lambda c: c["experiments"][0]["endpoint"].update(zzzz=2), "experiments[0].endpoint.zzzz: unknown key"),
    ],
)
def test_a_mistyped_key_is_named_with_the_key_it_was_probably_meant_to_be(tmp_path: Path, mutate, expected) -> None:
    msg = config_error(tmp_path, mutate)
    assert expected in msg, msg
    if "zzzz" in expected:
        assert "did you mean" not in msg


def test_a_mistyped_required_key_is_reported_before_the_missing_field_it_causes(tmp_path: Path) -> None:
    def rename(c: dict) -> None:
        c["experiments"][0]["requests_per_levl"] = c["experiments"][0].pop("requests_per_level")

    msg = config_error(tmp_path, rename)
    assert "experiments[0].requests_per_levl: unknown key (did you mean 'requests_per_level'?)" in msg, msg
