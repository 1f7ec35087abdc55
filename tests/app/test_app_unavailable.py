"""The app on a warehouse it cannot read yet: a message naming what to run, never a traceback."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest
from streamlit.testing.v1 import AppTest

from collector.outputs import queries
from streamlit_app import app as app_module
from tests.app.app_helpers import texts


def _messages(at: AppTest) -> str:
    assert not at.exception, [e.value for e in at.exception]
    return "\n".join(str(e.value) for e in [*at.info, *at.warning, *at.error])


def test_missing_warehouse_says_to_run_the_collector(app_on: Callable[..., AppTest], tmp_path: Path) -> None:
    at = app_on(tmp_path / "nowhere" / "tokenbench.duckdb").run()
    message = _messages(at)
    assert "No warehouse at" in message and "nowhere" in message
    assert "python -m collector run" in message


def test_warehouse_without_marts_says_to_run_or_build(app_on: Callable[..., AppTest], tmp_path: Path) -> None:
    warehouse = tmp_path / "tokenbench.duckdb"
    con = duckdb.connect(str(warehouse))
    con.execute("create schema raw")
    con.close()
    at = app_on(warehouse).run()
    message = _messages(at)
    assert "has no marts yet" in message
    assert "python -m collector run" in message and "python -m collector build" in message


def test_marts_without_a_run_say_so(app_on: Callable[..., AppTest], tmp_path: Path) -> None:
    warehouse = tmp_path / "tokenbench.duckdb"
    con = duckdb.connect(str(warehouse))
    con.execute("create schema marts")
    con.execute("create table marts.dim_runs (run_id varchar, started_at timestamptz)")
    con.close()
    at = app_on(warehouse).run()
    assert "has marts but no run" in _messages(at)


def test_locked_warehouse_asks_to_wait_for_the_build(app_on: Callable[..., AppTest], tmp_path: Path) -> None:
    warehouse = tmp_path / "tokenbench.duckdb"
    duckdb.connect(str(warehouse)).close()
    # Another process holds the write lock, as dbt does during a build.
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import duckdb, sys, time
                con = duckdb.connect({str(warehouse)!r})
                print("locked", flush=True)
                time.sleep(60)
                """
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        at = app_on(warehouse).run()
        message = _messages(at)
        assert "being written by another process" in message
        assert "python -m collector build" in message
        assert time.monotonic() - started < 30
    finally:
        holder.kill()
        holder.wait()


def test_data_functions_raise_one_line_user_errors(tmp_path: Path) -> None:
    with pytest.raises(queries.WarehouseMissing) as missing:
        queries.runs(tmp_path / "absent.duckdb")
    assert "\n" not in str(missing.value)
    duckdb.connect(str(tmp_path / "empty.duckdb")).close()
    with pytest.raises(queries.WarehouseEmpty) as empty:
        queries.level_metrics(tmp_path / "empty.duckdb", ["r"])
    assert "\n" not in str(empty.value) and "python -m collector build" in str(empty.value)


def test_warehouse_argument_wins_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKENBENCH_WAREHOUSE", "/env/tokenbench.duckdb")
    assert app_module.warehouse_path(["--warehouse", "/arg/w.duckdb"]) == Path("/arg/w.duckdb")
    assert app_module.warehouse_path(["--other", "x"]) == Path("/env/tokenbench.duckdb")
    monkeypatch.delenv("TOKENBENCH_WAREHOUSE")
    assert app_module.warehouse_path([]) == Path("results/tokenbench.duckdb")


def test_missing_warehouse_page_text_has_no_traceback(app_on: Callable[..., AppTest], tmp_path: Path) -> None:
    at = app_on(tmp_path / "absent.duckdb").run()
    assert "Traceback" not in texts(at)
    assert not at.exception
