"""`collector launch` against moto on 127.0.0.1 (EC2, SSM, S3, IAM): the test plays the instance by running its
user-data script here, with stand-in `aws` and `shutdown` executables, and checks that every path terminates it."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import duckdb
import pytest
import yaml
from moto.server import ThreadedMotoServer

from collector.launch.aws import Aws
from collector.launch.orchestrate import launch_all
from collector.pricing import read_prices
from tests.conftest import PRICING, REPO, config_dict, sim_experiment, write_config

REGION = "us-east-1"
# A public parameter moto knows; the default (the Deep Learning AMI's) is not in moto's copy.
AMI_PARAMETER = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64"
FAKE_SECRET = "fake-secret-never-logged"

STAND_IN_AWS = """#!{python}
# Stand-in for the AWS CLI on the instance: only `aws s3 cp [--only-show-errors] s3://bucket/key dest`.
import sys, boto3
args = [a for a in sys.argv[1:] if not a.startswith("--")]
assert args[:2] == ["s3", "cp"], args
bucket, key = args[2].removeprefix("s3://").split("/", 1)
boto3.client("s3").download_file(bucket, key, args[3])
"""
STAND_IN_SHUTDOWN = """#!{python}
# Stand-in for shutdown(8): records its arguments; `now` ends the instance as InstanceInitiatedShutdownBehavior does.
import os, sys, boto3
with open(os.environ["TB_SHUTDOWN_LOG"], "a") as f:
    f.write(" ".join(sys.argv[1:]) + "\\n")
if "now" in sys.argv[1:]:
    boto3.client("ec2").terminate_instances(InstanceIds=[os.environ["TB_INSTANCE_ID"]])
"""


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws_env(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = {
        "AWS_ENDPOINT_URL": moto_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": FAKE_SECRET,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def launch_config(tmp_path: Path, aws_env: dict[str, str], experiments: list[dict[str, Any]]) -> tuple[Path, str]:
    """A config with a launch: section, and the AWS things it names created in moto; (path, run_name)."""
    run_name = f"launch-{uuid.uuid4().hex[:8]}"
    bucket = f"tb-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    boto3.client("iam").create_instance_profile(InstanceProfileName=run_name)
    group = boto3.client("ec2").create_security_group(GroupName=run_name, Description="tokenbench test")["GroupId"]
    launch = {
        "bucket": bucket,
        "prefix": "bench/tokenbench",
        "instance_profile": run_name,
        "security_group_ids": [group],
        "ami_ssm_parameter": AMI_PARAMETER,
        "max_lifetime_minutes": 90,
        "heartbeat_interval_s": 1,
        "poll_interval_s": 0.2,
    }
    cfg = config_dict(experiments, run_name=run_name, launch=launch)
    return write_config(tmp_path / "launch.yml", cfg), run_name


def instances(run_name: str) -> list[dict[str, Any]]:
    reply = boto3.client("ec2").describe_instances(Filters=[{"Name": "tag:tokenbench:run_name", "Values": [run_name]}])
    return [i for r in reply["Reservations"] for i in r["Instances"]]


def wait_for_instances(run_name: str, count: int, proc: subprocess.Popen[str] | None = None) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = [i for i in instances(run_name) if i["State"]["Name"] in ("pending", "running")]
        if len(found) >= count:
            return found
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"launcher exited early: {proc.communicate()[1][-2000:]}")
        time.sleep(0.2)
    raise AssertionError(f"{count} instance(s) of {run_name} never started")


def state_of(instance_id: str) -> str:
    reply = boto3.client("ec2").describe_instances(InstanceIds=[instance_id])
    return str(reply["Reservations"][0]["Instances"][0]["State"]["Name"])


def start_launcher(config: Path, results: Path, env: dict[str, str], *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "collector", "launch", "--config", str(config), "--results-dir", str(results), *extra],
        cwd=REPO,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def play_instance(instance_id: str, work: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Boot the instance here: its user-data script, run by bash, with stand-ins for the AWS CLI and shutdown."""
    user_data = Aws(REGION).user_data(instance_id)
    bin_dir = work / "bin"
    bin_dir.mkdir(parents=True)
    for name, text in (("aws", STAND_IN_AWS), ("shutdown", STAND_IN_SHUTDOWN)):
        (bin_dir / name).write_text(text.format(python=sys.executable))
        (bin_dir / name).chmod(0o755)
    script = work / "user-data.sh"
    script.write_text(user_data)
    return subprocess.run(
        ["bash", str(script)],
        env={
            **os.environ,
            **env,
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "TOKENBENCH_WORK": str(work / "instance"),
            "TOKENBENCH_PYTHON": sys.executable,
            "TB_SHUTDOWN_LOG": str(work / "shutdown.log"),
            "TB_INSTANCE_ID": instance_id,
        },
        capture_output=True,
        text=True,
        timeout=300,
    )


