"""Permission checks for slash commands, enforced twice.

Default member permissions hide a command from members who lack them, but a server's
admins can override that in Server Settings > Integrations; so every privileged command
also re-checks the invoking member's permissions when it runs (RoboDanny's
`hybrid_permissions_check` idea, for app commands).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

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


MANAGE_GUILD = discord.Permissions(manage_guild=True)
