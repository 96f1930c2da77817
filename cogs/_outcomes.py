"""How a failed Discord call is recorded: the HTTP failure kinds are told apart because
moderators fix them differently (grant a permission, nothing to do, wait)."""

from __future__ import annotations

import discord

from promptwarden.storage import ActionOutcome


def outcome_of(error: BaseException) -> tuple[ActionOutcome, str]:
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
