"""The figures behind `/stats`: counted per day, category and action, never personal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from promptwarden.screening.decision import Severity, Verdict
from promptwarden.stats import incident_stats
from promptwarden.storage import Incident

NOW = datetime(2026, 3, 10, 15, tzinfo=UTC)


def incident(n: int, when: datetime, status: str = "open", **extra: object) -> Incident:
    fields: dict[str, object] = {
        "id": n,
        "guild_id": 1,
        "channel_id": 2,
        "message_id": n,
        "user_id": 3,
        "prompt_excerpt": "x",
        "categories": ("violence",),
        "severity": Severity.MEDIUM,
        "verdict": Verdict.WARN,
        "matches": (
            {"term": "gore", "source": "rule:violence"},
            {"term": "email", "text": "[email]", "source": "pii:email"},
        ),
        "action": "warn",
        "status": status,
        "created_at": when,
    }
    fields.update(extra)
    return Incident(**fields)  # type: ignore[arg-type]


def test_stats_count_every_day_and_never_personal_information() -> None:
    items = [
        incident(1, NOW - timedelta(days=2)),
        incident(2, NOW, status="dismissed"),
        incident(3, NOW, categories=("sexual", "minors"), action="block"),
    ]
    figures = incident_stats(items, days=3, now=NOW)
    assert figures.by_day == [
        ((NOW - timedelta(days=2)).date(), 1),
        ((NOW - timedelta(days=1)).date(), 0),
        (NOW.date(), 2),
    ]
    assert figures.by_category[0] == ("violence", 2)
    assert figures.by_action == [("warn", 2), ("block", 1)]
    assert figures.top_terms == [("gore", 3)]
    assert round(figures.dismissed_share, 3) == 0.333 and figures.resolved == 1
    assert incident_stats([], days=1, now=NOW).dismissed_share == 0.0
