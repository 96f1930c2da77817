"""Acknowledging a click or a form before doing its work.

Discord forgets an interaction that is not answered within 3 seconds ("Unknown
interaction", 10062). A moderator's click may delete a message, lift a timeout, DM the
member and edit another mod-log entry first, and each of those calls can be slow or
rate limited; so callbacks with such work acknowledge at once and answer afterwards,
when the token is valid for 15 minutes. Refusals that need no Discord call (missing
permission, unknown incident) are answered directly, before acknowledging.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import discord

log = logging.getLogger("promptwarden.interactions")

SOMETHING_WENT_WRONG = "Something went wrong; the error has been logged for the bot's operator."


@contextlib.asynccontextmanager
async def acknowledged(
    interaction: discord.Interaction[Any], *, thinking: bool = False, ephemeral: bool = False
) -> AsyncIterator[None]:
    """Acknowledge, then run the body. Without `thinking` it is a silent update of the
    clicked message (answer with `edit_original_response` or an ephemeral follow-up);
    with it the user sees "thinking…" until the first follow-up replaces it.

    If the body fails, the user is told privately instead of being left waiting, and
    the error propagates to be logged."""
    if not interaction.response.is_done():  # a permission check may have acknowledged
        await interaction.response.defer(thinking=thinking, ephemeral=ephemeral)
    try:
        yield
    except Exception:
        try:
            await interaction.followup.send(SOMETHING_WENT_WRONG, ephemeral=True)
        except discord.HTTPException as error:
            log.warning("could not tell the user about an error: %s", error)
        raise
