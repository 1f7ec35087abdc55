"""The launcher's side: one thread per experiment starts its instance, waits, downloads the run, terminates.

Whatever ends the wait (the run is uploaded, the instance dies, a failure, Ctrl-C or SIGTERM), the instance is
terminated in a `finally` and a line says so with its time and cost. Runs land in <results>/raw/<run_id>/ as if
`collector run` had run here, so raw.*, dbt build, the app and the report work unchanged.
"""

from __future__ import annotations

import io
import os
import shutil
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any, TextIO

import yaml

from collector.config import Config, Experiment, load_config, redacted_dump
from collector.errors import ConfigError
from collector.landing import MANIFEST_FILE, raw_root
from collector.launch.aws import ENDED_STATES, Aws, LaunchError
from collector.launch.settings import LaunchSettings
from collector.launch.uploader import raw_prefix, state_key
from collector.launch.userdata import render
from collector.pricing import read_prices
from collector.runner import new_run_id
from collector.settings import PRICE_FILES

SOURCE_ROOT = Path(__file__).resolve().parents[2]
SOURCE_PATHS = ("pyproject.toml", "README.md", "collector", "streamlit_app")
# After the instance's own lifetime has passed, it is gone whatever it did; wait a little longer for its upload.
LOCAL_GRACE_S = 600
MIN_BILLED_S = 60  # EC2 Linux on-demand bills per second, with a one-minute minimum


class Interrupted(Exception):
    """Ctrl-C or SIGTERM reached the launcher while this experiment was waiting."""


@dataclass
class Launched:
    """What became of one experiment's instance."""

    experiment: str
    instance_type: str
    instance_id: str | None = None
    run_id: str | None = None
    error: str | None = None
    terminated: bool = False
    seconds: float = 0.0
    usd: float | None = None

    def failure_line(self) -> str:
        if self.instance_id is None:
            cleanup = "nothing was started"
        elif self.terminated:
            cleanup = f"instance {self.instance_id} terminated"
        else:
            cleanup = f"instance {self.instance_id} NOT terminated: terminate it in the EC2 console"
        return f"{self.experiment}: {self.error}; {cleanup}"


