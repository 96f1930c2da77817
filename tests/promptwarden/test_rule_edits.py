"""The Discord-free parts behind the commands: rule edits, `since`, statistics, the chart."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from PIL import Image

from promptwarden import rule_edits
from promptwarden.chart import HEIGHT, WIDTH, incidents_per_day_png
from promptwarden.periods import parse_since
from promptwarden.screening.decision import Severity, Verdict
from promptwarden.screening.engine import Screener
from promptwarden.screening.rules import GuildRules
from promptwarden.stats import incident_stats
from promptwarden.storage import Incident

NOW = datetime(2026, 3, 10, 15, tzinfo=UTC)


def test_rule_edits_round_trip_through_validation() -> None:
    rules = rule_edits.add_term(GuildRules(), "  Wombat*  ", "custom", "HIGH")
    assert [(t.term, t.severity) for t in rules.custom_terms] == [("Wombat*", Severity.HIGH)]
    assert Screener(rules, model=None).screen("two wombats").verdict is Verdict.BLOCK
    # Re-adding files the term again instead of doubling it; allowing it removes it.
    rules = rule_edits.add_term(rules, "wombat*", "violence", "medium")
    assert [(t.term, t.category) for t in rules.custom_terms] == [("wombat*", "violence")]
    rules = rule_edits.allow_term(rules, "wombat*")
    assert rules.custom_terms == () and rules.allow_terms == ("wombat*",)
    rules, found = rule_edits.remove_term(rules, "WOMBAT*")
    assert found and rules == GuildRules()
    assert rule_edits.remove_term(rules, "nothing") == (rules, False)
    with pytest.raises(ValueError, match="unknown action 'ban'"):
        rule_edits.set_action(rules, "violence", "ban")


def test_members_see_only_enforced_categories() -> None:
    rules = rule_edits.set_action(GuildRules(), "drugs", "off")
    shown = [c for c, _ in rule_edits.enforced_guidelines(rules)]
    assert "drugs" not in shown and "custom" not in shown and "sexual" in shown
    rules = rule_edits.add_term(rules, "wombat", "custom", "high")
    assert "custom" in [c for c, _ in rule_edits.enforced_guidelines(rules)]


def test_parse_since() -> None:
    assert parse_since("7d", NOW) == NOW - timedelta(days=7)
    assert parse_since("12H", NOW) == NOW - timedelta(hours=12)
    assert parse_since("2026-03-01", NOW) == datetime(2026, 3, 1, tzinfo=UTC)
    for bad in ("yesterday", "d", "-3d", "2026-13-01", "99999w"):
        with pytest.raises(ValueError):
            parse_since(bad, NOW)


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


def test_chart_is_a_png_of_the_expected_size() -> None:
    days = [((NOW - timedelta(days=n)).date(), n % 4) for n in range(30)][::-1]
    data = incidents_per_day_png(days, title="Incidents per day")
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG" and image.size == (WIDTH, HEIGHT)
    assert incidents_per_day_png([], title="empty").startswith(b"\x89PNG")


async def test_the_pager_fits_its_state_in_a_discord_custom_id() -> None:
    from cogs.incidents import ListQuery, PageButton

    biggest = 2**64 - 1
    query = ListQuery(
        invoker=biggest,
        user_id=biggest,
        category="personal_info",
        status="dismissed",
        since=datetime(2099, 12, 31, tzinfo=UTC),
    )
    custom_id = query.encode("n", biggest)
    assert len(custom_id) <= 100  # Discord's limit
    match = PageButton.__discord_ui_compiled_template__.fullmatch(custom_id)  # type: ignore[attr-defined]
    assert match is not None
    button = await PageButton.from_custom_id(None, None, match)  # type: ignore[arg-type]
    assert (button.query, button.direction, button.cursor) == (query, "n", biggest)
