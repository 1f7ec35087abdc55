"""The app's thin cache over collector.outputs.queries: each query result is kept for TTL_S seconds.

The warehouse file's modification time and size are part of the cache key, so a `dbt build` that rewrites
the marts is picked up on the next rerun instead of after the TTL. Errors are not cached (st.cache_data
re-raises them), so a warehouse that appears is found on the next rerun.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from collector.outputs import queries

TTL_S = 60


def _stamp(warehouse: str) -> tuple[int, int] | None:
    try:
        stat = Path(warehouse).stat()
    except OSError:
        return None
    return (stat.st_mtime_ns, stat.st_size)


@st.cache_data(ttl=TTL_S, max_entries=512, show_spinner=False)
def _query(function_name: str, warehouse: str, stamp: tuple[int, int] | None, args: tuple[Any, ...]) -> pd.DataFrame:
    # `stamp` only keys the cache: a rewritten warehouse is a different entry.
    function: Callable[..., pd.DataFrame] = getattr(queries, function_name)
    return function(warehouse, *args)


def _cached(function: Callable[..., pd.DataFrame]) -> Callable[..., pd.DataFrame]:
    def wrapper(warehouse: str | Path, *args: Any) -> pd.DataFrame:
        path = str(warehouse)
        return _query(function.__name__, path, _stamp(path), tuple(args))

    wrapper.__name__ = function.__name__
    wrapper.__doc__ = function.__doc__
    return wrapper


runs = _cached(queries.runs)
level_metrics = _cached(queries.level_metrics)
recommendations = _cached(queries.recommendations)
failed_experiments = _cached(queries.failed_experiments)
level_errors = _cached(queries.level_errors)
unmeasured_levels = _cached(queries.unmeasured_levels)
experiment_costs = _cached(queries.experiment_costs)
endpoint_metrics = _cached(queries.endpoint_metrics)
server_view = _cached(queries.server_view)
telemetry_bands = _cached(queries.telemetry_bands)
telemetry_samples = _cached(queries.telemetry_samples)
preview_levels = _cached(queries.preview_levels)
preview_recommendations = _cached(queries.preview_recommendations)
request_options = _cached(queries.request_options)
request_summary = _cached(queries.request_summary)
request_rows = _cached(queries.request_rows)
request_histograms = _cached(queries.request_histograms)
request_sample = _cached(queries.request_sample)
request_errors = _cached(queries.request_errors)
