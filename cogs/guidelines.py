"""`/guidelines` for members, and `/guideline-rules` for admins to tune screening.

Discord gives default permissions only to top-level commands, and a group's name cannot
also be a command, so members get `/guidelines` and the admin group is `/guideline-rules`.
"""

from __future__ import annotations

import asyncio
from typing import Literal

import discord
from discord import app_commands
from discord.ext import commands

from cogs._checks import MANAGE_GUILD, guild_permissions_check
from discordbot import PromptWardenBot
from promptwarden import rule_edits
from promptwarden.enforcement import matched_words
from promptwarden.screening.engine import ScreenerCache
from promptwarden.screening.guidelines import LANGUAGE_NAMES, LANGUAGES
from promptwarden.screening.rules import ACTIONS, GuildRules

Interaction = discord.Interaction[PromptWardenBot]
SHOW_TERMS = 40


def _choices(values: tuple[str, ...], typed: str) -> list[app_commands.Choice[str]]:
    typed = typed.casefold()
    return [app_commands.Choice(name=v, value=v) for v in values if typed in v][:25]


async def category_choices(_: Interaction, current: str) -> list[app_commands.Choice[str]]:
    return _choices(rule_edits.RULE_CATEGORIES, current)


async def action_choices(_: Interaction, current: str) -> list[app_commands.Choice[str]]:
    return _choices(ACTIONS, current)


async def severity_level_choices(_: Interaction, current: str) -> list[app_commands.Choice[str]]:
    return _choices((*rule_edits.SEVERITIES, rule_edits.DEFAULT_SEVERITY), current)


async def language_choices(_: Interaction, current: str) -> list[app_commands.Choice[str]]:
    typed = current.casefold()
    return [
        app_commands.Choice(name=f"{LANGUAGE_NAMES[c]} ({c})", value=c)
        for c in LANGUAGES
        if typed in c or typed in LANGUAGE_NAMES[c].casefold()
    ]


async def severity_choices(_: Interaction, current: str) -> list[app_commands.Choice[str]]:
    return _choices(rule_edits.SEVERITIES, current)


def _fit(text: str, limit: int = 2000) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _code(text: str) -> str:
    return "`" + text.replace("`", "\u02cb") + "`"  # a backtick would end the code span


