"""The README's generated reference matches the code, and its two commands are the ones CI runs."""

from __future__ import annotations

import subprocess

from collector.docs import render
from tests.conftest import REPO


def test_readme_reference_sections_are_current() -> None:
    readme = (REPO / "README.md").read_text()
    assert render(readme) == readme, "run `python -m collector.docs` to regenerate README.md"


def test_readme_has_both_commands_and_ci_runs_the_test_command() -> None:
    readme = (REPO / "README.md").read_text()
    for marker in ("main-command", "test-command"):
        block = readme.split(f"<!-- {marker} -->")[1].split(f"<!-- /{marker} -->")[0]
        assert "python3.11 -m venv .venv" in block
    assert "python -m collector run" in readme.split("<!-- /main-command -->")[0]


def test_ci_runs_exactly_the_readmes_test_command() -> None:
    readme = (REPO / "README.md").read_text()
    block = readme.split("<!-- test-command -->")[1].split("<!-- /test-command -->")[0]
    (command,) = [line for line in block.strip().splitlines() if not line.startswith("```")]
    ci = (REPO / ".ci" / "run").read_text()
    # CI's own line that reads the command out of the README, run here on this README.
    (extract,) = [line for line in ci.splitlines() if line.startswith("test_command=")]
    script = f'{extract}\nprintf %s "$test_command"'
    read = subprocess.run(["bash", "-c", script], cwd=REPO, capture_output=True, text=True)
    assert read.returncode == 0, read.stderr
    assert read.stdout == command
    assert command.endswith(" && python -m pytest")
    assert 'bash -euo pipefail -c "$test_command"' in ci.splitlines()
