"""`/automod`: mirror the guild's most severe terms into Discord AutoMod rules it owns.

AutoMod blocks a member's message before anyone sees it; screening still covers what it
cannot (the generator bot's echoed prompts, every other severity). Only PromptWarden's own
rules are ever changed or removed: those whose ids it stored, or that it created under its
name prefix. Once on, a change to the guild's terms, allow list, exempt roles or mod-log
resyncs the rules by itself; an unchanged guild costs no REST call. AutoMod's hits become
incidents (source `automod`) through the same recording and actions as screening's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Any, cast

import discord
from discord import app_commands
from discord.ext import commands

from cogs._checks import MANAGE_GUILD, guild_permissions_check
from discordbot import PromptWardenBot
from promptwarden.automod import (
    BLOCKED_REPEAT_SECONDS,
    MAX_KEYWORD_RULES,
    TRIGGER_KEYWORD,
    AutoModHit,
    SyncPlan,
    SyncState,
    hit_decision,
    hit_draft,
    is_own_rule,
    mirrored_terms,
    plan_sync,
    rule_payload,
    state_key,
)
from promptwarden.dedupe import SeenCache
from promptwarden.guild_states import GuildState
from promptwarden.policy import plan_actions
from promptwarden.screening.guidelines import default_guidelines

if TYPE_CHECKING:
    # Only for types: importing the module at run time would run it a second time beside
    # the copy the extension loader runs, with a second Screening class.
    from cogs.screening import Screening

log = logging.getLogger("promptwarden.automod")
Interaction = discord.Interaction[PromptWardenBot]
NEEDS_MANAGE_SERVER = (
    "I need the **Manage Server** permission to manage AutoMod rules. Grant it to my role "
    "in Server Settings > Roles (it is optional: screening works without it)."
)
SHOW_LEFT_OUT = 10


class BlockedMessage:
    """What acting needs of a message AutoMod blocked: it never existed, so it has no id
    worth deleting and no link for the mod-log."""

    def __init__(self, guild: discord.Guild, channel: object) -> None:
        self.guild = guild
        self.channel = channel
        self.id = 0
        self.jump_url: str | None = None


class SyncError(Exception):
    """A sync that could not finish; the message is for the admin."""


def _rule_id(rule: dict[str, object]) -> int:
    return int(str(rule["id"]))


class AutoMod(commands.Cog):
    automod = app_commands.Group(
        name="automod",
        description="Mirror PromptWarden's most severe terms into Discord AutoMod",
        guild_only=True,
        default_permissions=MANAGE_GUILD,
    )

    def __init__(self, bot: PromptWardenBot) -> None:
        self.bot = bot
        self.states = bot.guild_states
        self._locks: dict[int, asyncio.Lock] = {}
        self._resyncs: dict[int, asyncio.Task[None]] = {}
        # One execution arrives once per action of its rule: handled once here.
        self._hits = SeenCache(max_items=10_000, ttl=BLOCKED_REPEAT_SECONDS)

    async def cog_unload(self) -> None:
        for task in self._resyncs.values():
            task.cancel()

    # ------------------------------------------------------------ stored state

    async def stored(self, guild_id: int) -> SyncState:
        return SyncState.from_json(await self.bot.storage.get_meta(state_key(guild_id)))

    async def store(self, guild_id: int, state: SyncState) -> None:
        await self.bot.storage.set_meta(state_key(guild_id), state.to_json())

    def _lock(self, guild_id: int) -> asyncio.Lock:
        return self._locks.setdefault(guild_id, asyncio.Lock())

    # ------------------------------------------------------------ syncing

    async def plan(self, guild: discord.Guild, rules: list[dict[str, object]]) -> SyncPlan:
        """What to hold, in the keyword rules the guild's own rules leave free."""
        state = await self.states.get(guild.id)
        stored = await self.stored(guild.id)
        me = self.bot.user
        assert me is not None
        others = sum(
            1
            for r in rules
            if int(str(r.get("trigger_type"))) == TRIGGER_KEYWORD
            and not is_own_rule(r, bot_id=me.id, stored_ids=stored.rule_ids)
        )
        return await asyncio.to_thread(
            plan_sync, default_guidelines(), state.rules, slots=MAX_KEYWORD_RULES - others
        )

    async def _fetch_rules(self, guild: discord.Guild) -> list[dict[str, object]]:
        # Raw payloads: the ownership test reads creator and name as Discord sent them.
        return list(await self.bot.http.get_auto_moderation_rules(guild.id))  # type: ignore[arg-type]

    def _payloads(
        self, plan: SyncPlan, state: GuildState, guild: discord.Guild
    ) -> list[dict[str, object]]:
        return [
            rule_payload(
                r,
                alert_channel_id=state.modlog_channel_id,
                exempt_role_ids=exempt_roles(guild, state),
            )
            for r in plan.rules
        ]

    async def sync(self, guild: discord.Guild, *, force: bool = False) -> tuple[SyncPlan, bool]:
        """Make the guild's PromptWarden rules match its terms; (plan, whether anything was
        sent). Raises SyncError when Discord refuses."""
        async with self._lock(guild.id):
            return await self._sync_or_say_why(guild, force=force)

    async def _sync_or_say_why(self, guild: discord.Guild, *, force: bool) -> tuple[SyncPlan, bool]:
        """`_sync` with Discord's refusals turned into SyncError (the lock held)."""
        try:
            return await self._sync(guild, force=force)
        except discord.Forbidden as error:
            await self._note_error(guild.id, "missing the Manage Server permission")
            raise SyncError(NEEDS_MANAGE_SERVER) from error
        except discord.HTTPException as error:
            await self._note_error(guild.id, f"Discord refused: {error.text or error.status}")
            raise SyncError(
                f"Discord refused the AutoMod rules ({error.status}): {error.text}"
            ) from error

    async def _note_error(self, guild_id: int, error: str) -> None:
        stored = await self.stored(guild_id)
        await self.store(guild_id, replace(stored, error=error))

    async def _sync(self, guild: discord.Guild, *, force: bool) -> tuple[SyncPlan, bool]:
        me = self.bot.user
        assert me is not None
        stored = await self.stored(guild.id)
        state = await self.states.get(guild.id)
        existing = await self._fetch_rules(guild)
        own = [r for r in existing if is_own_rule(r, bot_id=me.id, stored_ids=stored.rule_ids)]
        plan = await self.plan(guild, existing)
        payloads = self._payloads(plan, state, guild)
        fingerprint = plan.fingerprint({"payloads": payloads})
        own_ids = {_rule_id(r) for r in own}
        unchanged = (
            not force
            and stored.enabled
            and stored.fingerprint == fingerprint
            and own_ids == set(stored.rule_ids)
        )
        if unchanged:
            return plan, False
        http = self.bot.http
        reason = "PromptWarden: /automod sync"
        kept: list[int] = []
        # Edit own rules in place (their ids stay), create what is missing, drop the rest.
        for index, payload in enumerate(payloads):
            if index < len(own):
                rule_id = _rule_id(own[index])
                fields = {k: v for k, v in payload.items() if k != "trigger_type"}
                await http.edit_auto_moderation_rule(guild.id, rule_id, reason=reason, **fields)
            else:
                created = await http.create_auto_moderation_rule(guild.id, reason=reason, **payload)
                rule_id = int(created["id"])
            kept.append(rule_id)
            # Stored after each step: a failure half-way still knows every rule it made.
            known = (*kept, *(_rule_id(r) for r in own[len(kept) :]))
            await self.store(guild.id, replace(stored, rule_ids=known))
        for surplus in own[len(payloads) :]:
            with contextlib.suppress(discord.NotFound):  # already gone
                await http.delete_auto_moderation_rule(guild.id, _rule_id(surplus), reason=reason)
        await self.store(
            guild.id,
            SyncState(
                enabled=True,
                rule_ids=tuple(kept),
                synced_at=discord.utils.utcnow().isoformat(timespec="seconds"),
                fingerprint=fingerprint,
                mirrored=len(plan.terms),
                left_out=len(plan.left_out),
            ),
        )
        log.info(
            "guild %d: AutoMod rules synced (%d rule(s), %d term(s), %d left out)",
            guild.id,
            len(payloads),
            len(plan.terms),
            len(plan.left_out),
        )
        return plan, True

    async def turn_off(self, guild: discord.Guild) -> int:
        """Delete PromptWarden's own rules (never the guild's others); how many went."""
        me = self.bot.user
        assert me is not None
        async with self._lock(guild.id):
            stored = await self.stored(guild.id)
            try:
                existing = await self._fetch_rules(guild)
                removed = 0
                for rule in existing:
                    if is_own_rule(rule, bot_id=me.id, stored_ids=stored.rule_ids):
                        try:
                            await self.bot.http.delete_auto_moderation_rule(
                                guild.id, _rule_id(rule), reason="PromptWarden: /automod off"
                            )
                        except discord.NotFound:
                            continue
                        removed += 1
            except discord.Forbidden as error:
                raise SyncError(NEEDS_MANAGE_SERVER) from error
            await self.store(guild.id, SyncState())
            return removed

    # ------------------------------------------------------------ resync on edits

    @commands.Cog.listener()
    async def on_promptwarden_settings_changed(self, guild_id: int) -> None:
        """Terms, allow list, exempt roles or mod-log changed: resync when AutoMod is on.

        One resync at a time per guild; changes arriving meanwhile are picked up by it or
        by one more run after it (a burst of edits costs at most two syncs)."""
        running = self._resyncs.get(guild_id)
        if running is not None and not running.done():
            running.add_done_callback(lambda _: self._start_resync(guild_id))
            return
        self._start_resync(guild_id)

    def _start_resync(self, guild_id: int) -> None:
        running = self._resyncs.get(guild_id)
        if running is not None and not running.done():
            return
        self._resyncs[guild_id] = asyncio.get_running_loop().create_task(self._resync(guild_id))

    async def _resync(self, guild_id: int) -> None:
        # The lock is taken before the first await, so `/automod status` right after an
        # edit waits for this resync and shows its result.
        async with self._lock(guild_id):
            guild = self.bot.get_guild(guild_id)
            if guild is None or not (await self.stored(guild_id)).enabled:
                return
            try:
                await self._sync_or_say_why(guild, force=False)
            except SyncError as error:
                log.warning("guild %d: AutoMod resync failed: %s", guild_id, error)
            except Exception:
                log.exception("guild %d: AutoMod resync failed", guild_id)

    # ------------------------------------------------------------ AutoMod's hits

    @commands.Cog.listener()
    async def on_automod_action(self, execution: discord.AutoModAction) -> None:
        """Record a hit as an incident, with the same strikes, mod-log entry and appeal as
        any other. Discord sends one event per action of the rule (block, alert...): the
        first makes the incident, the rest find it. A hit on a message that was posted
        (a rule that only alerts) is the same incident as screening's for that message."""
        if execution.rule_trigger_type is not discord.AutoModRuleTriggerType.keyword:
            return
        key = (
            execution.guild_id,
            execution.rule_id,
            execution.user_id,
            execution.channel_id,
            execution.message_id,
            execution.matched_keyword,
            execution.content,
        )
        if not self._hits.mark(key):
            return
        try:
            await self.record_hit(execution)
        except Exception:
            log.exception("guild %d: recording an AutoMod hit failed", execution.guild_id)

    async def record_hit(self, execution: discord.AutoModAction) -> None:
        guild = self.bot.get_guild(execution.guild_id)
        screening = cast("Screening | None", self.bot.get_cog("Screening"))
        if guild is None or execution.channel_id is None or screening is None:
            return
        state = await screening.states.get(guild.id)
        stored = await self.stored(guild.id)
        term = None
        if execution.rule_id in stored.rule_ids:
            terms, _ = await asyncio.to_thread(mirrored_terms, default_guidelines(), state.rules)
            wanted = (execution.matched_keyword or "").casefold()
            term = next((t for t in terms if t.keyword == wanted), None)
        hit = AutoModHit(
            guild_id=guild.id,
            rule_id=execution.rule_id,
            channel_id=execution.channel_id,
            user_id=execution.user_id,
            message_id=execution.message_id,
            content=execution.content or "",
            keyword=execution.matched_keyword or "",
            matched_content=execution.matched_content or "",
            at=discord.utils.utcnow(),
        )
        decision = hit_decision(hit, term, state.rules)
        config = state.config
        plan = plan_actions(decision, config.strike_policy)
        message = self._hit_message(guild, hit)
        if await screening.exempt(message, hit.user_id, state):
            return
        draft = hit_draft(hit, decision, plan, self.bot.job_keyer)
        settled = {"delete": "blocked by AutoMod before anyone saw it"} if hit.blocked else {}
        incident, created = await screening.record_and_act(
            message, draft, plan, decision, settled=settled
        )
        if incident is not None and created:
            log.info("guild %d: AutoMod hit recorded as incident %d", guild.id, incident.id)

    def _hit_message(self, guild: discord.Guild, hit: AutoModHit) -> Any:
        channel = guild.get_channel_or_thread(hit.channel_id)
        if channel is None or not isinstance(channel, discord.TextChannel | discord.Thread):
            where = self.bot.get_partial_messageable(hit.channel_id, guild_id=guild.id)
            return (
                BlockedMessage(guild, where)
                if hit.blocked
                else where.get_partial_message(hit.message_id or 0)
            )
        if hit.blocked:
            return BlockedMessage(guild, channel)
        return channel.get_partial_message(hit.message_id or 0)

    # ------------------------------------------------------------ commands

    @automod.command(name="sync", description="Mirror the critical and high terms into AutoMod")
    @guild_permissions_check(manage_guild=True)
    async def sync_command(self, interaction: Interaction) -> None:
        guild = interaction.guild
        assert guild is not None
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            plan, _ = await self.sync(guild, force=True)
        except SyncError as error:
            await interaction.followup.send(str(error), ephemeral=True)
            return
        await interaction.followup.send(sync_report(plan), ephemeral=True)

    @automod.command(name="status", description="Show PromptWarden's AutoMod rules")
    @guild_permissions_check(manage_guild=True)
    async def status_command(self, interaction: Interaction) -> None:
        guild = interaction.guild
        assert guild is not None
        async with self._lock(guild.id):  # after a resync in progress, not during it
            stored = await self.stored(guild.id)
        lines = ["**PromptWarden AutoMod rules**"]
        if not stored.enabled:
            lines.append("Off. Run `/automod sync` to mirror the critical and high terms.")
        else:
            lines.append(
                f"On: {len(stored.rule_ids)} rule(s), {stored.mirrored} term(s); "
                f"last sync {_when(stored.synced_at)}."
            )
            if stored.left_out:
                lines.append(f"{stored.left_out} term(s) did not fit; screening still has them.")
        if stored.error:
            lines.append(f"Last attempt failed: {stored.error}.")
        if not guild.me.guild_permissions.manage_guild:
            lines.append(NEEDS_MANAGE_SERVER)
        elif stored.enabled:
            try:
                existing = await self._fetch_rules(guild)
            except discord.HTTPException as error:
                lines.append(f"Could not read the rules from Discord ({error.status}).")
            else:
                me = self.bot.user
                assert me is not None
                for rule in existing:
                    if is_own_rule(rule, bot_id=me.id, stored_ids=stored.rule_ids):
                        count = _keyword_count(rule)
                        on = "enabled" if rule.get("enabled") else "disabled"
                        lines.append(f"- {rule.get('name')}: {count} keyword(s), {on}")
        await interaction.response.send_message("\n".join(lines), ephemeral=True)

    @automod.command(name="off", description="Remove PromptWarden's AutoMod rules (only its own)")
    @guild_permissions_check(manage_guild=True)
    async def off_command(self, interaction: Interaction) -> None:
        guild = interaction.guild
        assert guild is not None
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            removed = await self.turn_off(guild)
        except SyncError as error:
            await interaction.followup.send(str(error), ephemeral=True)
            return
        await interaction.followup.send(
            f"Removed {removed} PromptWarden AutoMod rule(s); the server's other rules are "
            "untouched. Screening goes on as before.",
            ephemeral=True,
        )


