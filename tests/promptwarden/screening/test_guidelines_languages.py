# ruff: noqa: RUF001  (prompts in other scripts use their own punctuation on purpose)
"""Eight more languages as data: clear violations caught, look-alikes left alone, CJK read
without word boundaries, halfwidth and fullwidth forms folded, and a guild's language switch."""

from __future__ import annotations

import pytest

from promptwarden.screening.decision import Severity, Verdict
from promptwarden.screening.engine import Screener
from promptwarden.screening.guidelines import LANGUAGES, default_guidelines
from promptwarden.screening.normalize import normalize
from promptwarden.screening.rules import GuildRules

RULES_ONLY = Screener(GuildRules(learned=False), model=None)


@pytest.mark.parametrize(
    ("prompt", "category"),
    [
        ("裸の女性、油絵", "sexual"),
        ("血まみれの死体の山", "violence"),
        ("少女が手首を切る", "self_harm"),
        ("裸体美女，高清", "sexual"),
        ("纳粹旗帜和游行", "hate"),
        ("누드 사진, 해변", "sexual"),
        ("마약 주사기를 든 남자", "drugs"),
        ("una mujer desnuda en la playa", "sexual"),
        ("un hombre decapitado en el bosque", "violence"),
        ("mulher pelada na praia", "sexual"),
        ("une femme nue sur la plage", "sexual"),
        ("eine nackte Frau am Strand", "sexual"),
        ("ein Hakenkreuz auf einer Fahne", "hate"),
        ("голая женщина на пляже", "sexual"),
        ("расчленённый труп в лесу", "violence"),
    ],
)
def test_clear_violations_in_other_languages(prompt: str, category: str) -> None:
    d = RULES_ONLY.screen(prompt)
    assert d.verdict in (Verdict.WARN, Verdict.BLOCK), d.to_dict()
    assert category in d.categories


@pytest.mark.parametrize(
    "prompt",
    [
        "eine Fahrt mit dem Zug durch die Alpen",
        "pechuga de pollo a la plancha con ensalada",
        "un gato negro en un tejado, fondo negro",
        "イエローの花とグローブ、カロリー表示",
        "フロリダの海、グロリアの肖像",
        "裸眼で見る星空、裸足の子供",
        "아이스크림을 든 아이돌",
        "à l'œil nu, une avenue de Paris",
        "eine Nacktschnecke im Garten",
        "jogo de pelada na praia, buraco negro",
        "голубь на голове статуи",
    ],
)
def test_look_alikes_stay_clean(prompt: str) -> None:
    d = RULES_ONLY.screen(prompt)
    assert not d.flagged, d.to_dict()


def test_cjk_terms_match_beside_letters_and_digits() -> None:
    d = RULES_ONLY.screen("8k裸体photo")
    assert d.verdict is Verdict.BLOCK
    assert any(m.text == "裸体" for m in d.matches)


@pytest.mark.parametrize(
    ("raw", "folded"), [("ｾｯｸｽ", "セックス"), ("ｸﾞﾛ", "グロ"), ("ﾎﾟﾙﾉ", "ポルノ")]
)
def test_halfwidth_katakana_folds_to_fullwidth(raw: str, folded: str) -> None:
    assert normalize(raw).text == folded
    assert RULES_ONLY.screen(raw).verdict is Verdict.BLOCK


def test_a_minor_in_a_sexual_scene_is_critical_in_cjk_too() -> None:
    d = RULES_ONLY.screen("小女孩 裸体")
    assert d.severity is Severity.CRITICAL and d.categories[0] == "minors"


def test_every_language_has_every_category() -> None:
    wanted = {"sexual", "minors", "violence", "self_harm", "hate", "drugs"}
    for code in LANGUAGES:
        have = {t.category for t in default_guidelines().terms if t.language == code}
        assert wanted <= have, code


def test_a_guild_can_switch_a_language_off() -> None:
    rules = GuildRules.from_dict({"learned": False}).with_language("de", False)
    assert "de" not in rules.enabled_languages and rules.languages is not None
    off = Screener(rules, model=None)
    assert not off.screen("eine nackte Frau am Strand").flagged
    assert off.screen("a naked woman").verdict is Verdict.BLOCK  # English always applies
    assert off.screen("una mujer desnuda").verdict is Verdict.BLOCK
    back = rules.with_language("de", True)
    assert back.languages is None and back.to_dict() == GuildRules(learned=False).to_dict()


def test_language_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="unknown language"):
        GuildRules.from_dict({"languages": ["ja", "klingon"]})
    with pytest.raises(ValueError, match="list of language codes"):
        GuildRules.from_dict({"languages": "ja"})
    rules = GuildRules.from_dict({"languages": ["ru", "ja"]})
    assert rules.languages == ("ja", "ru")
    assert GuildRules.from_dict(rules.to_dict()) == rules
