"""Date query parameters as UTC moments, refusing days outside a sane range (9999-12-31 + 1 day overflows)."""

from __future__ import annotations

import datetime as dt

from api.problems import ApiProblem

EARLIEST_DAY = dt.date(2000, 1, 1)
LATEST_DAY = dt.date(2999, 12, 31)


def in_range(day: dt.date, name: str) -> dt.date:
    """The day, or 422 API_DATE_OUT_OF_RANGE when it lies outside EARLIEST_DAY..LATEST_DAY."""
    if not EARLIEST_DAY <= day <= LATEST_DAY:
        raise ApiProblem("API_DATE_OUT_OF_RANGE", f"{name}={day.isoformat()}", limit=[EARLIEST_DAY.isoformat(), LATEST_DAY.isoformat()])
    return day


def day_start(day: dt.date, name: str) -> dt.datetime:
    """UTC midnight at the start of a day within range."""
    return dt.datetime.combine(in_range(day, name), dt.time(), dt.UTC)


def day_end(day: dt.date, name: str) -> dt.datetime:
    """UTC midnight at the end of a day within range (the start of the next day)."""
    return dt.datetime.combine(in_range(day, name) + dt.timedelta(days=1), dt.time(), dt.UTC)
