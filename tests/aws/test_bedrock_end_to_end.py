"""End to end: `python -m collector run` with a Bedrock experiment on the loopback runtime (throttling on), raw rows
landed, the marts built by dbt, token pricing and the retries checked against the raw rows by hand."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from collector.sim.aws import AwsLoopback
from tests.aws.loopback import serve_aws
from tests.aws.test_bedrock import MODEL, bedrock_experiment
from tests.conftest import config_dict, run_cli, write_config

pytestmark = pytest.mark.slow

USD_PER_1M_INPUT = USD_PER_1M_OUTPUT = 0.22  # the frozen token price of MODEL


def test_bedrock_run_lands_rows_and_the_marts_price_it_per_token_and_show_its_throttling(tmp_path: Path) -> None:
    state = AwsLoopback(bedrock_models=frozenset({MODEL}), throttle_first=4)
    with serve_aws(state) as url:
        cfg = write_config(tmp_path / "bedrock.yml", config_dict([bedrock_experiment(url)]))
        done = run_cli("run", "--config", str(cfg), "--results-dir", str(tmp_path / "results"), timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    con = duckdb.connect(str(tmp_path / "results" / "tokenbench.duckdb"), read_only=True)
    try:
        raw = con.execute(
            "select concurrency, count(*), avg(prompt_tokens), avg(completion_tokens), sum(retry_count), "
            "count(*) filter (where retry_count > 0), sum(retry_wait_ns) / 1e9 "
            "from raw.requests where not is_warmup and status = 'success' group by concurrency order by concurrency"
        ).fetchall()
        marts = con.execute(
            "select m.concurrency, m.pricing_kind, m.price_per_txn, m.cost_per_10k_txn, r.retry_count_total, "
            "r.throttled_request_count, r.retry_wait_s_total, r.request_count "
            "from marts.fct_concurrency_metrics m join marts.fct_level_retries r using "
            "(run_id, experiment_name, payload_file, concurrency) order by m.concurrency"
        ).fetchall()
        cost = con.execute("select pricing_kind, cost_usd from marts.fct_experiment_costs").fetchall()
        tokens = con.execute(
            "select sum(prompt_tokens), sum(completion_tokens) from raw.requests where status = 'success'"
        ).fetchone()
    finally:
        con.close()
    assert [r[0] for r in raw] == [1, 3] and all(r[1] == 6 for r in raw)  # no request lost to throttling
    assert sum(r[4] for r in raw) == state.throttled == 4
    for (conc, _n, prompt_mean, completion_mean, retries, throttled, wait_s), mart in zip(raw, marts, strict=True):
        expected = prompt_mean * USD_PER_1M_INPUT / 1e6 + completion_mean * USD_PER_1M_OUTPUT / 1e6
        assert mart[:2] == (conc, "token")
        assert mart[2] == pytest.approx(expected, rel=1e-12)
        assert mart[3] == pytest.approx(10_000 * expected, rel=1e-12)
        assert mart[4:7] == (retries, throttled, pytest.approx(wait_s, rel=1e-9)) and mart[7] == 6
    assert tokens is not None
    assert cost == [("token", pytest.approx((tokens[0] + tokens[1]) * 0.22 / 1e6, rel=1e-12))]
