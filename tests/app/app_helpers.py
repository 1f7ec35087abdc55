"""Helpers for the app and report tests: mart reads, and what an AppTest page shows."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
from streamlit.testing.v1 import AppTest

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "streamlit_app" / "app.py"


def mart(warehouse: Path, sql: str, params: list[Any] | None = None) -> pd.DataFrame:
    """Read the marts directly (the tests' independent view of the figures the app must show)."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(sql, params or []).df()
    finally:
        con.close()


def warehouse_copy(warehouse: Path, tmp_path: Path, update_sql: str) -> Path:
    """A writable copy of `warehouse` with its marts rewritten by `update_sql` (a case the run did not give)."""
    copy = tmp_path / "tokenbench.duckdb"
    shutil.copy(warehouse, copy)
    con = duckdb.connect(str(copy))
    try:
        con.execute(update_sql)
    finally:
        con.close()
    return copy


def charts_of(at: AppTest) -> list[dict[str, Any]]:
    """The Vega-Lite charts on the page: each spec, its title's text (a title with a subtitle is a dict) and its
    named datasets decoded to DataFrames."""
    out = []
    for element in at.get("vega_lite_chart"):
        proto = element.proto
        spec = json.loads(proto.spec)
        title = spec.get("title", "")
        datasets = {d.name: pa.ipc.open_stream(d.data.data).read_all().to_pandas() for d in proto.datasets}
        out.append(
            {"spec": spec, "title": title.get("text", "") if isinstance(title, dict) else title, "datasets": datasets}
        )
    return out


def texts(at: AppTest) -> str:
    """Every markdown, caption, title, header and alert text of the page (sidebar included), one string."""
    parts: list[str] = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "info", "warning", "error", "success"):
        parts.extend(str(e.value) for e in getattr(at, kind))
    parts.extend(str(e.value) for e in at.sidebar.warning)
    return "\n".join(parts)
