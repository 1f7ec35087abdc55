"""dbt-duckdb plugin named in models_dbt/profiles.yml: dbt's connection reads raw rows on S3 when the warehouse's
raw views point there (`collector build --results-dir s3://...`), and does nothing otherwise."""

from __future__ import annotations

from dbt.adapters.duckdb.plugins import BasePlugin
from duckdb import DuckDBPyConnection

from collector.duckdb_s3 import register_if_needed


class Plugin(BasePlugin):
    def configure_connection(self, conn: DuckDBPyConnection) -> None:
        register_if_needed(conn)
