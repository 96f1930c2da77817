"""Permission checks for slash commands, enforced twice.

Default member permissions hide a command from members who lack them, but a server's
admins can override that in Server Settings > Integrations; so every privileged command
also re-checks the invoking member's permissions when it runs (RoboDanny's
`hybrid_permissions_check` idea, for app commands).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import discord
from discord import app_commands

T = TypeVar("T")


def guild_permissions_check(**perms: bool) -> Callable[[T], T]:
    """Hide the command from members without `perms` and refuse them at run time too.

    On a subcommand Discord ignores default permissions (they belong to the top-level
    group: give the group `default_permissions=`), but the run-time check still applies.
    """

    def decorator(func: T) -> T:
        app_commands.default_permissions(**perms)(func)
        app_commands.checks.has_permissions(**perms)(func)
        return func

    return decorator


async def refuse_without_manage_messages(interaction: discord.Interaction[Any], what: str) -> bool:
    """Buttons have no default permissions: whoever can see a message can press them, so
    every moderator button re-checks Manage Messages when pressed. True when refused."""
    if interaction.permissions.manage_messages:
        return False
    await interaction.response.send_message(
        f"You need the Manage Messages permission to {what}.", ephemeral=True
    )
    return True


MANAGE_GUILD = discord.Permissions(manage_guild=True)