# "<experiment>: terminated <id> (<type>) after 0m42s, about $0.02 at $1.212/h (pricing/)"
TERMINATED = re.compile(
    r"^\S+: terminated (i-\w+) \((\S+)\) after (\d+)m(\d\d)s, about \$(\d+\.\d\d) at \$([\d.]+)/h \(pricing/\)$",
    re.MULTILINE,
)


def error_lines(stderr: str) -> list[str]:
    assert "Traceback" not in stderr, stderr
    return [line for line in stderr.splitlines() if line.startswith("error:")]


@pytest.mark.slow
def test_launch_runs_two_instance_types_in_parallel_and_lands_both_runs_in_one_warehouse(
    tmp_path: Path, aws_env: dict[str, str]
) -> None:
    exps = [
        sim_experiment(name="g5", instance_type="g5.2xlarge", concurrency_levels=[1, 2], requests_per_level=4),
        sim_experiment(name="g6e", instance_type="g6e.2xlarge", concurrency_levels=[1, 2], requests_per_level=4),
    ]
    config, run_name = launch_config(tmp_path, aws_env, exps)
    results = tmp_path / "results"
    proc = start_launcher(config, results, aws_env)
    started = wait_for_instances(run_name, 2, proc)
    plays: dict[str, subprocess.CompletedProcess[str]] = {}

    def play(inst: dict[str, Any]) -> None:
        plays[inst["InstanceId"]] = play_instance(inst["InstanceId"], tmp_path / inst["InstanceId"], aws_env)

    threads = [threading.Thread(target=play, args=(inst,)) for inst in started]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    assert "raw rows:" in out
    assert error_lines(err) == []

    ec2 = boto3.client("ec2")
    ami = boto3.client("ssm").get_parameter(Name=AMI_PARAMETER)["Parameter"]["Value"]
    for inst in started:
        iid = inst["InstanceId"]
        assert plays[iid].returncode == 0, plays[iid].stderr[-2000:]
        assert state_of(iid) == "terminated"
        assert inst["ImageId"] == ami
        assert inst["IamInstanceProfile"]["Arn"].endswith(f"/{run_name}")
        assert not inst.get("KeyName")
        behaviour = ec2.describe_instance_attribute(InstanceId=iid, Attribute="instanceInitiatedShutdownBehavior")
        assert behaviour["InstanceInitiatedShutdownBehavior"]["Value"] == "terminate"
        # The lifetime is armed first thing at boot; the script ends with the shutdown that terminates it.
        assert (tmp_path / iid / "shutdown.log").read_text().splitlines() == ["-h +90", "-h now"]
        user_data = Aws(REGION).user_data(iid)
        assert FAKE_SECRET not in user_data and "testing" not in user_data
        assert f"{iid} (" in err and "terminated" in err

    runs = sorted(p.name for p in (results / "raw").iterdir() if not p.name.startswith(("_", ".")))
    assert len(runs) == 2
    expected_rows = (4 + 1) * 2  # (requests + warm-up) per level, two levels, one bucket
    # What each instance counted before uploading (its final state record) is what landed here.
    s3 = boto3.client("s3")
    bucket = yaml.safe_load(config.read_text())["launch"]["bucket"]
    state_keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"] if o["Key"].endswith("state.json")]
    counted = {}
    for key in state_keys:
        state = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        assert state["phase"] == "uploaded" and state["exit_code"] == 0
        counted[state["run_id"]] = state["requests"]
    assert counted == dict.fromkeys(runs, expected_rows)
    for run_id in runs:
        assert FAKE_SECRET not in (results / "raw" / run_id / "run.json").read_text()
    with duckdb.connect(str(results / "tokenbench.duckdb"), read_only=True) as con:
        landed = con.execute("select run_id, status from raw.runs order by run_id").fetchall()
        assert landed == [(r, "completed") for r in runs]
        per_run = con.execute("select run_id, count(*) from raw.requests group by run_id order by run_id").fetchall()
        assert per_run == [(r, expected_rows) for r in runs]
        types = con.execute("select distinct instance_type from marts.fct_experiment_costs order by 1").fetchall()
        assert types == [("g5.2xlarge",), ("g6e.2xlarge",)]
    # Each instance's cost is its type's frozen hourly price for the time it ran (billed for a minute at least),
    # and the total is their sum.
    prices = {t: float(row["usd_per_hour"]) for t, row in read_prices(PRICING)[0].items()}
    costs = {}
    for iid, instance_type, minutes, seconds, usd, per_hour in TERMINATED.findall(err):
        ran_s = int(minutes) * 60 + int(seconds)  # shown whole seconds: the time ran is within the next second
        assert float(per_hour) == prices[instance_type]
        low, high = (prices[instance_type] * max(t, 60) / 3600 for t in (ran_s, ran_s + 1))
        assert low - 0.005 <= float(usd) <= high + 0.005, (iid, ran_s, usd)
        costs[iid] = float(usd)
    assert sorted(costs) == sorted(inst["InstanceId"] for inst in started)
    (total,) = re.findall(r"^instances: 2, about \$(\d+\.\d\d) in all$", err, re.MULTILINE)
    assert float(total) == pytest.approx(sum(costs.values()), abs=0.011)


