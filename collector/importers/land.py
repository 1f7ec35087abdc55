"""Lands an imported file as a run of its own: one raw request row per request and a manifest, through the same
landing code as `collector run` (RunLanding, then compact_run to Parquet), so the marts read it like any run.

Nothing is landed unless the whole file was read; a fault while landing removes the run's folder again.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from collector import __version__
from collector.clock import iso_utc, now_iso
from collector.config import Report
from collector.importers.records import ImportedFile, ImportedRequest, LevelKey
from collector.landing import LandingError, RunLanding, compact_run, process_identity
from collector.runner import new_run_id
from collector.schema import RequestRow, RunManifest

ENDPOINT_TYPE = "imported"  # RequestRow.endpoint_type and experiments_json's of an imported run


@dataclass(frozen=True)
class ImportSettings:
    """What the run is called, judged and priced by (the command line and the config it names)."""

    run_name: str
    model_id: str
    report: Report
    config_path: str
    pricing_dir: Path
    experiments: list[dict[str, Any]]  # experiments_json: one price record per experiment (pricing.price_record)
    options: dict[str, Any]  # the options given, as the manifest records them


@dataclass(frozen=True)
class Landed:
    run_id: str
    run_dir: Path
    requests: int
    errors: int
    warmups: int


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def land(parsed: ImportedFile, settings: ImportSettings, results_dir: Path) -> Landed:
    """Land the file's rows and manifest under <results_dir>/raw/<new run id>/, final and compacted."""
    run_id = new_run_id()
    rows = request_rows(parsed, settings, run_id)
    results_dir.mkdir(parents=True, exist_ok=True)
    landing = RunLanding(results_dir, run_id)
    try:
        manifest = _manifest(parsed, settings, run_id, rows)
        landing.write_manifest(replace(manifest, status="running", ended_at=None))  # a kill from here shows as lost
        for row in rows:
            landing.append("requests", row)
        landing.close()
        if landing.error:
            raise LandingError(landing.error)
        landing.write_manifest(replace(manifest, heartbeat_at=now_iso()), final=True)
        compact_run(landing.dir)
    except BaseException:
        shutil.rmtree(landing.dir, ignore_errors=True)  # nothing of a half-landed import stays
        raise
    return Landed(
        run_id,
        landing.dir,
        len(rows),
        sum(r.status != "success" for r in rows),
        sum(r.is_warmup for r in rows),
    )


def request_rows(parsed: ImportedFile, settings: ImportSettings, run_id: str) -> list[RequestRow]:
    """One RequestRow per imported request, in the order the tool sent them (its file order where it recorded no
    send times); what the tool did not record stays null."""
    experiments = {e["experiment_name"]: e for e in settings.experiments}
    durations = {level.key: level.duration_ns for level in parsed.levels}
    starts = [r.start_ns for r in parsed.requests if r.start_ns is not None]
    origin = min(starts) if starts else 0
    in_level: Counter[LevelKey] = Counter()
    rows = []
    for seq, r in enumerate(sorted(parsed.requests, key=_send_order)):
        experiment = experiments[r.level.experiment_name]
        rows.append(
            RequestRow(
                run_id=run_id,
                request_id=f"{run_id}:{seq}",
                experiment_name=r.level.experiment_name,
                model_id=settings.model_id,
                endpoint_type=ENDPOINT_TYPE,
                endpoint_url=parsed.endpoint_url,
                api_style=parsed.api_style,
                is_streaming=parsed.is_streaming,
                instance_type=experiment["instance_type"],
                instance_count=experiment["instance_count"],
                payload_file=r.level.payload_file,
                prompt_index=None,
                concurrency=r.level.concurrency,
                worker_index=None,
                sequence_in_level=in_level[r.level],
                is_warmup=r.is_warmup,
                max_tokens=None,
                started_at=iso_utc(r.wall_start_ns) if r.wall_start_ns is not None else None,
                start_offset_ns=r.start_ns - origin if r.start_ns is not None else None,
                e2e_ns=r.e2e_ns,  # type: ignore[arg-type]  # null where the tool recorded none (schema.py)
                first_chunk_ns=None,
                first_content_ns=r.first_content_ns,
                last_content_ns=r.last_content_ns,
                chunk_count=None,
                content_chunk_count=None,
                status="success" if r.is_success else "error",
                http_status=r.http_status,
                error_type=r.error_type,
                error_message=r.error_message,
                finish_reason=None,
                prompt_tokens=r.prompt_tokens,
                completion_tokens=r.completion_tokens,
                token_count_source=None,
                client_prompt_tokens=None,
                client_completion_tokens=None,
                token_counter=None,
                source_tool=parsed.tool,
                source_request_id=r.source_request_id,
                source_level_duration_ns=durations[r.level],
            )
        )
        in_level[r.level] += 1
    return rows


