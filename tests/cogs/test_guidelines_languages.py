"""`/guideline-rules language` through the real bot and SimCord: a guild switches one of the
shipped languages off and on, and the next prompt in that language meets the change."""

from __future__ import annotations

import simcord

from tests.helpers import Server, text

SPANISH = "una mujer desnuda en la playa, óleo"


async def test_a_language_switched_off_no_longer_screens_its_words(
    simcord_env: simcord.Env,
) -> None:
    s = Server(simcord_env)
    await s.watch()
    await s.member.send(s.channel, SPANISH)  # on by default: removed
    assert [m.content for m in s.channel.history()] == []

    off = await s.slash(s.admin, "guideline-rules language", language="es", setting="off")
    assert off.ephemeral and text(off) == (
        "Saved: Spanish word lists no longer apply here (English always does)."
    )
    assert (await s.storage.get_screening_rules(s.guild.id))["languages"] == [
        "ja", "zh", "ko", "pt", "fr", "de", "ru"
    ]  # fmt: skip
    shown = text(await s.slash(s.admin, "guideline-rules show"))
    assert "(off: Spanish)" in shown and "Japanese" in shown
    await s.member.send(s.channel, SPANISH)
    await s.env.settle()
    assert [m.content for m in s.channel.history()] == [SPANISH]

    on = await s.slash(s.admin, "guideline-rules language", language="es", setting="on")
    assert text(on) == "Saved: prompts in Spanish are screened here."
    assert "languages" not in (await s.storage.get_screening_rules(s.guild.id) or {})
    await s.member.send(s.channel, SPANISH + " 2")
    await s.env.settle()
    assert [m.content for m in s.channel.history()] == [SPANISH]


async def test_an_unknown_language_is_refused(simcord_env: simcord.Env) -> None:
    s = Server(simcord_env)
    bad = await s.slash(s.admin, "guideline-rules language", language="xx", setting="off")
    assert bad.ephemeral and text(bad).startswith("Not saved: unknown language 'xx'")
    assert "guideline-rules language" not in s.moderator.available_commands(s.channel)