def test_instance_terminated_early_is_one_error_line_and_nothing_is_downloaded(
    tmp_path: Path, aws_env: dict[str, str]
) -> None:
    config, run_name = launch_config(tmp_path, aws_env, [sim_experiment(name="g5", instance_type="g5.2xlarge")])
    proc = start_launcher(config, tmp_path / "results", aws_env, "--no-build")
    (inst,) = wait_for_instances(run_name, 1, proc)
    boto3.client("ec2").terminate_instances(InstanceIds=[inst["InstanceId"]])  # e.g. a spot reclaim or a person
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1
    (line,) = error_lines(err)
    assert "terminated" in line and "before its run was uploaded" in line and inst["InstanceId"] in line
    assert not (tmp_path / "results" / "raw").exists()


def test_instance_stopped_without_upload_is_terminated_by_the_launcher(tmp_path: Path, aws_env: dict[str, str]) -> None:
    config, run_name = launch_config(tmp_path, aws_env, [sim_experiment(name="g5", instance_type="g5.2xlarge")])
    proc = start_launcher(config, tmp_path / "results", aws_env, "--no-build")
    (inst,) = wait_for_instances(run_name, 1, proc)
    iid = inst["InstanceId"]
    boto3.client("ec2").stop_instances(InstanceIds=[iid])  # stopped, not terminated: its volume would still cost
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1
    (line,) = error_lines(err)
    assert f"instance {iid} stopped" in line and "nothing to download" in line and f"instance {iid} terminated" in line
    assert state_of(iid) == "terminated"


def test_ctrl_c_while_waiting_terminates_the_instance_and_exits_130(tmp_path: Path, aws_env: dict[str, str]) -> None:
    config, run_name = launch_config(tmp_path, aws_env, [sim_experiment(name="g5", instance_type="g5.2xlarge")])
    proc = start_launcher(config, tmp_path / "results", aws_env, "--no-build")
    (inst,) = wait_for_instances(run_name, 1, proc)
    time.sleep(0.5)  # into the wait loop
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == "interrupted"
    assert f"terminated {inst['InstanceId']}" in err
    assert state_of(inst["InstanceId"]) == "terminated"


# What RunInstances answers when a zone is full, and a role without ec2:RunInstances (or iam:PassRole on the
# instance profile): HTTP status, error code, message; and the advice the launcher adds to it.
RUN_INSTANCES_REFUSALS = {
    "no_capacity": (
        500,
        "InsufficientInstanceCapacity",
        "We currently do not have sufficient capacity.",
        " (no capacity now: retry later, or set launch.subnet_id to another zone)",
    ),
    "permission": (403, "UnauthorizedOperation", "You are not authorized to perform this operation.", ""),
}


