"""`type: sagemaker` through the real boto3 clients: invoking an endpoint in each container format (streamed
PayloadParts decoded by botocore), and the deploy lifecycle (created, waited for, always deleted) against the
loopback control plane and moto's server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest

from collector.runner import collect
from collector.sim.aws import AwsLoopback
from tests.aws.loopback import serve_aws
from tests.conftest import REPO, config_dict, write_config

ROLE = "arn:aws:iam::123456789012:role/tokenbench-test"
IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-pytorch-tgi-inference:2.4.0-tgi3.0.1-gpu"


def sagemaker_experiment(
    url: str, name: str = "sm", instance_type: str = "ml.g5.2xlarge", unpriced: bool = False, **endpoint: Any
) -> dict[str, Any]:
    ep: dict[str, Any] = {"type": "sagemaker", "endpoint_url": url, "region": "us-east-1", "retry_base_s": 0.01}
    ep.update(endpoint)
    if "deploy" not in ep:
        ep.setdefault("endpoint_name", "llama-tgi")
    return {
        "name": name,
        "model_id": "meta-llama/Llama-3.1-8B-Instruct",
        "endpoint": ep,
        "instance_type": instance_type,
        "unpriced": unpriced,
        "concurrency_levels": [1, 3],
        "requests_per_level": 5,
        "warmup_requests_per_level": 0,
        "payloads": ["short"],
        "inference_parameters": {"max_tokens": 30},
        "request_timeout_s": 20,
    }


def deploy(url: str, **overrides: Any) -> dict[str, Any]:
    out = {"image_uri": IMAGE, "role_arn": ROLE, "control_endpoint_url": url, "poll_interval_s": 0.05}
    out.update(overrides)
    return out


def rows(results: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(results / "tokenbench.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.mark.parametrize("api_style", ["tgi", "djl", "chat"])
def test_streamed_payload_parts_in_each_container_format_land_with_ttft_and_the_containers_counts(
    tmp_path: Path, api_style: str
) -> None:
    state = AwsLoopback(sagemaker_endpoints={"llama": api_style})
    with serve_aws(state) as url:
        exp = sagemaker_experiment(url, endpoint_name="llama", api_style=api_style)
        outcome = collect(write_config(tmp_path / "c.yml", config_dict([exp])), tmp_path / "results")
    assert outcome.status == "completed", outcome.error
    got = rows(
        tmp_path / "results",
        "select status, endpoint_type, api_style, first_content_ns, e2e_ns, completion_tokens, "
        "client_completion_tokens, server_completion_tokens, content_chunk_count, endpoint_url, retry_count "
        "from raw.requests",
    )
    assert len(got) == 10 == state.received
    for status, kind, style, ttft, e2e, completion, client, server, chunks, endpoint_url, retries in got:
        assert (status, kind, style, retries) == ("success", "sagemaker", api_style, 0)
        assert 0 < ttft < e2e
        # Lines cut across PayloadParts were joined: every token arrived as one content chunk.
        assert completion == client == chunks > 0
        assert server == completion  # TGI and LMI report generated_tokens, vLLM's usage completion_tokens
        assert endpoint_url == f"{url}/endpoints/llama/invocations-response-stream"


def test_invoke_endpoint_without_streaming_reads_the_containers_reply(tmp_path: Path) -> None:
    state = AwsLoopback(sagemaker_endpoints={"llama-tgi": "tgi"})
    with serve_aws(state) as url:
        exp = sagemaker_experiment(url, stream=False)
        outcome = collect(write_config(tmp_path / "c.yml", config_dict([exp])), tmp_path / "results")
    assert outcome.status == "completed", outcome.error
    got = rows(
        tmp_path / "results", "select distinct status, first_content_ns, completion_tokens > 0 from raw.requests"
    )
    assert got == [("success", None, True)]


def test_a_container_refusing_the_payload_lands_sagemakers_424_model_error(tmp_path: Path) -> None:
    state = AwsLoopback(sagemaker_endpoints={"llama-tgi": "tgi"})
    with serve_aws(state) as url:
        exp = sagemaker_experiment(url)
        exp["inference_parameters"]["extra"] = {"top_p": 1.5}  # TGI refuses it with a 422
        outcome = collect(write_config(tmp_path / "c.yml", config_dict([exp])), tmp_path / "results")
    assert outcome.status == "completed"
    got = rows(tmp_path / "results", "select distinct status, error_type, http_status, error_message from raw.requests")
    assert len(got) == 1 and got[0][:3] == ("error", "http_error", 424)
    assert got[0][3].startswith("HTTP 424 ModelError: Received client error (422)")
    assert got[0][3].endswith("(the container answered 422)")


def test_an_endpoint_that_does_not_exist_stops_the_run_with_one_line(tmp_path: Path) -> None:
    state = AwsLoopback(sagemaker_endpoints={})
    with serve_aws(state) as url:
        exp = sagemaker_experiment(url, endpoint_name="deleted-mid-sweep")
        outcome = collect(write_config(tmp_path / "c.yml", config_dict([exp])), tmp_path / "results")
    assert outcome.status == "failed"
    assert outcome.error == (
        "experiments[0] (sm): SageMaker endpoint deleted-mid-sweep: HTTP 400 ValidationError: "
        "Endpoint deleted-mid-sweep of account 123456789012 not found."
    )
    assert rows(tmp_path / "results", "select count(*) from raw.requests")[0][0] == state.received == 1


def test_a_deployed_endpoint_is_created_waited_for_swept_and_deleted(tmp_path: Path) -> None:
    state = AwsLoopback(sagemaker_endpoints={}, creating_polls=2)
    with serve_aws(state) as url:
        exp = sagemaker_experiment(url, deploy=deploy(url, environment={"HF_MODEL_ID": "meta-llama/Llama-3.1-8B"}))
        outcome = collect(write_config(tmp_path / "c.yml", config_dict([exp])), tmp_path / "results")
    assert outcome.status == "completed", outcome.error
    assert state.control_calls == [
        "CreateModel",
        "CreateEndpointConfig",
        "CreateEndpoint",
        "DescribeEndpoint",
        "DescribeEndpoint",
        "DescribeEndpoint",
        "DeleteEndpoint",
        "DeleteEndpointConfig",
        "DeleteModel",
    ]
    assert (state.models, state.endpoint_configs, state.endpoints) == (set(), set(), {})
    names = rows(tmp_path / "results", "select distinct status, endpoint_url from raw.requests")
    assert len(names) == 1 and names[0][0] == "success"
    assert names[0][1].startswith(f"{url}/endpoints/tokenbench-")


@pytest.mark.parametrize(
    ("creating_polls", "outcome_status", "message"),
    [
        (None, "Creating", "still Creating after"),
        (1, "Failed", "is Failed: The primary container for production variant AllTraffic did not pass the ping"),
    ],
    ids=["never-in-service", "failed"],
)
def test_an_endpoint_that_never_serves_fails_the_run_with_one_line_and_is_deleted(
    tmp_path: Path, creating_polls: int | None, outcome_status: str, message: str
) -> None:
    state = AwsLoopback(sagemaker_endpoints={}, creating_polls=creating_polls, endpoint_outcome=outcome_status)
    with serve_aws(state) as url:
        exp = sagemaker_experiment(url, deploy=deploy(url, in_service_timeout_s=0.3))
        outcome = collect(write_config(tmp_path / "c.yml", config_dict([exp])), tmp_path / "results")
    assert outcome.status == "failed"
    assert outcome.error is not None and "\n" not in outcome.error and message in outcome.error
    assert outcome.error.startswith("sagemaker endpoint tokenbench-")
    assert state.control_calls[-3:] == ["DeleteEndpoint", "DeleteEndpointConfig", "DeleteModel"]
    assert (state.models, state.endpoint_configs, state.endpoints) == (set(), set(), {})
    assert state.received == 0


def test_ctrl_c_while_the_endpoint_is_creating_still_deletes_it(tmp_path: Path) -> None:
    state = AwsLoopback(sagemaker_endpoints={}, creating_polls=None)
    with serve_aws(state) as url:
        exp = sagemaker_experiment(url, deploy=deploy(url))
        cfg = write_config(tmp_path / "c.yml", config_dict([exp]))
        proc = subprocess.Popen(
            [sys.executable, "-m", "collector", "run", "--config", str(cfg), "--results-dir", str(tmp_path / "r")],
            cwd=REPO,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ},
        )
        assert proc.stderr is not None
        deadline = time.monotonic() + 60
        for line in proc.stderr:
            if "Creating" in line or time.monotonic() > deadline:
                break
        proc.send_signal(signal.SIGINT)
        rest = proc.communicate(timeout=60)[1]
    assert proc.returncode == 130, rest
    assert "sagemaker: deleted endpoint, endpoint config and model tokenbench-" in rest
    assert (state.models, state.endpoint_configs, state.endpoints) == (set(), set(), {})


@pytest.mark.parametrize(
    ("instance_type", "status"),
    [("ml.g4dn.xlarge", "completed"), ("ml.g5.2xlarge", "failed")],
    ids=["deployed", "config-refused"],  # moto's instance list predates g5: create_endpoint_config refuses it
)
def test_deployment_against_motos_control_plane_leaves_nothing_behind(
    tmp_path: Path, instance_type: str, status: str
) -> None:
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        moto_url = f"http://{host}:{port}"
        state = AwsLoopback()  # the runtime answers whatever endpoint name moto created
        with serve_aws(state) as url:
            exp = sagemaker_experiment(url, deploy=deploy(moto_url), instance_type=instance_type, unpriced=True)
            outcome = collect(write_config(tmp_path / "c.yml", config_dict([exp])), tmp_path / "results")
        control = boto3.client("sagemaker", endpoint_url=moto_url, region_name="us-east-1")
        left = (
            control.list_endpoints()["Endpoints"],
            control.list_endpoint_configs()["EndpointConfigs"],
            control.list_models()["Models"],
        )
    finally:
        server.stop()
    assert outcome.status == status, outcome.error
    assert state.received == (10 if status == "completed" else 0)
    if status == "failed":
        assert outcome.error is not None
        assert outcome.error.startswith("sagemaker create_endpoint_config: HTTP 400 ValidationException: ")
    assert left == ([], [], [])


def test_an_endpoint_the_caller_may_not_invoke_stops_the_run_with_one_line_and_keeps_its_rows(tmp_path: Path) -> None:
    state = AwsLoopback(sagemaker_endpoints={"llama-tgi": "tgi"}, denied_endpoints=frozenset({"llama-tgi"}))
    with serve_aws(state) as url:
        outcome = collect(write_config(tmp_path / "c.yml", config_dict([sagemaker_experiment(url)])), tmp_path / "r")
    assert outcome.status == "failed"
    assert outcome.error == (
        "experiments[0] (sm): SageMaker endpoint llama-tgi: HTTP 403 AccessDeniedException: User: "
        "arn:aws:iam::123456789012:user/bench is not authorized to perform: sagemaker:InvokeEndpoint on resource: "
        "arn:aws:sagemaker:us-east-1:123456789012:endpoint/llama-tgi"
    )
    landed = rows(tmp_path / "r", "select count(*), count(*) filter (where http_status = 403) from raw.requests")
    assert landed == [(state.received, state.received)] and state.received == 1


def test_a_deployment_refused_a_permission_fails_in_one_line_and_deletes_what_it_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = AwsLoopback(sagemaker_endpoints={}, denied_operations=frozenset({"CreateEndpointConfig"}))
    with serve_aws(state) as url:
        exp = sagemaker_experiment(url, deploy=deploy(url))
        outcome = collect(write_config(tmp_path / "c.yml", config_dict([exp])), tmp_path / "r")
    assert outcome.status == "failed"
    assert outcome.error == (
        "sagemaker create_endpoint_config: HTTP 400 AccessDeniedException: User: arn:aws:iam::123456789012:user/bench "
        "is not authorized to perform: sagemaker:CreateEndpointConfig"
    )
    assert state.control_calls == ["CreateModel", "CreateEndpointConfig", "DeleteModel"]
    assert (state.models, state.endpoint_configs, state.endpoints, state.received) == (set(), set(), {}, 0)
    assert "sagemaker: deleted model tokenbench-" in capsys.readouterr().err


def test_a_missing_region_fails_before_the_run_with_one_line_naming_the_field(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from collector.errors import ConfigError

    monkeypatch.delenv("AWS_DEFAULT_REGION")
    exp = sagemaker_experiment("http://127.0.0.1:9")
    del exp["endpoint"]["region"]
    with pytest.raises(ConfigError) as err:
        collect(write_config(tmp_path / "c.yml", config_dict([exp])), tmp_path / "r")
    assert str(err.value) == (
        "experiments[0].endpoint.region: no AWS region (set it here, or AWS_REGION / AWS_DEFAULT_REGION)"
    )
    assert not (tmp_path / "r" / "raw").exists()
