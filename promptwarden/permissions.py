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


# ---------------------------------------------------------------- who may do what

# Discord shows these names; the attributes are discord.py's `Permissions` ones.
LABELS: dict[str, str] = {
    "manage_messages": "Manage Messages",
    "moderate_members": "Moderate Members",
    "manage_guild": "Manage Server",
    "administrator": "Administrator",
}

MODERATE = "manage_messages"  # the baseline of every moderator decision
TIME_OUT = "moderate_members"


def label(attr: str) -> str:
    return LABELS.get(attr, attr.replace("_", " ").title())


@dataclass(frozen=True, slots=True)
class Standing:
    """One party of a moderation action as the rules see it.

    `permissions` are the names of the permissions held server-wide, from the member's
    roles (Discord's channel overwrites do not count: a role allowed Manage Messages in
    the mod-log channel alone is not a moderator). `top_role` is the position of the
    member's highest role, which decides who may act on whom.
    """

    permissions: frozenset[str]
    top_role: int
    owner: bool = False


@dataclass(frozen=True, slots=True)
class Facts:
    """What an entry point knows when a moderator presses a button or runs a command.

    `target` is the member acted on, None when they are no longer in the server.
    `lifts_timeout`: the action would end a timeout the member is serving (a dismissal
    of the incident that earned it, an accepted appeal, a pardon). `presser_in_channel`
    and `bot_in_channel` are the permissions in the channel of the incident's message,
    None when that channel is unknown.
    """

    presser: Standing
    bot: Standing
    target: Standing | None = None
    lifts_timeout: bool = False
    presser_in_channel: frozenset[str] | None = None
    bot_in_channel: frozenset[str] | None = None


# Every entry point names one of these; each maps to the checks below.
ACTIONS = (
    "moderate",  # read incidents, page lists
    "uphold",
    "dismiss",
    "warn",
    "timeout",
    "delete",
    "appeal_accept",
    "appeal_reject",
    "pardon",
)


def missing(held: frozenset[str], needed: tuple[str, ...]) -> list[str]:
    """The needed permissions not held; Administrator holds them all."""
    if "administrator" in held:
        return []
    return [p for p in needed if p not in held]


def _you_need(attr: str, what: str) -> str:
    return f"You need the **{label(attr)}** permission (server-wide, from your roles) to {what}."


def _above(presser: Standing, target: Standing | None) -> bool:
    """Whether the presser may act on the target by role position (the owner may always)."""
    if target is None or presser.owner:
        return True
    return not target.owner and target.top_role < presser.top_role


def timeout_refusal(facts: Facts, what: str, *, bot_side: bool) -> str | None:
    """Timing out or lifting: Moderate Members and a target below the presser's top role;
    with `bot_side`, the bot must hold the same and sit above the target too."""
    if missing(facts.presser.permissions, (TIME_OUT,)):
        return _you_need(TIME_OUT, what)
    target = facts.target
    if not _above(facts.presser, target):
        return f"You cannot {what}: their highest role is not below yours (or they own the server)."
    if not bot_side:
        return None
    if missing(facts.bot.permissions, (TIME_OUT,)):
        return (
            f"I need the **{label(TIME_OUT)}** permission to {what}; ask an admin to give it "
            "to my role in Server Settings > Roles."
        )
    if target is not None and (target.owner or target.top_role >= facts.bot.top_role):
        return (
            f"I cannot {what}: their highest role is not below mine. An admin can move my "
            "role above theirs in Server Settings > Roles."
        )
    return None


def delete_refusal(facts: Facts) -> str | None:
    """Deleting needs Manage Messages where the message is, for the presser and the bot.
    With the channel unknown (deleted since), the server-wide permissions stand in."""
    presser = (
        facts.presser_in_channel
        if facts.presser_in_channel is not None
        else facts.presser.permissions
    )
    if missing(presser, (MODERATE,)):
        return (
            f"You need the **{label(MODERATE)}** permission in the channel of the message "
            "to delete it."
        )
    bot = facts.bot_in_channel if facts.bot_in_channel is not None else facts.bot.permissions
    if missing(bot, (MODERATE,)):
        return (
            f"I need the **{label(MODERATE)}** permission in the channel of the message to "
            "delete it; ask an admin to allow it for my role there."
        )
    return None


def refusal(action: str, facts: Facts) -> str | None:
    """Why this presser may not do `action`, naming the missing permission or the role
    in the way; None when they may. Pure: the cogs gather `facts` from Discord.

    Timing out needs Moderate Members and a target below both the presser and the bot.
    A decision that would lift a timeout needs Moderate Members and a target below the
    presser; the bot's own side of a lift is reported in the mod-log as the lift's outcome,
    so a dismissal of a false positive is never blocked by the bot's role. Warning adds a
    strike, which may reach a timeout by the server's policy: it needs a target below the
    presser. Deleting needs Manage Messages in the message's channel.
    """
    if action not in ACTIONS:
        raise ValueError(f"unknown moderator action {action!r}")
    if action == "timeout":
        return timeout_refusal(facts, "time this member out", bot_side=True)
    if action == "delete":
        return delete_refusal(facts)
    if missing(facts.presser.permissions, (MODERATE,)):
        return _you_need(MODERATE, "act on incidents and appeals")
    if action == "pardon" or (action in ("dismiss", "appeal_accept") and facts.lifts_timeout):
        what = "pardon this member" if action == "pardon" else "lift this member's timeout"
        return timeout_refusal(facts, what, bot_side=False)
    if action == "warn" and not _above(facts.presser, facts.target):
        return (
            "You cannot warn this member: their highest role is not below yours "
            "(or they own the server)."
        )
    return None
