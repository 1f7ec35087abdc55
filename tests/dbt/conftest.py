"""The dbt tests' shared warehouse; the builders it uses are in tests/dbt/builders.py (a module of its own
name, so that test folders collected together never import another folder's conftest)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.dbt.builders import build_warehouse, run_a, run_b


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Runs A and B landed and built once with the current prices; tests must only read it."""
    results = tmp_path_factory.mktemp("built")
    return build_warehouse(results, [run_a(), run_b()])
