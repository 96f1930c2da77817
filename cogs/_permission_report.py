"""Which permissions the bot lacks, server-wide and per channel, shared by
`/promptwarden status` (a summary) and `/setup` (each gap with how to fix it)."""

from __future__ import annotations

import discord

from promptwarden.permissions import NEEDED_PERMISSIONS, OPTIONAL_PERMISSIONS, NeededPermission


def missing_permissions(permissions: discord.Permissions) -> list[NeededPermission]:
    return [p for p in NEEDED_PERMISSIONS if not getattr(permissions, p.attr)]


def missing_optional(permissions: discord.Permissions) -> list[NeededPermission]:
    """Optional permissions not granted: worth telling an admin, never a fault."""
    return [p for p in OPTIONAL_PERMISSIONS if not getattr(permissions, p.attr)]


def channel_gaps(
    me: discord.Member, channels: list[discord.abc.GuildChannel]
) -> tuple[list[NeededPermission], list[tuple[discord.abc.GuildChannel, list[NeededPermission]]]]:
    """Missing server-wide, then per channel what is missing there beyond that."""
    server = missing_permissions(me.guild_permissions)
    per_channel = []
    for channel in channels:
        gaps = [p for p in missing_permissions(channel.permissions_for(me)) if p not in server]
        if gaps:
            per_channel.append((channel, gaps))
    return server, per_channel


def fix_lines(me: discord.Member, channels: list[discord.abc.GuildChannel]) -> list[str]:
    """One line per missing permission, saying where to grant it."""
    server, per_channel = channel_gaps(me, channels)
    role = me.top_role.name if me.top_role and not me.top_role.is_default() else me.display_name
    lines = [
        f"- Server-wide **{p.label}** (needed to {p.reason}). Fix: Server Settings > Roles > "
        f"{role} > turn on {p.label}."
        for p in server
    ]
    for channel, gaps in per_channel:
        where = getattr(channel, "mention", f"#{channel.name}")
        lines += [
            f"- {where}: **{p.label}** is denied here (needed to {p.reason}). Fix: Edit "
            f"Channel > Permissions > add {role} (or fix the overwrite) > allow {p.label}."
            for p in gaps
        ]
    return lines


def optional_lines(me: discord.Member) -> list[str]:
    """One line per optional permission not granted, with what it would enable."""
    role = me.top_role.name if me.top_role and not me.top_role.is_default() else me.display_name
    return [
        f"- Optional: **{p.label}** is not granted (needed to {p.reason}). To use it: "
        f"Server Settings > Roles > {role} > turn on {p.label}."
        for p in missing_optional(me.guild_permissions)
    ]
