"""Incidents as CSV for `/incidents export`: what moderators need, and nothing more.

Only the stored, already redacted excerpt goes out (personal information was replaced by
`[email]`, `[phone]`... before it was ever written); PII matches show as their kind.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from promptwarden.enforcement import matched_words
from promptwarden.privacy import pii_kinds
from promptwarden.storage.models import Incident

COLUMNS = (
    "id",
    "created_at",
    "user_id",
    "channel_id",
    "message_id",
    "verdict",
    "action",
    "status",
    "severity",
    "categories",
    "matched_words",
    "personal_info",
    "prompt_excerpt",
    "source",  # screening, automod or report
)
# Spreadsheet programs run cells starting with these as formulas (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_START) else value


def incidents_csv(incidents: Iterable[Incident]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for i in incidents:
        writer.writerow(
            [
                i.id,
                i.created_at.isoformat(timespec="seconds"),
                str(i.user_id),
                str(i.channel_id),
                "" if i.message_id is None else str(i.message_id),
                i.verdict.value,
                i.action,
                i.status,
                i.severity.name.lower(),
                " ".join(i.categories),
                _cell(" | ".join(matched_words(i.matches, limit=50))),
                " ".join(pii_kinds(i.matches)),
                _cell(i.prompt_excerpt),
                i.source,
            ]
        )
    return out.getvalue().encode("utf-8")
