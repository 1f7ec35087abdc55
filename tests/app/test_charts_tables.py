"""The app command and the simulated-run title, on hand-made rows (the charts are in test_charts.py, the tables in
test_tables.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from collector.cli import app as app_cli
from collector.cli import options
from collector.outputs import tables


def test_app_command_passes_the_warehouse_after_the_double_dash(tmp_path: Path) -> None:
    # the command `collector app` serves (tests/test_signals.py runs the real server and stops it)
    parser = argparse.ArgumentParser()
    app_cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["app", "--results-dir", str(tmp_path), "--port", "8765"])
    cmd = app_cli.command(options.warehouse(args), args.port, args.address)
    assert cmd[1:4] == ["-m", "streamlit", "run"] and cmd[4].endswith("streamlit_app/app.py")
    assert cmd[cmd.index("--server.port") + 1] == "8765"
    assert cmd[cmd.index("--server.address") + 1] == "127.0.0.1"  # this machine only, no external IP lookup
    assert cmd[cmd.index("--") + 1 :] == ["--warehouse", str((tmp_path / "tokenbench.duckdb").resolve())]


@pytest.mark.parametrize(
    ("simulated", "experiments", "label"),
    [(2, 2, "simulated"), (1, 2, "partly simulated"), (0, 2, ""), (None, None, "")],
)
def test_a_run_sent_to_the_simulator_is_labelled_so_in_the_title(
    simulated: int | None, experiments: int | None, label: str
) -> None:
    run = {"simulated_experiment_count": simulated, "experiment_count": experiments}
    assert tables.simulated(run) == label
    suffix = f" ({label})" if label else ""
    assert tables.title(["m1", "m2"], run) == f"Results for performance benchmarking m1, m2{suffix}"
