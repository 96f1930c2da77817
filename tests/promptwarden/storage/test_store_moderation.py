"""Storage queries behind the moderator commands, on SQLite and on PostgreSQL: filters,
keyset paging in both directions, exports, pardons, and never a row of another guild."""

from __future__ import annotations

from datetime import timedelta

from promptwarden.screening.decision import Verdict
from promptwarden.storage import open_storage
from tests.helpers import GUILD_A, GUILD_B, NOW, WINDOW, record


async def test_find_incidents_filters_and_pages_both_ways(database: str) -> None:
    async with await open_storage(database) as storage:
        ids = []
        for n in range(7):
            incident_id, _ = await record(
                storage,
                message_id=100 + n,
                job_key=f"j{n}",
                categories=["violence", "hate"] if n % 2 else ["sexual"],
                verdict=Verdict.REVIEW if n < 3 else Verdict.BLOCK,
                user_id=30 + n % 2,
                created_at=NOW + timedelta(hours=n),
            )
            ids.append(incident_id)
        await record(storage, GUILD_B, message_id=100, job_key="j0", categories=["hate"])

        hate = await storage.find_incidents(GUILD_A, category="hate")
        assert [i.id for i in hate] == [ids[5], ids[3], ids[1]]
        assert await storage.find_incidents(GUILD_A, category="hat") == []  # whole names only
        queue = await storage.find_incidents(
            GUILD_A, status="open", verdict=Verdict.REVIEW, oldest_first=True
        )
        assert [i.id for i in queue] == ids[:3]
        page = await storage.find_incidents(GUILD_A, before_id=ids[4], limit=2)
        assert [i.id for i in page] == [ids[3], ids[2]]
        back = await storage.find_incidents(GUILD_A, after_id=ids[2], oldest_first=True, limit=2)
        assert [i.id for i in back] == [ids[3], ids[4]]
        recent = await storage.find_incidents(GUILD_A, since=NOW + timedelta(hours=5), user_id=31)
        assert [i.id for i in recent] == [ids[5]]
        assert all(i.guild_id == GUILD_B for i in await storage.find_incidents(GUILD_B))

        since = await storage.incidents_since(GUILD_A, NOW + timedelta(hours=4))
        assert [i.id for i in since] == ids[4:]
        assert len(await storage.incidents_since(GUILD_A, None)) == 7
        assert len(await storage.incidents_since(GUILD_B, None)) == 1


async def test_a_pardon_revokes_only_active_strikes_of_that_member_in_that_guild(
    database: str,
) -> None:
    async with await open_storage(database) as storage:
        old, _ = await record(storage, message_id=1, job_key="a")
        new, _ = await record(storage, message_id=2, job_key="b")
        theirs, _ = await record(storage, GUILD_B, message_id=3, job_key="c")
        await storage.add_strike(
            GUILD_A, 30, 2, incident_id=old, window=WINDOW, now=NOW - timedelta(days=40)
        )
        await storage.add_strike(GUILD_A, 30, 1, incident_id=new, window=WINDOW, now=NOW)
        await storage.add_strike(GUILD_B, 30, 1, incident_id=theirs, window=WINDOW, now=NOW)

        revoked = await storage.revoke_active_strikes(GUILD_A, 30, window=WINDOW, now=NOW)

        assert [s.incident_id for s in revoked] == [new]  # the expired one stays as it was
        assert await storage.active_points(GUILD_A, 30, window=WINDOW, now=NOW) == 0
        assert await storage.active_points(GUILD_B, 30, window=WINDOW, now=NOW) == 1
        assert await storage.revoke_active_strikes(GUILD_A, 30, window=WINDOW, now=NOW) == []
        strikes = await storage.list_strikes(GUILD_A, 30)
        assert [s.revoked_at is not None for s in strikes] == [True, False]
