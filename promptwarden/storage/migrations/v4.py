"""Schema 4: state as columns instead of free text.

Incidents and appeals say where their mod-log message is, strikes keep the member's active
points before and after, and incidents say what raised them. Old rows are filled once,
here, from the action details earlier versions wrote ("message <id>",
"appeal #N: message <id>", "+P: B -> A"); nothing reads those texts after this step.
"""

from __future__ import annotations

import re

from sqlalchemy import Connection, and_, select, update

from promptwarden.storage.migrations import add_column
from promptwarden.storage.schema import appeals, guild_settings, incidents, strikes
from promptwarden.storage.schema import incident_actions as actions

_MESSAGE = re.compile(r"message (\d+)")
_APPEAL = re.compile(r"appeal #(\d+): message (\d+)")
_STRIKE = re.compile(r"\+\d+: (\d+) -> (\d+)")


def upgrade(conn: Connection) -> None:
    for name in ("modlog_channel_id", "modlog_message_id", "source"):
        add_column(conn, incidents, name)
    for name in ("modlog_channel_id", "modlog_message_id"):
        add_column(conn, appeals, name)
    for name in ("points_before", "points_after"):
        add_column(conn, strikes, name)
    # The mod-log channel was never stored per entry: the guild's current one is the best
    # guess, and the one the old code looked in.
    channels = dict(
        conn.execute(select(guild_settings.c.guild_id, guild_settings.c.modlog_channel_id)).all()
    )
    done = conn.execute(
        select(actions.c.guild_id, actions.c.incident_id, actions.c.action, actions.c.detail)
        .where(actions.c.outcome == "done")
        .where(actions.c.action.in_(("modlog", "appeal_modlog", "strike")))
        .order_by(actions.c.id)
    ).all()
    for guild_id, incident_id, action, detail in done:
        key = and_(incidents.c.guild_id == guild_id, incidents.c.id == incident_id)
        if action == "modlog" and (found := _MESSAGE.fullmatch(detail.strip())):
            values = {
                "modlog_channel_id": channels.get(guild_id),
                "modlog_message_id": int(found[1]),
            }
            conn.execute(update(incidents).where(key).values(values))
        elif action == "appeal_modlog" and (found := _APPEAL.fullmatch(detail.strip())):
            conn.execute(
                update(appeals)
                .where(appeals.c.guild_id == guild_id, appeals.c.id == int(found[1]))
                .values(modlog_channel_id=channels.get(guild_id), modlog_message_id=int(found[2]))
            )
        elif action == "strike" and (found := _STRIKE.fullmatch(detail.strip())):
            conn.execute(
                update(strikes)
                .where(strikes.c.guild_id == guild_id, strikes.c.incident_id == incident_id)
                .values(points_before=int(found[1]), points_after=int(found[2]))
            )