def exempt_roles(guild: discord.Guild, state: GuildState) -> list[int]:
    """Roles AutoMod lets through: the guild's exempt roles, then (when moderators are
    exempt from screening) roles that may manage messages, as screening treats them.
    Discord takes at most 20; the exempt roles come first."""
    roles = list(state.config.exempt_role_ids)
    if state.config.moderators_exempt:
        roles += [
            r.id
            for r in sorted(guild.roles, key=lambda r: -r.position)
            if not r.is_default() and not r.managed and r.permissions.manage_messages
        ]
    return list(dict.fromkeys(roles))


def sync_report(plan: SyncPlan) -> str:
    """What the admin is told after a sync, including everything that did not fit."""
    lines = [
        f"AutoMod: {len(plan.rules)} PromptWarden rule(s) hold {len(plan.terms)} critical and "
        "high term(s), most severe first; members see a note pointing to `/guidelines`."
    ]
    if not plan.rules:
        lines.append(
            "No rule could be made: the server's own keyword rules use all "
            f"{MAX_KEYWORD_RULES} that Discord allows."
            if plan.slots == 0
            else "There are no critical or high terms to mirror."
        )
    if plan.left_out:
        shown = ", ".join(f"`{t.keyword}`" for t in plan.left_out[:SHOW_LEFT_OUT])
        extra = len(plan.left_out) - SHOW_LEFT_OUT
        more = f" and {extra} more" if extra > 0 else ""
        lines.append(
            f"Did not fit ({len(plan.left_out)}, screening still catches them): {shown}{more}"
        )
    if plan.allow_left_out:
        lines.append(
            f"Allow list: {len(plan.allow_left_out)} entry(ies) beyond Discord's 100 were left out."
        )
    if plan.unexpressible:
        shown = ", ".join(f"`{t}`" for t in plan.unexpressible[:SHOW_LEFT_OUT])
        lines.append(f"Not expressible as AutoMod keywords (screening only): {shown}")
    return "\n".join(lines)[:2000]


def _keyword_count(rule: dict[str, object]) -> int:
    metadata = rule.get("trigger_metadata")
    keywords = metadata.get("keyword_filter") if isinstance(metadata, dict) else None
    return len(keywords) if isinstance(keywords, list) else 0


def _when(iso: str | None) -> str:
    if not iso:
        return "never"
    try:
        moment = discord.utils.parse_time(iso)
    except ValueError:
        return iso
    return discord.utils.format_dt(moment, "R")


async def setup(bot: PromptWardenBot) -> None:
    await bot.add_cog(AutoMod(bot))