class Guidelines(commands.Cog):
    rules_group = app_commands.Group(
        name="guideline-rules",
        description="Tune what PromptWarden screens for in this server",
        guild_only=True,
        default_permissions=MANAGE_GUILD,
    )

    def __init__(self, bot: PromptWardenBot) -> None:
        self.bot = bot
        self.screeners = ScreenerCache()

    async def rules(self, guild_id: int) -> GuildRules:
        try:
            return GuildRules.from_dict(await self.bot.storage.get_screening_rules(guild_id))
        except ValueError:
            return GuildRules()  # the watcher falls back the same way

    async def save(self, interaction: Interaction, rules: GuildRules, done: str) -> None:
        assert interaction.guild_id is not None
        await self.bot.storage.set_screening_rules(interaction.guild_id, rules.to_dict())
        await interaction.response.send_message(done, ephemeral=True)

    async def refuse(self, interaction: Interaction, error: ValueError) -> None:
        await interaction.response.send_message(
            f"Not saved: {error}. Nothing was changed.", ephemeral=True
        )

    # ------------------------------------------------------------ members

    @app_commands.command(
        name="guidelines", description="The community guidelines this server's prompts follow"
    )
    @app_commands.guild_only()
    async def guidelines(self, interaction: Interaction) -> None:
        guild = interaction.guild
        assert guild is not None
        rules = await self.rules(guild.id)
        lines = [
            f"**Community guidelines of {discord.utils.escape_markdown(guild.name)}**",
            "Prompts and images here must stay PG-13. PromptWarden checks prompts in the "
            "image-generation channels for:",
        ]
        lines += [
            f"- {text}"
            for category, text in rule_edits.enforced_guidelines(rules)
            if category != "personal_info"
        ]
        lines.append(
            "Fiction, fantasy, mythology and respectful parody are fine within PG-13. Trying "
            "to get around the filters (odd spellings, `--no clothes`) counts as breaking them."
        )
        lines.append(
            "Prompts here are public: keep personal information (emails, phone numbers, "
            "addresses) out of them."
        )
        lines.append(
            "A prompt that breaks these rules may be removed, and you get a private message "
            "saying why; repeated breaches add strikes that can lead to a timeout."
        )
        await interaction.response.send_message(_fit("\n".join(lines)), ephemeral=True)

    # ------------------------------------------------------------ admins

    @rules_group.command(name="show", description="This server's screening rules")
    @guild_permissions_check(manage_guild=True)
    async def show(self, interaction: Interaction) -> None:
        assert interaction.guild_id is not None
        rules = await self.rules(interaction.guild_id)
        lines = ["**Screening rules**"]
        actions = ", ".join(f"{c}: {a}" for c, a in sorted(rules.actions.items()))
        lines.append(f"Actions: {actions or 'defaults (high/critical block, medium warn)'}")
        severity = ", ".join(f"{c}: {s.name.lower()}" for c, s in sorted(rules.severity.items()))
        if severity:
            lines.append(f"Severity overrides: {severity}")
        terms = [
            f"{_code(t.term)} ({t.category}, {t.severity.name.lower()})" for t in rules.custom_terms
        ]
        lines.append(f"Custom terms ({len(terms)}): " + (", ".join(terms[:SHOW_TERMS]) or "none"))
        if len(terms) > SHOW_TERMS:
            lines.append(f"… and {len(terms) - SHOW_TERMS} more")
        allow = [_code(t) for t in rules.allow_terms]
        lines.append(f"Allowed terms ({len(allow)}): " + (", ".join(allow[:SHOW_TERMS]) or "none"))
        if suggested := await self.bot.actions.allow_suggestions(interaction.guild_id):
            lines.append(
                "Suggested for the allow list (dismissed as false positives): "
                + ", ".join(
                    f"{_code(s.term)} ({s.dismissals} dismissals)" for s in suggested[:SHOW_TERMS]
                )
            )
        lines.append(f"Learned tier (review by moderators): {'on' if rules.learned else 'off'}")
        on = rules.enabled_languages
        off = [c for c in LANGUAGES if c not in on]
        lines.append(
            "Languages besides English: "
            + (", ".join(LANGUAGE_NAMES[c] for c in on) or "none")
            + (f" (off: {', '.join(LANGUAGE_NAMES[c] for c in off)})" if off else "")
        )
        await interaction.response.send_message(_fit("\n".join(lines)), ephemeral=True)

    @rules_group.command(
        name="language", description="Screen prompts in one more language, or stop doing so"
    )
    @app_commands.describe(
        language="Japanese, Chinese, Korean, Spanish, Portuguese, French, German or Russian",
        setting="on: its word lists apply here (the default); off: they do not",
    )
    @app_commands.autocomplete(language=language_choices)
    @guild_permissions_check(manage_guild=True)
    async def language(
        self, interaction: Interaction, language: str, setting: Literal["on", "off"]
    ) -> None:
        assert interaction.guild_id is not None
        code = language.strip().lower()
        try:
            rules = (await self.rules(interaction.guild_id)).with_language(code, setting == "on")
        except ValueError as error:
            await self.refuse(interaction, error)
            return
        name = LANGUAGE_NAMES[code]
        await self.save(
            interaction,
            rules,
            f"Saved: prompts in {name} are screened here."
            if setting == "on"
            else f"Saved: {name} word lists no longer apply here (English always does).",
        )

    @rules_group.command(name="set-action", description="What happens when a category matches")
    @app_commands.describe(
        category="A guideline category, or custom",
        action="block, warn, review (moderators only), remind, allow or off",
    )
    @app_commands.autocomplete(category=category_choices, action=action_choices)
    @guild_permissions_check(manage_guild=True)
    async def set_action(self, interaction: Interaction, category: str, action: str) -> None:
        assert interaction.guild_id is not None
        try:
            rules = rule_edits.set_action(
                await self.rules(interaction.guild_id), category.strip(), action.strip().lower()
            )
        except ValueError as error:
            await self.refuse(interaction, error)
            return
        await self.save(interaction, rules, f"Saved: **{category}** now → **{action}**.")

    @rules_group.command(
        name="set-severity", description="How serious a category's matches are (picks the action)"
    )
    @app_commands.describe(
        category="A guideline category, or custom",
        severity="low (allowed), medium (warn), high (block), critical (block, more points), "
        "or default",
    )
    @app_commands.autocomplete(category=category_choices, severity=severity_level_choices)
    @guild_permissions_check(manage_guild=True)
    async def set_severity(self, interaction: Interaction, category: str, severity: str) -> None:
        assert interaction.guild_id is not None
        try:
            rules = rule_edits.set_severity(
                await self.rules(interaction.guild_id), category.strip(), severity
            )
        except ValueError as error:
            await self.refuse(interaction, error)
            return
        level = severity.strip().lower()
        done = (
            f"Saved: **{category.strip()}** matches keep each term's own severity."
            if level == rule_edits.DEFAULT_SEVERITY
            else f"Saved: **{category.strip()}** matches now count as **{level}**."
        )
        if category.strip() in rules.actions:
            done += (
                f" Its action stays **{rules.actions[category.strip()]}** "
                "(set with `/guideline-rules set-action`)."
            )
        await self.save(interaction, rules, done)

    @rules_group.command(
        name="learned", description="The learned tier: prompts moderators should look at"
    )
    @app_commands.describe(setting="on: likely violations go to review (never to the member)")
    @guild_permissions_check(manage_guild=True)
    async def learned(self, interaction: Interaction, setting: Literal["on", "off"]) -> None:
        assert interaction.guild_id is not None
        rules = rule_edits.set_learned(await self.rules(interaction.guild_id), setting == "on")
        await self.save(
            interaction,
            rules,
            "Saved: the learned tier is on; its hits go to `/incidents queue` for review."
            if rules.learned
            else "Saved: the learned tier is off; only the word rules screen prompts.",
        )

    @rules_group.command(name="add-term", description="Add a word or phrase to screen for")
    @app_commands.describe(
        term="At most 60 characters; * only at the start or end (cat*, *cat, *cat*)",
        category="The guideline it breaks, or custom",
        severity="low (allowed), medium (warn), high (block), critical (block, more points)",
    )
    @app_commands.autocomplete(category=category_choices, severity=severity_choices)
    @guild_permissions_check(manage_guild=True)
    async def add_term(
        self, interaction: Interaction, term: str, category: str = "custom", severity: str = "high"
    ) -> None:
        assert interaction.guild_id is not None
        try:
            rules = rule_edits.add_term(
                await self.rules(interaction.guild_id), term, category.strip(), severity
            )
        except ValueError as error:
            await self.refuse(interaction, error)
            return
        cleaned = rules.custom_terms[-1]
        await self.save(
            interaction,
            rules,
            f"Added {_code(cleaned.term)} ({cleaned.category}, {cleaned.severity.name.lower()}); "
            "it applies to the next prompt.",
        )

    @rules_group.command(name="allow", description="Never flag a word or phrase")
    @app_commands.describe(term="At most 60 characters; * only at the start or end")
    @guild_permissions_check(manage_guild=True)
    async def allow(self, interaction: Interaction, term: str) -> None:
        assert interaction.guild_id is not None
        try:
            rules = rule_edits.allow_term(await self.rules(interaction.guild_id), term)
        except ValueError as error:
            await self.refuse(interaction, error)
            return
        await self.save(interaction, rules, f"Allowed {_code(' '.join(term.split()))}.")

    @rules_group.command(name="remove-term", description="Remove a custom or allowed term")
    @guild_permissions_check(manage_guild=True)
    async def remove_term(self, interaction: Interaction, term: str) -> None:
        assert interaction.guild_id is not None
        rules, found = rule_edits.remove_term(await self.rules(interaction.guild_id), term)
        if not found:
            await interaction.response.send_message(
                f"{_code(term[:60])} is not a custom or allowed term here "
                "(`/guideline-rules show` lists them).",
                ephemeral=True,
            )
            return
        await self.save(interaction, rules, f"Removed {_code(' '.join(term.split()))}.")

    @rules_group.command(name="test", description="Screen a prompt with this server's rules")
    @app_commands.describe(prompt="The prompt to try; nothing is stored and nobody is warned")
    @guild_permissions_check(manage_guild=True)
    async def test(self, interaction: Interaction, prompt: str) -> None:
        assert interaction.guild_id is not None
        rules = await self.rules(interaction.guild_id)
        screener = self.screeners.cached(interaction.guild_id, rules)
        if screener is None:
            # Compiling the guild's automaton takes a fraction of a second: off the loop.
            screener = await asyncio.to_thread(self.screeners.get, interaction.guild_id, rules)
        decision = screener.screen(prompt)
        lines = [
            f"**Verdict: {decision.verdict.value}** · severity {decision.severity.name.lower()}"
            + (f" · categories: {', '.join(decision.categories)}" if decision.categories else "")
        ]
        if decision.score is not None:
            lines.append(f"Learned tier score: {decision.score:.2f}")
        if decision.matches:
            lines.append("Matches:")
            for m in decision.matches[:20]:
                shown = f"[{m.term}]" if m.source.startswith("pii:") else _code(m.text)
                lines.append(f"- {shown} → {m.category} ({m.severity.name.lower()}, {m.source})")
        else:
            lines.append("No matches: this prompt would be allowed.")
        words = matched_words([m.to_dict() for m in decision.matches])
        if words and decision.flagged:
            lines.append(f"Members would be told about: {', '.join(map(_code, words))}")
        await interaction.response.send_message(_fit("\n".join(lines)), ephemeral=True)


async def setup(bot: PromptWardenBot) -> None:
    await bot.add_cog(Guidelines(bot))
