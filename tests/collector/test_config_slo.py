"""report.slo: the objectives a good request meets, recorded where the warehouse reads the budgets."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.config import load_config
from collector.errors import ConfigError
from tests.conftest import config_dict, sim_experiment, write_config


def _config(tmp_path: Path, slo: dict | None) -> Path:
    cfg = config_dict([sim_experiment()])
    if slo is not None:
        cfg["report"]["slo"] = slo
    return write_config(tmp_path / "slo.yml", cfg)


def test_an_slo_is_recorded_with_the_default_attainment_and_absent_objectives_null(tmp_path: Path) -> None:
    report = load_config(_config(tmp_path, {"ttft_s": 0.5, "e2e_s": 2})).report
    assert report.slo_settings() == {"slo_ttft_s": 0.5, "slo_tpot_s": None, "slo_e2e_s": 2.0, "slo_attainment": 0.9}
    assert load_config(_config(tmp_path, None)).report.slo_settings() == dict.fromkeys(report.slo_settings())


@pytest.mark.parametrize(
    ("slo", "named"),
    [
        ({"attainment": 0.9}, "report.slo: give at least one of ttft_s, tpot_s, e2e_s"),
        ({"e2e_s": -1}, "report.slo.e2e_s"),
        ({"e2e_s": 1, "attainment": 1.5}, "report.slo.attainment"),
        ({"ttft": 0.5}, "report.slo.ttft: unknown key (did you mean 'ttft_s'?)"),
    ],
)
def test_a_bad_slo_is_one_line_naming_the_field(tmp_path: Path, slo: dict, named: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(_config(tmp_path, slo))
    assert "\n" not in str(info.value) and named in str(info.value), str(info.value)
