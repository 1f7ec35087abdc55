"""`type: bedrock` through the real boto3 client against the loopback Bedrock runtime: the Converse wire format
(event stream decoded by botocore), the service's usage and latency, throttling retries, and each fault."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest

from collector.runner import collect
from collector.sim.aws import AwsLoopback
from tests.aws.loopback import serve_aws
from tests.conftest import config_dict, write_config

MODEL = "meta.llama3-1-8b-instruct-v1:0"  # in the frozen token prices


def bedrock_experiment(url: str, name: str = "bedrock", **endpoint: Any) -> dict[str, Any]:
    return {
        "name": name,
        "model_id": MODEL,
        "endpoint": {"type": "bedrock", "endpoint_url": url, "region": "us-east-1", "retry_base_s": 0.01, **endpoint},
        "concurrency_levels": [1, 3],
        "requests_per_level": 6,
        "warmup_requests_per_level": 0,
        "payloads": ["short"],
        "inference_parameters": {"max_tokens": 30},
        "request_timeout_s": 20,
    }


def run(tmp_path: Path, state: AwsLoopback, *experiments: dict[str, Any] | None, **endpoint: Any) -> tuple[Any, Path]:
    with serve_aws(state) as url:
        exps = [e for e in experiments if e is not None] or [bedrock_experiment(url, **endpoint)]
        for exp in exps:
            exp["endpoint"].setdefault("endpoint_url", url)
        cfg = write_config(tmp_path / "bedrock.yml", config_dict(exps))
        outcome = collect(cfg, tmp_path / "results")
    return outcome, tmp_path / "results"


def rows(results: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(results / "tokenbench.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_converse_stream_rows_carry_the_services_usage_and_latency_and_ttft_at_the_first_text_event(
    tmp_path: Path,
) -> None:
    state = AwsLoopback(bedrock_models=frozenset({MODEL}))
    outcome, results = run(tmp_path, state)
    assert outcome.status == "completed", outcome.error
    got = rows(
        results,
        "select status, api_style, endpoint_type, is_streaming, token_count_source, completion_tokens, "
        "server_completion_tokens, client_completion_tokens, server_prompt_tokens, server_latency_ms, retry_count, "
        "retry_wait_ns, first_content_ns, last_content_ns, e2e_ns, content_chunk_count, endpoint_url, "
        "service_request_id from raw.requests",
    )
    assert len(got) == 12 == state.received
    # The server's own figures, reported in the metadata event, land as they were sent.
    assert sorted(r[9] for r in got) == sorted(state.latencies_ms)
    for r in got:
        assert r[:5] == ("success", "converse", "bedrock", True, "server")
        assert r[5] == r[6] == r[7] == r[15]  # one word per token: the client's count agrees with usage
        assert r[8] is not None and r[8] > 0
        assert (r[10], r[11]) == (0, 0)
        assert 0 < r[12] <= r[13] <= r[14]  # TTFT at the first delta with text, before the last, before the end
        assert r[16].endswith(f"/model/{MODEL.replace(':', '%3A')}/converse-stream")
        assert r[17]  # x-amzn-RequestId


def test_converse_without_streaming_takes_usage_from_the_reply_and_has_no_ttft(tmp_path: Path) -> None:
    state = AwsLoopback(bedrock_models=frozenset({MODEL}))
    outcome, results = run(tmp_path, state, stream=False)
    assert outcome.status == "completed", outcome.error
    got = rows(
        results,
        "select status, is_streaming, first_content_ns, completion_tokens, server_completion_tokens, "
        "client_completion_tokens, server_latency_ms, finish_reason from raw.requests",
    )
    assert len(got) == 12
    for status, streaming, ttft, completion, server, client, latency_ms, reason in got:
        assert (status, streaming, ttft) == ("success", False, None)
        assert completion == server == client > 0
        assert latency_ms is not None and reason in ("end_turn", "max_tokens")


def test_throttled_requests_are_retried_and_each_row_records_its_retries_and_wait(tmp_path: Path) -> None:
    state = AwsLoopback(bedrock_models=frozenset({MODEL}), throttle_first=3)
    outcome, results = run(tmp_path, state)
    assert outcome.status == "completed", outcome.error
    got = rows(
        results,
        "select status, retry_count, retry_wait_ns, last_attempt_offset_ns, e2e_ns, first_content_ns "
        "from raw.requests order by start_offset_ns",
    )
    assert len(got) == 12 and all(r[0] == "success" for r in got)
    # The first request met all three throttles (concurrency 1 first), and nothing was lost or sent twice.
    assert sum(r[1] for r in got) == 3 == state.throttled
    assert state.received == 12 + 3
    first = got[0]
    assert first[1] == 3
    assert 0 < first[2] <= first[3] < first[5] <= first[4]  # waits inside the time to the last attempt
    assert all(r[1:4] == (0, 0, 0) for r in got[1:])


def test_throttling_past_max_retries_lands_a_429_error_row_and_the_sweep_goes_on(tmp_path: Path) -> None:
    state = AwsLoopback(bedrock_models=frozenset({MODEL}), throttle_first=3)
    outcome, results = run(tmp_path, state, max_retries=1)
    assert outcome.status == "completed", outcome.error
    got = rows(
        results,
        "select status, error_type, http_status, retry_count, error_message from raw.requests "
        "where status = 'error' order by start_offset_ns",
    )
    # 3 throttles, 1 retry each: the first request fails after its retry, the second after its first attempt...
    assert [r[:4] for r in got] == [("error", "http_error", 429, 1)]
    assert got[0][4].startswith("HTTP 429 ThrottlingException: ") and got[0][4].endswith("(after 1 retries)")
    assert rows(results, "select count(*) from raw.requests")[0][0] == 12


def test_a_stream_cut_mid_way_lands_stream_cut_with_what_arrived(tmp_path: Path) -> None:
    state = AwsLoopback(bedrock_models=frozenset({MODEL}), cut_after_events=2)
    outcome, results = run(tmp_path, state, **{})
    assert outcome.status == "completed", outcome.error
    got = rows(
        results,
        "select status, error_type, content_chunk_count, client_completion_tokens, error_message, http_status "
        "from raw.requests where status = 'error'",
    )
    # Replies shorter than 3 tokens end cleanly; every longer one is cut after 2 deltas.
    assert got, "no reply was long enough to be cut"
    for status, error_type, chunks, client_tokens, message, http_status in got:
        assert (status, error_type, chunks, client_tokens, http_status) == ("error", "stream_cut", 2, 2, 200)
        assert message.startswith("in-stream modelStreamErrorException: ")


def test_a_validation_error_lands_an_http_400_row_per_request_without_stopping_the_run(tmp_path: Path) -> None:
    state = AwsLoopback(bedrock_models=frozenset({MODEL}))
    with serve_aws(state) as url:
        exp = bedrock_experiment(url)
        exp["inference_parameters"]["temperature"] = 1.5  # Bedrock accepts [0, 1]
        outcome, results = run(tmp_path, state, exp)
    assert outcome.status == "completed"
    got = rows(results, "select distinct status, error_type, http_status, error_message from raw.requests")
    assert len(got) == 1
    assert got[0][:3] == ("error", "http_error", 400)
    assert "ValidationException" in got[0][3] and "temperature" in got[0][3]


@pytest.mark.parametrize(
    ("state", "cause"),
    [
        (AwsLoopback(bedrock_models=frozenset({"another.model-v1:0"})), "ValidationException: The provided model"),
        (AwsLoopback(denied_models=frozenset({MODEL})), "AccessDeniedException: You don't have access"),
    ],
    ids=["unknown-model", "model-not-enabled"],
)
def test_a_model_every_request_would_be_refused_stops_the_run_with_one_line_and_keeps_its_rows(
    tmp_path: Path, state: AwsLoopback, cause: str
) -> None:
    outcome, results = run(tmp_path, state)
    assert outcome.status == "failed"
    assert outcome.error is not None and "\n" not in outcome.error
    assert outcome.error.startswith(f"experiments[0] (bedrock): Bedrock model {MODEL}: ")
    assert cause in outcome.error
    # The requests already in flight landed; no more were sent once the first came back refused.
    landed = rows(results, "select count(*), count(*) filter (where status = 'error') from raw.requests")[0]
    assert landed[0] == landed[1] == state.received >= 1
    assert landed[0] < 12


def test_missing_credentials_fail_before_the_run_with_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from collector.errors import ConfigError

    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    cfg = write_config(tmp_path / "c.yml", config_dict([bedrock_experiment("http://127.0.0.1:9")]))
    with pytest.raises(ConfigError) as err:
        collect(cfg, tmp_path / "results")
    assert str(err.value).startswith("experiments[0].endpoint: no AWS credentials found (set AWS_PROFILE")
    assert not (tmp_path / "results" / "raw").exists()


PT_ARN = "arn:aws:bedrock:us-east-1:123456789012:provisioned-model/a1b2c3d4e5f6"
PT_PRICE_ROW = "bedrock-pt:anthropic.claude-3-sonnet-20240229-v1:0:no-commitment"  # $88 per model unit-hour


def provisioned_experiment(url: str) -> dict[str, Any]:
    exp = bedrock_experiment(url, model=PT_ARN)
    exp.update(model_id="anthropic.claude-3-sonnet-20240229-v1:0", instance_type=PT_PRICE_ROW, instance_count=2)
    return exp


def test_provisioned_throughput_sends_the_arn_and_is_priced_per_model_unit_hour(tmp_path: Path) -> None:
    import json

    state = AwsLoopback(bedrock_models=frozenset({PT_ARN}))
    with serve_aws(state) as url:
        outcome, results = run(tmp_path, state, provisioned_experiment(url))
    assert outcome.status == "completed", outcome.error
    got = rows(results, "select distinct status, instance_type, instance_count, endpoint_url from raw.requests")
    assert got == [
        ("success", PT_PRICE_ROW, 2, f"{url}/model/{PT_ARN.replace(':', '%3A').replace('/', '%2F')}/converse-stream")
    ]
    (experiments,) = rows(results, "select experiments_json from raw.runs")[0]
    (priced,) = json.loads(experiments)
    assert (priced["pricing_kind"], priced["usd_per_hour"], priced["instance_count"]) == ("instance", 88.0, 2)


def test_a_provisioned_model_without_its_price_row_is_a_config_error_naming_the_field(tmp_path: Path) -> None:
    from collector.config import load_config
    from collector.errors import ConfigError

    exp = provisioned_experiment("http://127.0.0.1:9")
    del exp["instance_type"]
    with pytest.raises(ConfigError, match=r"experiments\[0\]: instance_type: a provisioned model is priced per "):
        load_config(write_config(tmp_path / "c.yml", config_dict([exp])))


def test_an_unknown_provisioned_model_stops_the_run_with_resource_not_found(tmp_path: Path) -> None:
    state = AwsLoopback(bedrock_models=frozenset({MODEL}))
    with serve_aws(state) as url:
        outcome, _results = run(tmp_path, state, provisioned_experiment(url))
    assert outcome.status == "failed"
    assert outcome.error == (
        f"experiments[0] (bedrock): Bedrock model {PT_ARN}: HTTP 404 ResourceNotFoundException: "
        f"Provisioned model {PT_ARN} was not found."
    )
