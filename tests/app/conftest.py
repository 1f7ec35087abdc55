"""Fixtures for the app and report tests: an AppTest of the real entry point on a given warehouse."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.app.app_helpers import APP


@pytest.fixture
def app_on(monkeypatch: pytest.MonkeyPatch) -> Callable[..., AppTest]:
    """An AppTest of streamlit_app/app.py reading `warehouse` (through $TOKENBENCH_WAREHOUSE), not yet run."""

    def make(warehouse: Path, **query_params: str) -> AppTest:
        monkeypatch.setenv("TOKENBENCH_WAREHOUSE", str(warehouse))
        at = AppTest.from_file(str(APP), default_timeout=60)
        for key, value in query_params.items():
            at.query_params[key] = value
        return at

    return make
