"""Reading a `since` option: a date (2026-11-01) or a span back from now (7d, 12h, 2w)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}
MAX_SPAN = timedelta(days=3650)


def parse_since(text: str, now: datetime) -> datetime:
    """The moment `text` names; ValueError with an example of what is accepted."""
    value = text.strip().lower()
    if len(value) >= 2 and value[-1] in _UNITS and value[:-1].isdigit():
        span = int(value[:-1]) * _UNITS[value[-1]]
        if span > MAX_SPAN:
            raise ValueError(f"{text!r} reaches back more than ten years")
        return now - span
    try:
        day = datetime.strptime(value, "%Y-%m-%d")
    except ValueError:
        raise ValueError(
            f"{text!r} is not a date or a span: use 2026-11-01, or 12h, 7d, 2w back from now"
        ) from None
    return day.replace(tzinfo=UTC)
