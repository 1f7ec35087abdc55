"""The README's generated reference matches the code, and its two commands are the ones CI runs."""

from __future__ import annotations

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
    assert "test-command" in (REPO / ".ci" / "run").read_text()