class Lines:
    """Whole lines to stderr from several threads, never interleaved."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.lock = threading.Lock()

    def __call__(self, text: str) -> None:
        with self.lock:
            self.stream.write(text + "\n")
            self.stream.flush()


def launch_all(
    config_path: Path, results_dir: Path, *, aws: Aws | None = None, out: TextIO | None = None
) -> tuple[Config, list[Launched]]:
    """Launch every experiment of the config on its own instance, in parallel; raise KeyboardInterrupt on Ctrl-C
    once every instance is terminated."""
    config = load_config(config_path)
    settings = config.launch
    if settings is None:
        raise ConfigError(f"{config_path}: launch: required by collector launch (bucket, instance_profile, ...)")
    for i, exp in enumerate(config.experiments):
        if exp.instance_type is None:
            raise ConfigError(f"{config_path}: experiments[{i}].instance_type: collector launch needs an instance type")
    say = Lines(out or sys.stderr)
    aws = aws or Aws(settings.region)
    aws.check_bucket(settings.bucket)
    ami_id, root_device = aws.resolve_ami(settings.ami_id, settings.ami_ssm_parameter)
    launch_id = new_run_id()
    with tempfile.TemporaryDirectory(prefix="tokenbench-launch-") as tmp:
        bundle = make_bundle(config, Path(tmp) / "bundle.tar.gz")
        aws.upload_file(bundle, settings.bucket, f"{settings.prefix}/launch/{launch_id}/bundle.tar.gz")
    say(f"launch {launch_id}: AMI {ami_id} in {aws.region}, {len(config.experiments)} instance(s)")
    prices = read_prices(config.pricing_dir)[0]
    stop = threading.Event()
    outcomes = [Launched(exp.name, str(exp.instance_type)) for exp in config.experiments]
    with ThreadPoolExecutor(max_workers=len(outcomes), thread_name_prefix="launch") as pool:
        futures = [
            pool.submit(
                _launch_one,
                _Job(aws, settings, config.run_name, exp, launch_id, ami_id, root_device, results_dir, stop, say),
                outcome,
                _hourly_price(exp, prices),
            )
            for exp, outcome in zip(config.experiments, outcomes, strict=True)
        ]
        try:
            _wait_all(futures)
        except KeyboardInterrupt:
            stop.set()
            _wait_all(futures, through_interrupts=True)  # terminations must finish, even on a second Ctrl-C
            raise
    return config, outcomes


def _wait_all(futures: list[Future[None]], *, through_interrupts: bool = False) -> None:
    # Short waits keep the main thread where a signal handler can run (a bare join would defer Ctrl-C).
    while not all(f.done() for f in futures):
        try:
            wait(futures, timeout=0.2, return_when=FIRST_EXCEPTION)
        except KeyboardInterrupt:
            if not through_interrupts:
                raise


@dataclass
class _Job:
    aws: Aws
    settings: LaunchSettings
    run_name: str
    exp: Experiment
    launch_id: str
    ami_id: str
    root_device: str
    results_dir: Path
    stop: threading.Event
    say: Callable[[str], None]


def _launch_one(job: _Job, outcome: Launched, price: tuple[float, str] | None) -> None:
    s, exp = job.settings, job.exp
    started = time.monotonic()
    try:
        user_data = render(
            launch_id=job.launch_id,
            experiment=exp.name,
            bucket=s.bucket,
            prefix=s.prefix,
            region=str(job.aws.region),
            lifetime_minutes=s.max_lifetime_minutes,
            heartbeat_s=s.heartbeat_interval_s,
        )
        tags = {
            "Name": f"tokenbench-{job.run_name}-{exp.name}"[:255],
            "tokenbench:run_name": job.run_name,
            "tokenbench:experiment": exp.name,
            "tokenbench:launch_id": job.launch_id,
            **s.tags,
        }
        outcome.instance_id = job.aws.run_instance(
            what=f"start {outcome.instance_type}",
            ami_id=job.ami_id,
            root_device=job.root_device,
            root_volume_gb=s.root_volume_gb,
            instance_type=outcome.instance_type,
            instance_profile=s.instance_profile,
            security_group_ids=s.security_group_ids,
            subnet_id=s.subnet_id,
            user_data=user_data,
            tags=tags,
        )
        started = time.monotonic()
        job.say(
            f"{exp.name}: started {outcome.instance_id} ({outcome.instance_type}); it ends itself after "
            f"{s.max_lifetime_minutes} min at the latest"
        )
        state = _wait_for_upload(job, outcome.instance_id, started)
        outcome.run_id = str(state["run_id"])
        run_dir = _download(job, outcome.run_id)
        job.say(f"{exp.name}: run {outcome.run_id} downloaded to {run_dir}")
        if state.get("exit_code") not in (0, None):
            outcome.error = (
                f"the run on the instance exited with code {state['exit_code']} (its rows were downloaded; its log "
                f"is s3://{s.bucket}/{state_key(s.prefix, job.launch_id, exp.name).rsplit('/', 1)[0]}/collector.log)"
            )
    except Interrupted:
        outcome.error = "interrupted"
    except LaunchError as exc:
        outcome.error = str(exc)
        if Aws.error_code(exc) == "InsufficientInstanceCapacity":
            outcome.error += " (no capacity now: retry later, or set launch.subnet_id to another zone)"
    except Exception as exc:  # a bug here must still reach the finally below and be reported as one line
        outcome.error = f"{type(exc).__name__}: {exc}"
    finally:
        if outcome.instance_id is not None:
            _terminate(job, outcome, started, price)


def _hourly_price(exp: Experiment, prices: dict[str, dict[str, str]]) -> tuple[float, str] | None:
    """What the instance costs an hour and where that was read: the config's inline price, else pricing/;
    None when neither has one (an unpriced experiment on an instance type pricing/ does not list)."""
    if exp.price is not None:
        return exp.price.usd_per_hour, "config"
    if exp.instance_type in prices:
        return float(prices[str(exp.instance_type)]["usd_per_hour"]), "pricing/"
    return None


def _terminate(job: _Job, outcome: Launched, started: float, price: tuple[float, str] | None) -> None:
    iid = outcome.instance_id
    assert iid is not None
    try:
        job.aws.terminate(iid)
        outcome.terminated = True
    except LaunchError as exc:
        job.say(
            f"{job.exp.name}: could not terminate {iid} ({exc}); it ends itself within "
            f"{job.settings.max_lifetime_minutes} min of its start"
        )
    outcome.seconds = time.monotonic() - started
    cost = "cost unknown (unpriced, and pricing/ does not list the instance type)"
    if price is not None:
        usd_per_hour, source = price
        outcome.usd = usd_per_hour * max(outcome.seconds, MIN_BILLED_S) / 3600
        cost = f"about ${outcome.usd:.2f} at ${usd_per_hour:g}/h ({source})"
    if outcome.terminated:
        took = _duration(outcome.seconds)
        job.say(f"{job.exp.name}: terminated {iid} ({outcome.instance_type}) after {took}, {cost}")


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def _wait_for_upload(job: _Job, iid: str, started: float) -> dict[str, Any]:
    """The instance's final state record, once its run folder is in S3; a LaunchError if that cannot happen."""
    s, name = job.settings, job.exp.name
    key = state_key(s.prefix, job.launch_id, name)
    deadline = started + s.max_lifetime_minutes * 60 + LOCAL_GRACE_S
    shown = ""
    while True:
        if job.stop.is_set():
            raise Interrupted
        inst = job.aws.instance_state(iid)
        state = job.aws.get_json(s.bucket, key) or {}
        if state.get("phase") == "uploaded" and state.get("run_id"):
            return state
        if state.get("phase") == "failed":
            raise LaunchError(f"the instance landed no run ({state.get('message') or 'no reason given'})")
        if inst.name in ENDED_STATES:
            state = job.aws.get_json(s.bucket, key) or {}  # the upload may have finished between the two reads
            if state.get("phase") == "uploaded" and state.get("run_id"):
                return state
            reason = f": {inst.reason}" if inst.reason else ""
            raise LaunchError(f"instance {iid} {inst.name}{reason} before its run was uploaded; nothing to download")
        if time.monotonic() > deadline:
            raise LaunchError(f"no uploaded run from {iid} within its lifetime of {s.max_lifetime_minutes} min")
        line = f"{name}: {iid} {inst.name}"
        if state.get("run_id"):
            manifest = job.aws.get_json(s.bucket, raw_prefix(s.prefix, str(state["run_id"])) + MANIFEST_FILE) or {}
            line += f", run {state['run_id']} {manifest.get('status', 'starting')}, {state.get('requests', 0)} requests"
            line += _heartbeat_age(manifest.get("heartbeat_at"))
        elif inst.name == "running":
            line += ", installing tokenbench"
        if line.split(", heartbeat")[0] != shown.split(", heartbeat")[0]:
            job.say(line)
            shown = line
        job.stop.wait(s.poll_interval_s)


