"""Every direct message the bot sends goes through `send_dm`, which first takes one unit of
the guild's DM budget (N a minute, `/reminders dm-limit`).

One place for all of them (warnings, privacy reminders, appeal outcomes, exports), so a
burst of violations can never get the bot rate-limited or flagged as a spammer.
"""

from __future__ import annotations

import logging
from typing import Any

import discord

from promptwarden.privacy import PrivacyConfig
from promptwarden.storage import Storage

log = logging.getLogger("promptwarden.privacy")


class DMBudgetExhausted(Exception):
    """The guild's DMs for this minute are used up; the DM was not sent."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"DM budget of {limit} a minute reached; not sent")
        self.limit = limit


async def privacy_config(storage: Storage, guild_id: int) -> PrivacyConfig:
    """The guild's privacy settings; broken stored settings fall back to the defaults
    (with a warning) so DMs and reminders keep working."""
    try:
        return PrivacyConfig.from_dict(await storage.get_privacy_config(guild_id))
    except ValueError as error:
        log.warning("guild %d: privacy settings ignored, using defaults: %s", guild_id, error)
        return PrivacyConfig()


async def send_dm(
    storage: Storage,
    guild_id: int,
    user: discord.abc.Messageable,
    *,
    config: PrivacyConfig | None = None,
    **kwargs: Any,
) -> discord.Message:
    """DM `user` on behalf of the guild; raises DMBudgetExhausted instead of sending when
    the guild's budget for the current minute is spent (the caller records it)."""
    config = config or await privacy_config(storage, guild_id)
    if not await storage.take_dm_budget(
        guild_id, limit=config.dm_per_minute, now=discord.utils.utcnow()
    ):
        raise DMBudgetExhausted(config.dm_per_minute)
    return await user.send(**kwargs)
