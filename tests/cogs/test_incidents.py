"""/incidents, /strikes and /stats through the real bot and SimCord: what moderators see,
what members receive, and that one server never sees or changes another's records."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
import simcord

from promptwarden.screening.decision import Verdict
from tests.helpers import GORE, Server, text

PNG = b"\x89PNG\r\n\x1a\n"


def buttons(message: object) -> list[dict[str, object]]:
    components = message.components
    return [c for row in components for c in row["components"]]


def attachment_bytes(env: simcord.Env, result: object) -> tuple[str, bytes]:
    [attachment] = result.attachments  # type: ignore[attr-defined]
    data = env.backend.cdn.get(attachment.url)
    assert data is not None
    return attachment.filename, data


async def test_queue_lists_review_incidents_oldest_first_and_warn_acts(
    simcord_env: simcord.Env,
) -> None:
    s = Server(simcord_env)
    await s.watch()
    await s.storage.set_screening_rules(s.guild.id, {"actions": {"violence": "review"}})
    s.bot.dispatch("promptwarden_settings_changed", s.guild.id)
    await simcord_env.settle()
    await s.member.send(s.channel, GORE)
    await s.member.send(s.channel, "a gruesome ogre feast")
    first, second = sorted(i.id for i in await s.storage.find_incidents(s.guild.id))
    await s.incident(99, verdict=Verdict.WARN)  # not a review: not queued
    assert s.member.user.dm_channel.history() == []  # review tells the member nothing

    result = await s.slash(s.moderator, "incidents queue")

    assert result.ephemeral
    response = result.response
    assert "Awaiting review" in response.content
    assert [e.title for e in response.embeds] == [
        f"Incident #{first} · Needs review",
        f"Incident #{second} · Needs review",
    ]
    labels = [b["label"] for b in buttons(response)]
    assert labels[:3] == [f"Uphold #{first}", f"Dismiss #{first}", f"Warn #{first}"]

    pressed = await s.moderator.click(response.message, custom_id=f"pw:queue:warn:{first}")

    [dm] = s.member.user.dm_channel.history()
    assert "goes against the guidelines" in (dm.embeds[0].title or "")
    assert "No gore" in dm.embeds[0].fields[0].value
    # The same warning as the watcher's: with the Appeal button, through the DM budget.
    assert [c.custom_id for row in dm.components for c in row.children] == [  # type: ignore[union-attr]
        f"pw:appeal:open:{s.guild.id}:{first}"
    ]
    stored = await s.storage.get_incident(s.guild.id, first)
    assert stored.status == "upheld"
    points = await s.storage.active_points(
        s.guild.id, s.member.id, window=timedelta(days=30), now=simcord_env.now()
    )
    assert points == 1
    [press] = await s.storage.list_modlog_presses(s.guild.id, first)
    assert (press.moderator_id, press.action) == (s.moderator.id, "warn")
    # The queue shows what is left.
    after = pressed.response
    assert after.content.startswith(f"Incident #{first}: warned (DM: done), 1 active point(s).")
    assert [e.title for e in after.embeds] == [f"Incident #{second} · Needs review"]

    await s.moderator.click(after.message, custom_id=f"pw:queue:dismiss:{second}")
    assert (await s.storage.get_incident(s.guild.id, second)).status == "dismissed"
    # The mod-log entries say what was decided, and by whom, as their own buttons would.
    entries = {m.embeds[0].title: m.embeds[0] for m in s.modlog.history() if m.embeds}
    warned = entries[f"Incident #{first} · Needs review"]
    assert warned.footer.text == "Status: upheld"
    assert f"Warned by <@{s.moderator.id}>" in warned.fields[-1].value
    dismissed = entries[f"Incident #{second} · Needs review"]
    assert dismissed.footer.text == "Status: dismissed"
    assert f"Dismissed as a false positive by <@{s.moderator.id}>" in dismissed.fields[-1].value
    final = await s.slash(s.moderator, "incidents queue")
    assert "The review queue is empty." in text(final)


async def test_list_pages_with_previous_and_next(simcord_env: simcord.Env) -> None:
    s = Server(simcord_env)
    ids = [await s.incident(n) for n in range(23)]
    other = s.guild.add_member(simcord_env.create_user("carol"))
    carol_id = await s.incident(100, user_id=other.id, categories=["sexual"])

    first = await s.slash(s.moderator, "incidents list", user=s.member)
    page1 = first.response
    assert first.ephemeral
    assert f"`#{ids[-1]}`" in page1.content and f"`#{ids[-10]}`" in page1.content
    assert f"`#{ids[-11]}`" not in page1.content and f"`#{carol_id}`" not in page1.content
    previous, following = buttons(page1)
    assert previous["label"] == "Previous" and previous.get("disabled") is True
    assert following["label"] == "Next" and not following.get("disabled")

    page2 = (await s.moderator.click(page1.message, label="Next")).response
    assert f"`#{ids[-11]}`" in page2.content and f"`#{ids[-20]}`" in page2.content
    page3 = (await s.moderator.click(page2.message, label="Next")).response
    assert page3.content.count("`#") == 3 and f"`#{ids[0]}`" in page3.content
    assert buttons(page3)[1].get("disabled") is True
    back = (await s.moderator.click(page3.message, label="Previous")).response
    assert back.content == page2.content

    # Another moderator never even sees this private list, so cannot page it.
    with pytest.raises(simcord.SetupError, match="not visible"):
        await s.admin.click(back.message, label="Next")


async def test_list_filters_and_bad_input(simcord_env: simcord.Env) -> None:
    s = Server(simcord_env)
    await s.incident(1)
    nude = await s.incident(2, categories=["sexual"], status="dismissed")
    body = text(await s.slash(s.moderator, "incidents list", category="sexual"))
    assert f"`#{nude}`" in body and body.count("`#") == 1
    body = text(await s.slash(s.moderator, "incidents list", status="open"))
    assert f"`#{nude}`" not in body and body.count("`#") == 1
    assert "No incidents match." in text(
        await s.slash(s.moderator, "incidents list", category="hate")
    )
    bad = await s.slash(s.moderator, "incidents list", category="weapons")
    assert "Unknown category 'weapons'" in text(bad)
    bad = await s.slash(s.moderator, "incidents list", since="last week")
    assert "use 2026-11-01, or 12h, 7d, 2w back from now" in text(bad)
    assert "No incidents match." in text(
        await s.slash(s.moderator, "incidents list", since="2099-01-01")
    )


async def test_show_and_resolve_are_scoped_to_the_server(simcord_env: simcord.Env) -> None:
    a = Server(simcord_env, "Server A")
    b = Server(simcord_env, "Server B")
    theirs = await b.incident(1)
    await b.storage.add_strike(
        b.guild.id, b.member.id, 1, incident_id=theirs, window=timedelta(days=30)
    )
    mine = await a.incident(2)

    shown = await a.slash(a.moderator, "incidents show", incident_id=theirs)
    assert text(shown) == f"No incident #{theirs} in this server."
    resolved = await a.slash(
        a.moderator, "incidents resolve", incident_id=theirs, outcome="dismissed"
    )
    assert text(resolved) == f"No incident #{theirs} in this server."
    still = await b.storage.get_incident(b.guild.id, theirs)
    assert still.status == "open"
    assert await b.storage.active_points(b.guild.id, b.member.id, window=timedelta(days=30)) == 1
    assert await b.storage.list_modlog_presses(b.guild.id, theirs) == []
    listed = text(await a.slash(a.moderator, "incidents list"))
    assert f"`#{mine}`" in listed and f"`#{theirs}`" not in listed
    exported = await a.slash(a.moderator, "incidents export")
    _, data = attachment_bytes(simcord_env, exported.response)
    assert [row["id"] for row in csv.DictReader(io.StringIO(data.decode()))] == [str(mine)]
    pardon = await a.slash(a.moderator, "strikes pardon", user=a.member)
    assert "has no active strikes" in text(pardon)


async def test_resolve_dismissed_removes_the_strike_and_records_who(
    simcord_env: simcord.Env,
) -> None:
    s = Server(simcord_env)
    incident = await s.incident(1)
    await s.storage.add_strike(
        s.guild.id, s.member.id, 1, incident_id=incident, window=timedelta(days=30)
    )

    result = await s.slash(
        s.moderator,
        "incidents resolve",
        incident_id=incident,
        outcome="dismissed",
        note="art history reference",
    )

    assert text(result) == f"Incident #{incident} marked dismissed; its strike was removed."
    assert await s.storage.active_points(s.guild.id, s.member.id, window=timedelta(days=30)) == 0
    shown = (await s.slash(s.moderator, "incidents show", incident_id=incident)).response
    embed = shown.embeds[0]
    assert embed.footer.text == "Status: dismissed"
    moderators = next(f.value for f in embed.fields if f.name == "Moderators")
    assert f"dismiss by <@{s.moderator.id}>" in moderators
    assert "art history reference" in moderators


async def test_export_is_a_csv_of_redacted_excerpts(simcord_env: simcord.Env) -> None:
    s = Server(simcord_env)
    await s.watch()
    await s.member.send(s.channel, "a gruesome portrait, mail me at bob@example.com")
    await s.incident(5, prompt_excerpt='=HYPERLINK("http://x") gruesome')

    result = await s.slash(s.moderator, "incidents export", since="7d")

    assert result.ephemeral and "2 incident(s)" in text(result)
    name, data = attachment_bytes(simcord_env, result.response)
    assert name.endswith(".csv")
    rows = list(csv.DictReader(io.StringIO(data.decode())))
    assert rows[0]["prompt_excerpt"] == "a gruesome portrait, mail me at [email]"
    assert rows[0]["personal_info"] == "email" and rows[0]["matched_words"] == "gruesome"
    assert "bob@example.com" not in data.decode()
    assert rows[1]["prompt_excerpt"].startswith("'=")  # no formula runs in a spreadsheet


async def test_strikes_show_and_pardon(simcord_env: simcord.Env) -> None:
    s = Server(simcord_env)
    one, two = await s.incident(1), await s.incident(2)
    for incident, points in ((one, 2), (two, 1)):
        await s.storage.add_strike(
            s.guild.id, s.member.id, points, incident_id=incident, window=timedelta(days=30)
        )

    shown = text(await s.slash(s.moderator, "strikes show", user=s.member))
    assert (
        "3 active strike point(s) in the last 30 days. At 5 you are timed out for 1 day." in shown
    )
    assert "2 point(s)" in shown and f"(incident #{one}): active until" in shown

    pardoned = text(await s.slash(s.moderator, "strikes pardon", user=s.member))
    assert "2 strike(s), 3 point(s) revoked" in pardoned
    assert await s.storage.active_points(s.guild.id, s.member.id, window=timedelta(days=30)) == 0
    [press] = await s.storage.list_modlog_presses(s.guild.id, one)
    assert (press.moderator_id, press.action) == (s.moderator.id, "pardon")
    shown = text(await s.slash(s.moderator, "strikes show", user=s.member))
    assert "0 active strike point(s)" in shown and f"(incident #{two}): revoked" in shown


async def test_stats_with_a_chart(simcord_env: simcord.Env) -> None:
    s = Server(simcord_env)
    now = simcord_env.now()
    await s.incident(1, created_at=now - timedelta(days=2))
    await s.incident(2, status="dismissed")
    await s.incident(
        3,
        categories=["sexual"],
        action="block",
        verdict=Verdict.BLOCK,
        matches=[
            {
                "category": "sexual",
                "term": "nude",
                "start": 0,
                "end": 4,
                "text": "nude",
                "source": "rule:sexual",
                "severity": "high",
            }
        ],
    )
    await s.incident(4, created_at=now - timedelta(days=40))  # outside 30 days

    result = await s.slash(s.moderator, "stats")

    reply = result.response  # deferred ("thinking..."), then the answer
    assert reply.ephemeral
    body = reply.content
    assert "Incidents in the last 30 day(s): 3" in body
    assert "By category: violence 2, sexual 1" in body
    assert "By action: warn 2, block 1" in body
    assert "`gruesome` 2, `nude` 1" in body
    assert "Dismissed as false positives: 1 of 3 (33%)" in body
    assert f"Busiest day: {now:%Y-%m-%d} (2)" in body
    two_days_ago = now - timedelta(days=2)
    assert f"By day (latest): {two_days_ago:%m-%d} 1, {now:%m-%d} 2" in body
    name, data = attachment_bytes(simcord_env, reply)
    assert name == "incidents-per-day.png" and data.startswith(PNG)

    short = (await s.slash(s.moderator, "stats", days=1)).response
    assert "Incidents in the last 1 day(s): 2" in short.content


async def test_paging_keeps_the_filters(simcord_env: simcord.Env) -> None:
    s = Server(simcord_env)
    old = await s.incident(
        0, categories=["sexual"], created_at=simcord_env.now() - timedelta(days=9)
    )
    sexual = [await s.incident(n, categories=["sexual"]) for n in range(1, 12)]
    violence = await s.incident(50)

    first = await s.slash(s.moderator, "incidents list", category="sexual", since="7d")
    second = (await s.moderator.click(first.response.message, label="Next")).response

    assert second.content.count("`#") == 1 and f"`#{sexual[0]}`" in second.content
    for page in (first.response.content, second.content):
        assert f"`#{violence}`" not in page and f"`#{old}`" not in page


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