def _send_order(r: ImportedRequest) -> tuple[bool, int, int]:
    return (r.start_ns is None, r.start_ns or 0, r.file_order)


def _wall_span(parsed: ImportedFile) -> tuple[str, str] | None:
    """The first send and the last end the tool recorded on the wall clock, if it did."""
    walls = [r for r in parsed.requests if r.wall_start_ns is not None]
    if not walls:
        return None
    first = min(r.wall_start_ns for r in walls if r.wall_start_ns is not None)
    last = max((r.wall_start_ns or 0) + (r.e2e_ns or 0) for r in walls)
    return iso_utc(first), iso_utc(last)


def _manifest(parsed: ImportedFile, settings: ImportSettings, run_id: str, rows: list[RequestRow]) -> RunManifest:
    now = now_iso()
    started_at, ended_at = _wall_span(parsed) or (now, now)
    hostname, pid, process_started_at = process_identity()
    per_level = Counter((r.experiment_name, r.payload_file, r.concurrency) for r in rows)
    plan: dict[str, dict[str, Any]] = {}
    for level in parsed.levels:
        k = level.key
        exp = plan.setdefault(
            k.experiment_name,
            {"name": k.experiment_name, "model_id": settings.model_id, "payloads": [], "concurrency_levels": []},
        )
        if k.payload_file not in exp["payloads"]:
            exp["payloads"].append(k.payload_file)
        if k.concurrency not in exp["concurrency_levels"]:
            exp["concurrency_levels"].append(k.concurrency)
    report = settings.report.model_dump(mode="json")
    slo = settings.report.slo_settings()  # goodput is judged as for our runs, by the config's objectives
    return RunManifest(
        run_id=run_id,
        run_name=settings.run_name,
        status="completed",
        started_at=started_at,
        ended_at=ended_at,
        heartbeat_at=now,
        error_message=None,
        config_path=settings.config_path,
        config_json={
            "run_name": settings.run_name,
            "experiments": list(plan.values()),
            "report": report,
            "pricing_dir": str(settings.pricing_dir),
            "import": {
                "tool": parsed.tool,
                "file": str(parsed.path.resolve()),
                "file_sha256": file_sha256(parsed.path),
                "imported_at": now,
                "options": settings.options,
                "levels": [
                    {
                        "experiment_name": level.key.experiment_name,
                        "payload_file": level.key.payload_file,
                        "concurrency": level.key.concurrency,
                        "source_level": level.source_level,
                        "requests": per_level[
                            (level.key.experiment_name, level.key.payload_file, level.key.concurrency)
                        ],
                        "duration_s": None if level.duration_ns is None else level.duration_ns / 1e9,
                    }
                    for level in parsed.levels
                ],
                "skipped": parsed.skipped,
                "tool_facts": parsed.facts,
            },
        },
        experiments_json=settings.experiments,
        latency_budget_s=settings.report.latency_budget_s,
        cost_per_10k_txn_budget_usd=settings.report.cost_per_10k_txn_budget_usd,
        error_rate_budget=settings.report.error_rate_budget,
        dataset_of_interest=settings.report.dataset_of_interest,
        collector_version=__version__,
        package_versions_json={"python": platform.python_version(), "tokenbench": __version__},
        hostname=hostname,
        platform=f"{platform.system()} {platform.release()} {platform.machine()}",
        python_version=platform.python_version(),
        cpu_count=os.cpu_count() or 1,
        pid=pid,
        process_started_at=process_started_at,
        slo_ttft_s=slo["slo_ttft_s"],
        slo_tpot_s=slo["slo_tpot_s"],
        slo_e2e_s=slo["slo_e2e_s"],
        slo_attainment=slo["slo_attainment"],
        source_tool=parsed.tool,
        source_file=str(parsed.path.resolve()),
    )
