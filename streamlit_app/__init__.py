"""tokenbench's Streamlit app and the pieces it shares with the report: SQL over the marts, charts, tables."""
