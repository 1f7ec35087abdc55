"""queries.telemetry_samples on a hand-made fct_telemetry_samples: every instant of a short run, a long run
averaged down to a bounded number of points without mixing concurrency levels."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from collector.outputs import queries


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    """Run `long`: 7,201 instants a second apart, cpu_percent = t, concurrency 1 from 1,000 to 1,999 s and 2
    from 3,001 to 5,000 s; run `short`: 5 instants."""
    path = tmp_path / "tokenbench.duckdb"
    con = duckdb.connect(str(path))
    con.execute("create schema marts")
    con.execute(
        """
        create table marts.fct_telemetry_samples as
        select
            run_id, t * 1000000000 as offset_ns, t::double as seconds_since_run_start,
            timestamptz '2026-01-01 00:00:00+00' + to_seconds(t) as sampled_at,
            case when level is not null then 'e' end as experiment_name, level as concurrency,
            0 as gpu_count, t::double as cpu_percent, 8.0 as host_memory_used_gib,
            null::double as gpu_utilization_percent, null::double as gpu_memory_used_gib,
            null::double as gpu_memory_total_gib, null::double as gpu_power_w
        from (
            select 'long' as run_id, t,
                case when t between 1000 and 1999 then 1 when t between 3001 and 5000 then 2 end::integer as level
            from range(7201) as r(t)
            union all
            select 'short', t, null from range(5) as r(t)
        )
        """
    )
    con.close()
    return path


def test_a_short_run_returns_every_instant_in_time_order(warehouse: Path) -> None:
    rows = queries.telemetry_samples(warehouse, "short")
    assert rows["seconds_since_run_start"].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert rows["sample_count"].tolist() == [1] * 5


def test_a_long_run_is_averaged_to_about_max_points_without_crossing_a_level_window(warehouse: Path) -> None:
    rows = queries.telemetry_samples(warehouse, "long", max_points=3600)
    # ceil(7201 / 3600) = 3 instants a point; a window edge inside a group of three splits it.
    assert 2401 <= len(rows) <= 2401 + 4
    assert int(rows["sample_count"].sum()) == 7201 and int(rows["sample_count"].max()) == 3
    assert rows["seconds_since_run_start"].is_monotonic_increasing
    first = rows.iloc[0]
    assert (first["seconds_since_run_start"], first["cpu_percent"], first["sample_count"]) == (0.0, 1.0, 3)
    level_one = rows[rows["concurrency"] == 1]
    assert int(level_one["sample_count"].sum()) == 1000
    assert level_one["seconds_since_run_start"].min() == 1000.0
    assert set(rows.loc[rows["concurrency"].isna(), "experiment_name"].isna()) == {True}
