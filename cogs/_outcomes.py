"""Running one action of an incident and recording how it went.

Shared by the watcher, the mod-log buttons and the appeal flow, so every action's outcome
is recorded the same way (done, forbidden, not found, rate limited, failed, skipped).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import discord

from cogs._dm import DMBudgetExhausted
from promptwarden.storage import ActionOutcome, Storage

log = logging.getLogger("promptwarden.enforcement")


def outcome_of(error: BaseException) -> tuple[ActionOutcome, str]:
    """How a failed Discord call is recorded: moderators fix each kind differently."""
    if isinstance(error, DMBudgetExhausted):
        return "skipped", str(error)  # final: a burst's extra DMs are dropped, not queued
    if isinstance(error, discord.HTTPException):
        detail = f"HTTP {error.status} (code {error.code}): {error.text}"[:300]
        if isinstance(error, discord.Forbidden):
            return "forbidden", detail
        if isinstance(error, discord.NotFound):
            return "not_found", detail
        if error.status == 429:
            return "rate_limited", detail
        return "failed", detail
    return "failed", f"{type(error).__name__}: {error}"[:300]


async def attempt(
    storage: Storage,
    guild_id: int,
    incident_id: int,
    action: str,
    call: Callable[[], Awaitable[Any]],
    *,
    detail: str = "",
) -> ActionOutcome:
    """Run one action and record its outcome; never raises, so one failing action cannot
    skip the next one or lose what was recorded. A `call` returning text records it as the
    detail (e.g. the id of the message it posted)."""
    try:
        result = await call()
    except Exception as error:  # every failure is an outcome to record, not a crash
        outcome, why = outcome_of(error)
        if isinstance(error, DMBudgetExhausted):
            log.info("incident %d: %s %s: %s", incident_id, action, outcome, why)
        elif isinstance(error, discord.HTTPException):
            log.warning("incident %d: %s %s: %s", incident_id, action, outcome, why)
        else:
            log.exception("incident %d: %s failed", incident_id, action)
        await record_outcome(storage, guild_id, incident_id, action, outcome, why)
        return outcome
    if isinstance(result, str):
        detail = result
    await record_outcome(storage, guild_id, incident_id, action, "done", detail)
    return "done"


async def record_outcome(
    storage: Storage,
    guild_id: int,
    incident_id: int,
    action: str,
    outcome: ActionOutcome,
    detail: str,
) -> None:
    """Record without raising: a database hiccup must not stop the next action."""
    try:
        await storage.record_action_outcome(guild_id, incident_id, action, outcome, detail)
    except Exception:
        log.exception("incident %d: could not record %s=%s", incident_id, action, outcome)