def _heartbeat_age(at: Any) -> str:
    try:
        age = (datetime.now(UTC) - datetime.fromisoformat(str(at))).total_seconds()
    except (TypeError, ValueError):
        return ""
    return f", heartbeat {max(age, 0):.0f} s ago"


def _download(job: _Job, run_id: str) -> Path:
    """s3://.../raw/<run_id>/ into <results>/raw/<run_id>/, whole or not at all (staged, then renamed)."""
    s = job.settings
    run_dir = raw_root(job.results_dir) / run_id
    if run_dir.exists():
        raise LaunchError(f"{run_dir} already exists; a run folder is never overwritten")
    staging = job.results_dir / ".launch-downloads" / run_id  # outside raw/, so no view reads it half-done
    shutil.rmtree(staging, ignore_errors=True)
    prefix = raw_prefix(s.prefix, run_id)
    for key in job.aws.keys(s.bucket, prefix):
        rel = PurePosixPath(key[len(prefix) :])
        if not rel.parts or any(part in ("", ".", "..") for part in rel.parts):
            raise LaunchError(f"s3://{s.bucket}/{key}: unexpected key in the run folder")
        target = staging.joinpath(*rel.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        job.aws.download_file(s.bucket, key, target)
    if not (staging / MANIFEST_FILE).is_file():
        raise LaunchError(f"s3://{s.bucket}/{prefix} holds no {MANIFEST_FILE}; nothing usable to download")
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staging, run_dir)
    return run_dir


# -- what the instance gets ------------------------------------------------------------------


def make_bundle(config: Config, dest: Path) -> Path:
    """This tokenbench's source, the pricing tables, the payload files and one config per experiment, as tar.gz."""
    if not (SOURCE_ROOT / "pyproject.toml").is_file():
        raise LaunchError(
            f"collector launch ships this tokenbench's source to the instance: no pyproject.toml in {SOURCE_ROOT}"
        )

    def skip_caches(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        return None if "__pycache__" in info.name or info.name.endswith(".pyc") else info

    data = redacted_dump(config)
    data.pop("launch", None)
    data["pricing_dir"] = "../pricing"
    with tarfile.open(dest, "w:gz") as tar:
        for name in SOURCE_PATHS:
            if (SOURCE_ROOT / name).exists():
                tar.add(SOURCE_ROOT / name, name, filter=skip_caches)
        for name in PRICE_FILES:
            tar.add(config.pricing_dir / name, f"launch/pricing/{name}")
        for i, bucket in enumerate(data["payloads"]):
            if bucket.get("file"):
                arcname = f"{i}-{Path(bucket['file']).name}"
                tar.add(bucket["file"], f"launch/payloads/{arcname}")
                bucket["file"] = f"../payloads/{arcname}"
        for exp in data["experiments"]:
            text = yaml.safe_dump({**data, "experiments": [exp]}, sort_keys=False).encode()
            info = tarfile.TarInfo(f"launch/configs/{exp['name']}.yml")
            info.size, info.mtime = len(text), int(time.time())
            tar.addfile(info, io.BytesIO(text))
    return dest
