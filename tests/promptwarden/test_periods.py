"""`since` as moderators type it: a number of days or hours back, or a date."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from promptwarden.periods import parse_since

NOW = datetime(2026, 3, 10, 15, tzinfo=UTC)


def test_parse_since() -> None:
    assert parse_since("7d", NOW) == NOW - timedelta(days=7)
    assert parse_since("12H", NOW) == NOW - timedelta(hours=12)
    assert parse_since("2026-03-01", NOW) == datetime(2026, 3, 1, tzinfo=UTC)
    for bad in ("yesterday", "d", "-3d", "2026-13-01", "99999w"):
        with pytest.raises(ValueError):
            parse_since(bad, NOW)
