"""The simulator's settings are declared once (collector/sim/settings.py) and reach all three users: a config's
`type: simulated` endpoint, the `sim` command's options, and the command line that spawns the simulator."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.cli import parser as cli_parser
from collector.cli import sim as sim_cli
from collector.config import SimulatedEndpoint, load_config
from collector.config_base import MAX_TOKENS
from collector.endpoints import Simulator, simulator_settings
from collector.errors import ConfigError
from collector.sim.settings import CLI_SETTINGS, SimEndpointSettings, SimSettings, command_args, option
from tests.conftest import config_dict, sim_experiment, write_config

# A value other than the default for every key a simulated endpoint takes; a new key must be added here.
ENDPOINT_VALUES: dict[str, Any] = {
    "model": "meta-llama/Llama-3.1-8B-Instruct",  # the profile's Hugging Face id, not its key
    "mean_output_tokens": 12.5,
    "seed": 2**63 - 1,
    "speedup": 123.25,
}


def _sim_options(argv: list[str]) -> argparse.Namespace:
    """`argv` parsed by the real `python -m collector` parser, as the spawned process parses it."""
    return cli_parser().parse_args(argv)


def test_every_simulated_endpoint_key_reaches_the_servers_settings_through_the_spawned_command_line(
    tmp_path: Path,
) -> None:
    assert set(ENDPOINT_VALUES) == set(SimEndpointSettings.model_fields)
    assert all(ENDPOINT_VALUES[n] != f.default for n, f in SimEndpointSettings.model_fields.items())
    exp = sim_experiment(endpoint={"type": "simulated", **ENDPOINT_VALUES}, model_id="team/served-name")
    cfg = load_config(write_config(tmp_path / "c.yml", config_dict([exp])))

    cmd = Simulator(cfg.experiments[0], tmp_path / "sim.log").command()
    assert cmd[:4] == [sys.executable, "-m", "collector", "sim"]
    served = sim_cli._settings(_sim_options(cmd[3:]))  # what `python -m collector sim` serves with

    assert served == simulator_settings(cfg.experiments[0])
    assert {name: getattr(served, name) for name in ENDPOINT_VALUES} == ENDPOINT_VALUES
    assert (served.instance_type, served.served_model_name) == ("g5.4xlarge", "team/served-name")


def test_the_endpoint_and_the_sim_command_take_each_setting_as_the_settings_model_declares_it() -> None:
    for name, field in SimEndpointSettings.model_fields.items():
        shared = SimulatedEndpoint.model_fields[name]
        assert (shared.annotation, shared.default, shared.description, shared.metadata) == (
            field.annotation,
            field.default,
            field.description,
            field.metadata,
        ), name
    sim = next(
        action.choices["sim"] for action in cli_parser()._actions if isinstance(action, argparse._SubParsersAction)
    )
    actions = {a.dest: a for a in sim._actions}
    for name in CLI_SETTINGS:
        field = SimSettings.model_fields[name]
        action = actions[name]
        assert action.option_strings == [option(name)]
        assert action.default == field.default, name
        assert action.help is not None and action.help.startswith((field.description or "").removesuffix(".")), name


@pytest.mark.parametrize(
    ("name", "bad", "bound"),
    [
        ("speedup", 0.5, "greater than or equal to 1"),
        ("speedup", 2e6, "less than or equal to 1000000"),
        ("mean_output_tokens", 0, "greater than 0"),
        ("seed", -1, "greater than or equal to 0"),
    ],
)
def test_a_bound_declared_once_holds_in_the_config_and_on_the_command_line(
    tmp_path: Path, name: str, bad: Any, bound: str
) -> None:
    exp = sim_experiment(endpoint={"type": "simulated", name: bad})
    path = write_config(tmp_path / "c.yml", config_dict([exp]))
    with pytest.raises(ConfigError) as in_config:
        load_config(path)
    with pytest.raises(ConfigError) as on_command_line:
        sim_cli._settings(_sim_options(["sim", f"{option(name)}={bad}"]))
    # The same bound, stated the same way, refuses the value in both places.
    assert str(in_config.value) == f"{path}: experiments[0].endpoint.{name}: Input should be {bound}"
    assert str(on_command_line.value) == f"invalid {option(name)}: Input should be {bound}"


def test_settings_the_sim_command_has_no_option_for_are_refused_not_dropped() -> None:
    with pytest.raises(ValueError, match="no option for max_num_seqs"):
        command_args(SimSettings(max_num_seqs=8))


# No NUL (a command-line argument cannot hold one); anything else, a leading '-' or an '=' included.
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20)


@settings(max_examples=200, deadline=None)
@given(
    instance_type=TEXT,
    model=TEXT,
    served_model_name=st.none() | TEXT,
    mean_output_tokens=st.floats(min_value=0, max_value=MAX_TOKENS, exclude_min=True),
    seed=st.integers(min_value=0, max_value=2**63 - 1),
    speedup=st.floats(min_value=1, max_value=1e6),
    tensor_parallel=st.none() | st.integers(min_value=1, max_value=64),
)
def test_any_settings_the_sim_command_takes_survive_the_spawned_command_line(**values: Any) -> None:
    assert set(values) == set(CLI_SETTINGS)
    sent = SimSettings(**values)
    assert sim_cli._settings(_sim_options(["sim", *command_args(sent)])) == sent
