"""What the bot wrote, read the way a moderator's tools would: straight from its database.

Read-only connections, so a test never changes what the running bot sees.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from contextlib import closing
from pathlib import Path


def read_db(database: Path, query: str) -> list[tuple[object, ...]]:
    # closing(): sqlite3's own context manager commits but leaves the connection open.
    with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10)) as conn:
        return conn.execute(query).fetchall()


def incidents_by_message(database: Path) -> Counter[int]:
    return Counter(int(m) for (m,) in read_db(database, "SELECT message_id FROM incidents"))


def outcomes(database: Path) -> dict[int, dict[str, str]]:
    """message id -> action -> its latest outcome."""
    rows = read_db(
        database,
        "SELECT i.message_id, a.action, a.outcome FROM incident_actions a "
        "JOIN incidents i ON i.id = a.incident_id ORDER BY a.id",
    )
    found: dict[int, dict[str, str]] = {}
    for message_id, action, outcome in rows:
        found.setdefault(int(str(message_id)), {})[str(action)] = str(outcome)
    return found
