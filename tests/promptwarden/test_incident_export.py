"""The CSV export says what raised each incident."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from promptwarden.incident_export import incidents_csv
from promptwarden.screening.decision import Severity, Verdict
from promptwarden.storage import Incident


def incident(incident_id: int, source: str) -> Incident:
    return Incident(
        id=incident_id,
        guild_id=1,
        channel_id=2,
        message_id=None,
        user_id=3,
        prompt_excerpt="a nude figure",
        categories=("sexual",),
        severity=Severity.HIGH,
        verdict=Verdict.BLOCK,
        matches=(),
        action="block",
        status="open",
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        source=source,
    )


def test_each_row_names_its_source() -> None:
    data = incidents_csv([incident(1, "screening"), incident(2, "automod"), incident(3, "report")])
    rows = list(csv.DictReader(io.StringIO(data.decode())))
    assert [r["source"] for r in rows] == ["screening", "automod", "report"]
    assert rows[1]["message_id"] == ""  # blocked by AutoMod: it never existed
