"""Everything that reads the marts and presents them, shared by the app, the report and the terminal summary.

- `queries`: the SQL over marts.* (read-only connections, parameters bound), returning frames;
- `tables`: display tables and sentences in the reference report's shape (pure pandas);
- `charts`: the Altair chart definitions (the app shows them, the report renders them to PNG);
- `report`: report.md and report.html for a run; `summary`: the plain-text summary `collector run` prints.

Nothing here imports streamlit: `streamlit_app/` is only the app shell, its pages and UI state.
"""
