"""Prices: the price files of a pricing folder (settings.PRICE_FILES) read and checked, every experiment of a config
(or of an imported run) checked to be priced, and the price each one is charged at as the run manifest records it."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

from collector.config import Config, read_text, telemetry_host
from collector.errors import ConfigError
from collector.settings import INSTANCE_PRICES_FILE, PRICE_FILES, TOKEN_PRICES_FILE

MAX_PRICE_BYTES = 50 * 1024 * 1024

PriceTable = dict[str, dict[str, str]]


def _read_price_file(file: Path, key: str, prices: tuple[str, ...]) -> PriceTable:
    """Rows by key; every price must be a finite number >= 0, so a bad cell fails here and not in dbt."""
    text = read_text(file, "price table", MAX_PRICE_BYTES)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    columns = reader.fieldnames or []
    for column in (key, *prices, "price_read_on"):
        if column not in columns:
            raise ConfigError(f"{file}: missing column {column!r} (columns: {', '.join(columns) or 'none'})")
    rows: PriceTable = {}
    for row in reader:
        line = reader.line_num
        if not row.get(key):
            raise ConfigError(f"{file}: line {line}: {key}: empty")
        for column in prices:
            cell = row.get(column)
            try:
                value = float(cell or "")
            except ValueError:
                raise ConfigError(f"{file}: line {line}: {column}: not a number: {cell!r}") from None
            if not math.isfinite(value) or value < 0:
                raise ConfigError(f"{file}: line {line}: {column}: must be a finite number >= 0, not {cell!r}")
        rows[row[key]] = row
    return rows


def read_prices(pricing_dir: Path) -> tuple[PriceTable, PriceTable]:
    """(instance prices by instance_type, token prices by model_id) from the pricing folder."""
    tables = {}
    for name, (key, prices) in PRICE_FILES.items():
        file = pricing_dir / name
        if not file.is_file():
            raise ConfigError(f"pricing_dir: {file} not found")
        tables[name] = _read_price_file(file, key, prices)
    return tables[INSTANCE_PRICES_FILE], tables[TOKEN_PRICES_FILE]


def check_price(
    prices: tuple[PriceTable, PriceTable],
    pricing_dir: Path,
    *,
    instance_type: str | None,
    model_id: str,
    at_instance_type: str,
    at_model_id: str,
    instance_type_name: str = "instance_type",
) -> None:
    """One experiment that is to be priced from pricing/ must be: by its instance type, or by its model id for a
    token-priced API. `at_*` say where each value came from (a config's key, a command-line option)."""
    instance_prices, token_prices = prices
    if instance_type is not None:
        if instance_type not in instance_prices:
            known = ", ".join(sorted(instance_prices)[:6])
            raise ConfigError(
                f"{at_instance_type}: unknown instance type {instance_type!r} "
                f"(not in {pricing_dir / INSTANCE_PRICES_FILE}; known include {known}, ...)"
            )
    elif model_id not in token_prices:
        raise ConfigError(
            f"{at_model_id}: no {instance_type_name} and no token price for {model_id!r} "
            f"in {pricing_dir / TOKEN_PRICES_FILE}"
        )


def check_prices(config: Config, path: Path) -> None:
    """Every experiment must be priced: inline, by its instance type, or by its model id for token-priced
    APIs, unless it says `unpriced: true`."""
    prices = read_prices(config.pricing_dir)
    for i, exp in enumerate(config.experiments):
        if exp.unpriced or exp.price is not None:
            continue
        check_price(
            prices,
            config.pricing_dir,
            instance_type=exp.instance_type,
            model_id=exp.model_id,
            at_instance_type=f"{path}: experiments[{i}].instance_type",
            at_model_id=f"{path}: experiments[{i}].model_id",
        )


def price_record(
    prices: tuple[PriceTable, PriceTable],
    *,
    experiment_name: str,
    model_id: str,
    endpoint_type: str,
    instance_type: str | None,
    instance_count: int,
    inline_usd_per_hour: float | None,
    unpriced: bool,
    telemetry_host: str | None,
) -> dict[str, Any]:
    """The price one experiment is charged at, as the run manifest's experiments_json records it (checked first
    with check_price unless it is priced inline or unpriced)."""
    instance_prices, token_prices = prices
    row: dict[str, Any] = {
        "experiment_name": experiment_name,
        "model_id": model_id,
        "endpoint_type": endpoint_type,
        "instance_type": instance_type,
        "instance_count": instance_count,
        "pricing_kind": "instance" if instance_type else "token",
        "price_source": "pricing",
        "usd_per_hour": None,
        "usd_per_1m_input_tokens": None,
        "usd_per_1m_output_tokens": None,
        "price_read_on": None,
        "telemetry_host": telemetry_host,
    }
    if unpriced:
        row.update(pricing_kind="unpriced", price_source=None)
        return row
    if inline_usd_per_hour is not None:
        row.update(pricing_kind="instance", price_source="config", usd_per_hour=inline_usd_per_hour)
        return row
    if instance_type:
        price = instance_prices[instance_type]
        row["usd_per_hour"] = float(price["usd_per_hour"])
    else:
        price = token_prices[model_id]
        row["usd_per_1m_input_tokens"] = float(price["usd_per_1m_input_tokens"])
        row["usd_per_1m_output_tokens"] = float(price["usd_per_1m_output_tokens"])
    row["price_read_on"] = price["price_read_on"]
    return row


def applied_prices(config: Config) -> list[dict[str, Any]]:
    """The price each experiment is charged at, as recorded in the run manifest."""
    prices = read_prices(config.pricing_dir)
    return [
        price_record(
            prices,
            experiment_name=exp.name,
            model_id=exp.model_id,
            endpoint_type=exp.endpoint.type,
            instance_type=exp.instance_type,
            instance_count=exp.instance_count,
            inline_usd_per_hour=exp.price.usd_per_hour if exp.price is not None else None,
            unpriced=exp.unpriced,
            telemetry_host=telemetry_host(exp.endpoint.type),
        )
        for exp in config.experiments
    ]
