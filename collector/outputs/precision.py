"""The one precision rule every output applies (the app, the report, the terminal summary, the live progress
line): a measure is shown to three significant figures and never loses a whole-number digit (1.66, 0.000745,
36.2, 877, 12,345), trailing zeros dropped; counts are whole numbers; money is in cents from a dollar up
($7.73, $4.00) and to three significant figures below it ($0.000773). No pandas here: the load path imports it.
"""

from __future__ import annotations

import math
from typing import Any

SIGNIFICANT_DIGITS = 3
MAX_DECIMALS = 9  # below a billionth a figure reads 0: no output grows without bound on a vanishing value
NO_VALUE = "–"


def missing(value: Any) -> bool:
    """None, NA, NaT or NaN: a figure the marts do not have (no successful request, no price, not streamed)."""
    if value is None:
        return True
    try:
        return bool(value != value)  # NaN and NaT differ from themselves
    except TypeError:  # pandas' NA has no truth value
        return True


def flag(value: Any) -> bool | None:
    """A mart's three-valued verdict (true, false, or null: not judged) as Python's."""
    return None if missing(value) else bool(value)


def rounded(value: Any) -> float | None:
    """The precision rule on a number: three significant figures, whole-number digits kept."""
    if missing(value):
        return None
    v = float(value)
    if v == 0 or not math.isfinite(v):
        return v
    return round(v, _decimals(v)) + 0.0  # + 0.0: a value rounded to -0.0 reads 0


def _decimals(v: float) -> int:
    magnitude = math.floor(math.log10(abs(v)))
    return min(MAX_DECIMALS, max(0, SIGNIFICANT_DIGITS - 1 - magnitude))


def rounded_usd(value: Any) -> float | None:
    """The precision rule on money: cents from a dollar up, three significant figures below."""
    if missing(value):
        return None
    v = float(value)
    return round(v, 2) if abs(v) >= 1 else rounded(v)


def plain(value: Any) -> str:
    """A rounded number as text: thousands separators, no trailing zeros, never scientific notation."""
    v = rounded(value)
    if v is None:
        return NO_VALUE
    if not math.isfinite(v):
        return str(v)
    if v == int(v):
        return f"{int(v):,}"
    return f"{v:,.{_decimals(v)}f}".rstrip("0").rstrip(".")
