"""Names and default paths every part of tokenbench shares: environment variables, the results layout, the price
files. One home for each, so the CLI, the runner, dbt's runner, the launcher and the app cannot drift apart
(models_dbt/profiles.yml and the pricing source read the same variables by name)."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

RESULTS_ENV = "TOKENBENCH_RESULTS_DIR"  # results folder (raw/, the warehouse, reports/, logs/)
WAREHOUSE_ENV = "TOKENBENCH_WAREHOUSE"  # warehouse file, for the app and dbt's profile
PRICING_ENV = "TOKENBENCH_PRICING_DIR"  # price files, for dbt's pricing source
# dbt's spark target (models_dbt/profiles.yml): Spark's warehouse folder and metastore; default <results>/spark.
SPARK_DIR_ENV = "TOKENBENCH_SPARK_DIR"
# The landing zone an engine's sources read (models_dbt/macros/spark_sources.sql): default <results>/raw; a local
# mirror of an S3 landing zone for local Spark, or an s3:// (s3a://) URL a cluster's Spark reads itself.
RAW_DIR_ENV = "TOKENBENCH_RAW_DIR"

DEFAULT_RESULTS_DIR = Path("results")
WAREHOUSE_FILE = "tokenbench.duckdb"
DEFAULT_WAREHOUSE = DEFAULT_RESULTS_DIR / WAREHOUSE_FILE

DBT_PROJECT_DIR = REPO_ROOT / "models_dbt"
DEFAULT_PRICING_DIR = REPO_ROOT / "pricing"
INSTANCE_PRICES_FILE = "instance_prices.csv"  # hourly prices by instance_type
TOKEN_PRICES_FILE = "token_prices.csv"  # per-token prices by model_id, for token-priced APIs
# Each price file: its key column and its price columns.
PRICE_FILES: dict[str, tuple[str, tuple[str, ...]]] = {
    INSTANCE_PRICES_FILE: ("instance_type", ("usd_per_hour",)),
    TOKEN_PRICES_FILE: ("model_id", ("usd_per_1m_input_tokens", "usd_per_1m_output_tokens")),
}