@pytest.mark.parametrize("refusal", sorted(RUN_INSTANCES_REFUSALS))
def test_a_refused_run_instances_is_one_line_and_starts_nothing(
    tmp_path: Path, aws_env: dict[str, str], refusal: str
) -> None:
    from botocore.awsrequest import AWSResponse

    status, code, message, advice = RUN_INSTANCES_REFUSALS[refusal]
    config, run_name = launch_config(tmp_path, aws_env, [sim_experiment(name="g5", instance_type="g5.2xlarge")])
    aws = Aws(REGION)

    def refuse(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        # botocore's own short-circuit (what its Stubber uses): the call answers as AWS does.
        error = {"Code": code, "Message": message}
        return AWSResponse("", status, {}, None), {"Error": error, "ResponseMetadata": {"HTTPStatusCode": status}}

    aws.ec2.meta.events.register("before-call.ec2.RunInstances", refuse)
    _, (outcome,) = launch_all(config, tmp_path / "results", aws=aws, out=sys.stderr)
    # which experiment, what it was doing, AWS's own code and message, then that nothing needs cleaning up
    assert outcome.failure_line() == f"g5: start g5.2xlarge: {code}: {message}{advice}; nothing was started"
    assert instances(run_name) == []


def test_missing_bucket_is_one_error_line_before_anything_starts(tmp_path: Path, aws_env: dict[str, str]) -> None:
    config, run_name = launch_config(tmp_path, aws_env, [sim_experiment(name="g5", instance_type="g5.2xlarge")])
    text = config.read_text()
    config.write_text(text.replace("bucket: tb-", "bucket: nosuch-"))
    bucket = yaml.safe_load(config.read_text())["launch"]["bucket"]
    proc = start_launcher(config, tmp_path / "results", aws_env, "--no-build")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    (line,) = error_lines(err)
    assert line == f"error: S3 bucket {bucket}: 404: Not Found"  # what S3 answers HeadBucket on a missing bucket
    assert instances(run_name) == []


@pytest.mark.parametrize(
    ("setting", "value", "expected"),
    [
        (
            "ami_id",
            "ami-0123456789abcdef0",
            "error: AMI ami-0123456789abcdef0: InvalidAMIID.NotFound: "
            "The image id '[ami-0123456789abcdef0]' does not exist",
        ),
        (
            "ami_ssm_parameter",
            "/aws/service/no/such/ami",
            "error: AMI parameter /aws/service/no/such/ami: ParameterNotFound: "
            "Parameter /aws/service/no/such/ami not found.",
        ),
    ],
    ids=["ami_id", "ami_ssm_parameter"],
)
def test_unknown_ami_is_one_error_line_before_anything_starts(
    tmp_path: Path, aws_env: dict[str, str], setting: str, value: str, expected: str
) -> None:
    config, run_name = launch_config(tmp_path, aws_env, [sim_experiment(name="g5", instance_type="g5.2xlarge")])
    cfg = yaml.safe_load(config.read_text())
    cfg["launch"][setting] = value
    config.write_text(yaml.safe_dump(cfg))
    proc = start_launcher(config, tmp_path / "results", aws_env, "--no-build")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    (line,) = error_lines(err)
    assert line == expected  # what it was looking up, then EC2's or SSM's own error code and message
    assert instances(run_name) == []


def test_no_aws_credentials_is_one_error_line_before_anything_starts(tmp_path: Path, aws_env: dict[str, str]) -> None:
    config, run_name = launch_config(tmp_path, aws_env, [sim_experiment(name="g5", instance_type="g5.2xlarge")])
    empty = tmp_path / "no-aws-files"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ENDPOINT_URL=aws_env["AWS_ENDPOINT_URL"],
        AWS_DEFAULT_REGION=REGION,
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE=str(empty / "config"),
        AWS_SHARED_CREDENTIALS_FILE=str(empty / "credentials"),
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "collector", "launch", "--config", str(config), "--results-dir", str(tmp_path / "r")],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    (line,) = error_lines(err)
    assert "no AWS credentials found" in line, line
    assert FAKE_SECRET not in err
    assert instances(run_name) == []
