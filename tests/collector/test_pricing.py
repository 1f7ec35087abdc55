"""Prices: every experiment of a config is priced (or says it is not), and the manifest records the price applied."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.config import load_config
from collector.errors import ConfigError
from collector.pricing import applied_prices, read_prices
from collector.settings import INSTANCE_PRICES_FILE, TOKEN_PRICES_FILE
from tests.conftest import config_dict, config_error, sim_experiment, write_config

REMOTE = {"type": "openai", "base_url": "http://127.0.0.1:9/v1", "served_model_name": "m"}


def test_unknown_instance_type_is_named(tmp_path: Path) -> None:
    msg = config_error(tmp_path, lambda c: c["experiments"][0].update(instance_type="g5.4xlarg"))
    assert "experiments[0].instance_type: unknown instance type 'g5.4xlarg'" in msg


def test_token_priced_model_without_price_is_named(tmp_path: Path) -> None:
    msg = config_error(tmp_path, lambda c: c["experiments"][0].pop("instance_type"))
    assert "experiments[0].model_id: no instance_type and no token price" in msg


def test_an_inline_price_or_unpriced_needs_no_pricing_row(tmp_path: Path) -> None:
    on_prem = sim_experiment(name="on-prem", endpoint=REMOTE, instance_type="dgx-basement", price={"usd_per_hour": 3.2})
    laptop = sim_experiment(name="laptop", endpoint=REMOTE, instance_type=None, model_id="my/own-model", unpriced=True)
    cfg = load_config(write_config(tmp_path / "c.yml", config_dict([on_prem, laptop])))
    rows = {r["experiment_name"]: r for r in applied_prices(cfg)}
    assert (rows["on-prem"]["pricing_kind"], rows["on-prem"]["price_source"], rows["on-prem"]["usd_per_hour"]) == (
        "instance",
        "config",
        3.2,
    )
    assert (rows["laptop"]["pricing_kind"], rows["laptop"]["price_source"], rows["laptop"]["usd_per_hour"]) == (
        "unpriced",
        None,
        None,
    )
    assert {r["telemetry_host"] for r in rows.values()} == {"collector"}  # both endpoints are remote


def test_the_manifest_charges_an_instance_by_its_hour_and_an_api_by_its_tokens_from_the_price_files(
    tmp_path: Path,
) -> None:
    pricing = tmp_path / "pricing"
    pricing.mkdir()
    # Token prices first in the folder listing and in the file order: the tables are told apart by file name.
    (pricing / TOKEN_PRICES_FILE).write_text(
        "model_id,usd_per_1m_input_tokens,usd_per_1m_output_tokens,price_read_on\napi/model,0.25,1.5,2026-01-02\n"
    )
    (pricing / INSTANCE_PRICES_FILE).write_text("instance_type,usd_per_hour,price_read_on\nbox.large,2.5,2026-01-01\n")
    gpu = sim_experiment(name="gpu", endpoint=REMOTE, instance_type="box.large", instance_count=2)
    api = sim_experiment(name="api", endpoint=REMOTE, instance_type=None, model_id="api/model")
    cfg = load_config(write_config(tmp_path / "c.yml", config_dict([gpu, api], pricing_dir=str(pricing))))

    instance_prices, token_prices = read_prices(pricing)
    assert (list(instance_prices), list(token_prices)) == (["box.large"], ["api/model"])
    rows = {r["experiment_name"]: r for r in applied_prices(cfg)}
    assert {k: rows["gpu"][k] for k in ("pricing_kind", "price_source", "usd_per_hour", "instance_count")} == {
        "pricing_kind": "instance",
        "price_source": "pricing",
        "usd_per_hour": 2.5,
        "instance_count": 2,
    }
    assert rows["gpu"]["price_read_on"] == "2026-01-01"
    assert (rows["api"]["pricing_kind"], rows["api"]["usd_per_hour"]) == ("token", None)
    assert (rows["api"]["usd_per_1m_input_tokens"], rows["api"]["usd_per_1m_output_tokens"]) == (0.25, 1.5)
    assert rows["api"]["price_read_on"] == "2026-01-02"


def test_a_pricing_folder_without_a_price_file_is_named(tmp_path: Path) -> None:
    pricing = tmp_path / "pricing"
    pricing.mkdir()
    (pricing / INSTANCE_PRICES_FILE).write_text("instance_type,usd_per_hour,price_read_on\n")
    with pytest.raises(ConfigError, match=rf"pricing_dir: .*{TOKEN_PRICES_FILE} not found"):
        read_prices(pricing)
