"""Incident statistics for `/stats`: what moderators need to tune the rules.

Pure: computed from incidents already read, so every backend reports the same figures.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from promptwarden.privacy import PII_SOURCE_PREFIX
from promptwarden.storage.models import Incident


@dataclass(frozen=True, slots=True)
class IncidentStats:
    total: int
    by_category: list[tuple[str, int]]  # most first
    by_action: list[tuple[str, int]]
    by_day: list[tuple[date, int]]  # every day of the period, oldest first, zeros included
    top_terms: list[tuple[str, int]]
    dismissed: int
    resolved: int  # upheld or dismissed

    @property
    def dismissed_share(self) -> float:
        """Dismissed as false positives, of all incidents in the period."""
        return self.dismissed / self.total if self.total else 0.0


def incident_stats(
    incidents: Sequence[Incident], *, days: int, now: datetime, top: int = 10
) -> IncidentStats:
    first_day = (now - timedelta(days=days - 1)).date()
    per_day: Counter[date] = Counter()
    categories: Counter[str] = Counter()
    actions: Counter[str] = Counter()
    terms: Counter[str] = Counter()
    dismissed = resolved = 0
    for incident in incidents:
        per_day[incident.created_at.date()] += 1
        categories.update(incident.categories or ("—",))
        actions[incident.action] += 1
        seen: set[str] = set()
        for match in incident.matches:
            if str(match.get("source", "")).startswith(PII_SOURCE_PREFIX):
                continue  # personal information is never shown, even as a count
            term = str(match.get("term") or match.get("text") or "").strip().casefold()
            if term and term not in seen:
                seen.add(term)
                terms[term] += 1
        dismissed += incident.status == "dismissed"
        resolved += incident.status != "open"
    by_day = [(first_day + timedelta(days=n), 0) for n in range(days)]
    by_day = [(d, per_day[d]) for d, _ in by_day]
    return IncidentStats(
        total=len(incidents),
        by_category=categories.most_common(),
        by_action=actions.most_common(),
        by_day=by_day,
        top_terms=terms.most_common(top),
        dismissed=dismissed,
        resolved=resolved,
    )
