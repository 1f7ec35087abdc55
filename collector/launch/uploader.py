"""Instance side of `collector launch`: the user-data script calls this to report state and upload the run.

`python -m collector.launch.uploader {state,heartbeat,upload} ...`. It writes
s3://<bucket>/<prefix>/launch/<launch_id>/<experiment>/state.json (phase, run_id, request count) and copies
the run's raw folder to s3://<bucket>/<prefix>/raw/<run_id>/; the state `uploaded` is written last, so the
launcher downloads only a complete folder.
"""

from __future__ import annotations

import argparse
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from collector.landing import MANIFEST_FILE, PART_RE, run_dirs
from collector.launch.aws import Aws, LaunchError


def state_key(prefix: str, launch_id: str, experiment: str) -> str:
    return f"{prefix}/launch/{launch_id}/{experiment}/state.json"


def raw_prefix(prefix: str, run_id: str) -> str:
    return f"{prefix}/raw/{run_id}/"


def _run_dir(results_dir: Path) -> Path | None:
    runs = run_dirs(results_dir)
    return runs[-1] if runs else None


def _count_requests(run_dir: Path) -> int:
    """Rows the run has landed so far: the compacted Parquet files, and the lines of JSONL parts not yet
    compacted (a run with client processes lands one part per process, collector/landing.py)."""
    total = 0
    parquets = sorted(run_dir.glob("requests*.parquet"))
    if parquets:
        import duckdb

        with duckdb.connect() as con:
            row = con.execute("select count(*) from read_parquet(?)", [[p.as_posix() for p in parquets]]).fetchone()
        total += int(row[0]) if row else 0
    for part in run_dir.glob("requests*.jsonl"):
        if (run_dir / PART_RE.sub(_group_parquet, part.name)).exists():
            continue  # compacted a moment ago
        try:
            with part.open("rb") as f:
                total += sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
        except OSError:
            continue
    return total


def _group_parquet(match: re.Match[str]) -> str:
    return f"{match['table']}{'.' + match['shard'] if match['shard'] else ''}.parquet"


def _state(args: argparse.Namespace, phase: str, **extra: Any) -> dict[str, Any]:
    state: dict[str, Any] = {
        "phase": phase,
        "experiment": args.experiment,
        "updated_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    run_dir = _run_dir(Path(args.results_dir))
    if run_dir is not None:
        state["run_id"] = run_dir.name
        state["requests"] = _count_requests(run_dir)
    state.update(extra)
    return state


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m collector.launch.uploader")
    p.add_argument("action", choices=("state", "heartbeat", "upload"))
    p.add_argument("--bucket", required=True)
    p.add_argument("--prefix", required=True)
    p.add_argument("--launch-id", required=True)
    p.add_argument("--experiment", required=True)
    p.add_argument("--results-dir", required=True)
    p.add_argument("--phase", default="running")
    p.add_argument("--exit-code", type=int, default=None)
    p.add_argument("--log", type=Path, default=None)
    args = p.parse_args(argv)
    aws = Aws(None)
    key = state_key(args.prefix, args.launch_id, args.experiment)
    try:
        if args.action == "state":
            aws.put_json(args.bucket, key, _state(args, args.phase))
        elif args.action == "heartbeat":
            state = _state(args, "running")
            run_dir = _run_dir(Path(args.results_dir))
            if run_dir is not None and (run_dir / MANIFEST_FILE).is_file():
                aws.upload_file(
                    run_dir / MANIFEST_FILE, args.bucket, raw_prefix(args.prefix, run_dir.name) + MANIFEST_FILE
                )
            aws.put_json(args.bucket, key, state)
        else:
            _upload(aws, args, key)
    except LaunchError as exc:
        print(f"uploader: {exc}", file=sys.stderr)
        return 1
    return 0


def _upload(aws: Aws, args: argparse.Namespace, key: str) -> None:
    if args.log is not None and args.log.is_file():
        aws.upload_file(args.log, args.bucket, key.rsplit("/", 1)[0] + "/collector.log")
    run_dir = _run_dir(Path(args.results_dir))
    if run_dir is None:
        aws.put_json(args.bucket, key, _state(args, "failed", exit_code=args.exit_code, message="no run folder"))
        return
    files = sorted(f for f in run_dir.rglob("*") if f.is_file() and not f.name.startswith("."))
    for f in files:
        aws.upload_file(f, args.bucket, raw_prefix(args.prefix, run_dir.name) + f.relative_to(run_dir).as_posix())
    aws.put_json(args.bucket, key, _state(args, "uploaded", exit_code=args.exit_code, files=len(files)))


if __name__ == "__main__":
    sys.exit(main())
