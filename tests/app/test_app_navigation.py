"""The app's pages as st.navigation registers them: each at its own path, the Summary also at the root."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest


def _register_pages() -> None:
    # Run by AppTest as the app's script: st.Page only resolves its path and title inside a script run.
    import streamlit as st

    from streamlit_app.app import pages

    st.session_state["registered"] = [(p.url_path, p.title, p.visibility) for p in pages()]


def test_every_page_opens_at_its_own_path_and_the_summary_also_at_the_root() -> None:
    at = AppTest.from_function(_register_pages).run()
    assert not at.exception, [e.value for e in at.exception]
    registered = at.session_state["registered"]
    # The path a link names (/summary, /sweep, ...) and the page it opens; "" is the root.
    assert {path: title for path, title, _ in registered} == {
        "": "Summary",
        "summary": "Summary",
        "sweep": "Sweep",
        "requests": "Requests",
        "telemetry": "Telemetry",
        "compare": "Compare",
    }
    # The menu lists each page once.
    assert [title for _, title, visibility in registered if visibility == "visible"] == [
        "Summary",
        "Sweep",
        "Requests",
        "Telemetry",
        "Compare",
    ]
