"""The package layout holds: nothing under collector/ imports the app (or streamlit); the app's pages and the
report read the marts through collector.outputs only."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_nothing_under_collector_imports_the_app_or_streamlit() -> None:
    offenders = {
        str(path.relative_to(REPO)): sorted(
            m for m in imported_modules(path) if m.split(".")[0] in ("streamlit_app", "streamlit")
        )
        for path in sorted((REPO / "collector").rglob("*.py"))
    }
    assert {k: v for k, v in offenders.items() if v} == {}
    assert imported_modules(REPO / "collector" / "outputs" / "report.py") >= {"collector.outputs"}


def test_the_app_runs_no_sql_of_its_own() -> None:
    # Queries live in collector/outputs/queries.py; the app shell and pages only lay out what it returns.
    for path in sorted((REPO / "streamlit_app").rglob("*.py")):
        assert "duckdb" not in {m.split(".")[0] for m in imported_modules(path)}, path


def test_no_test_imports_a_conftest_by_its_bare_name() -> None:
    # Every test folder's conftest is a module named `conftest`: importing one by that name gets whichever
    # folder's conftest pytest loaded last. Shared helpers live in modules of their own (tests.dbt.builders).
    offenders = {
        str(path.relative_to(REPO)): found
        for path in sorted((REPO / "tests").rglob("*.py"))
        if (found := sorted(m for m in imported_modules(path) if m.split(".")[0] == "conftest"))
    }
    assert offenders == {}


def test_test_folders_collect_together_in_any_order() -> None:
    # `pytest tests/dbt tests/app` loaded both folders' conftests before collecting either, and the dbt tests
    # imported the app's conftest in place of their own (11 collection errors).
    for folders in (["tests/dbt", "tests/app"], ["tests/app", "tests/collector", "tests/dbt"]):
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *folders],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, (folders, proc.stdout[-3000:], proc.stderr[-3000:])
        assert " collected" in proc.stdout and "error" not in proc.stdout.splitlines()[-1], proc.stdout[-500:]
