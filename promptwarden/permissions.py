"""The Discord permissions PromptWarden asks for, each with the reason an admin is shown.

One list feeds the invite URL, the README and the status command's "missing" report, so
they cannot drift apart (a test compares the README's integer with `PERMISSIONS_INTEGER`).
Bits are Discord's documented permission flags, kept here without importing discord.py.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class NeededPermission:
    attr: str  # discord.py `Permissions` attribute
    label: str  # as the Discord client shows it
    bit: int
    reason: str


NEEDED_PERMISSIONS: tuple[NeededPermission, ...] = (
    NeededPermission(
        "view_channel",
        "View Channels",
        1 << 10,
        "see the image-generation channels it watches and the mod-log channel",
    ),
    NeededPermission(
        "send_messages",
        "Send Messages",
        1 << 11,
        "post mod-log entries and, when a member's DMs are closed, a short notice in the channel",
    ),
    NeededPermission(
        "send_messages_in_threads",
        "Send Messages in Threads",
        1 << 38,
        "do the same in threads and forum posts of watched channels",
    ),
    NeededPermission(
        "embed_links",
        "Embed Links",
        1 << 14,
        "post mod-log entries and warnings as embeds",
    ),
    NeededPermission(
        "attach_files",
        "Attach Files",
        1 << 15,
        "attach incident exports and statistics charts",
    ),
    NeededPermission(
        "read_message_history",
        "Read Message History",
        1 << 16,
        "screen prompts posted while the bot was offline",
    ),
    NeededPermission(
        "manage_messages",
        "Manage Messages",
        1 << 13,
        "delete a prompt that breaks the guidelines, including ones posted by the generator bot",
    ),
    NeededPermission(
        "moderate_members",
        "Moderate Members",
        1 << 40,
        "time out members who collect too many strikes",
    ),
)

PERMISSIONS_INTEGER = sum(p.bit for p in NEEDED_PERMISSIONS)

# Asked for separately: screening works without them, and an admin may prefer not to grant
# a moderation bot server-wide settings. Reported as optional, never as a fault.
OPTIONAL_PERMISSIONS: tuple[NeededPermission, ...] = (
    NeededPermission(
        "manage_guild",
        "Manage Server",
        1 << 5,
        "mirror the most severe terms into Discord AutoMod rules (`/automod`) and log "
        "AutoMod's blocks as incidents",
    ),
)
PERMISSIONS_WITH_OPTIONAL = PERMISSIONS_INTEGER | sum(p.bit for p in OPTIONAL_PERMISSIONS)

INVITE_URL_TEMPLATE = (
    "https://discord.com/oauth2/authorize?client_id={application_id}"
    "&scope=bot+applications.commands&permissions={permissions}"
)


def invite_url(application_id: int | str, *, optional: bool = False) -> str:
    """The invite; with `optional`, also asking for the optional permissions (AutoMod)."""
    return INVITE_URL_TEMPLATE.format(
        application_id=application_id,
        permissions=PERMISSIONS_WITH_OPTIONAL if optional else PERMISSIONS_INTEGER,
    )
