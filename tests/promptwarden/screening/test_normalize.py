# ruff: noqa: RUF001, RUF003  (evasion tests are made of lookalike characters on purpose)
"""Normalization: each evasion technique, and spans that point back at the original text."""

from __future__ import annotations

import pytest

from promptwarden.screening.normalize import normalize
from promptwarden.screening.tokens import prompt_tokens, prompt_words


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ＮＡＫＥＤ", "naked"),  # fullwidth, NFKC
        ("𝐧𝐚𝐤𝐞𝐝", "naked"),  # mathematical bold
        ("nаkеd", "naked"),  # Cyrillic а and е
        ("νακεδ", "vaked"),  # Greek reads as Greek where it is not a lookalike
        ("n\u0301a\u0316k\u0347e\u0300d", "naked"),  # zalgo / combining marks
        ("na\u200bk\u200ce\u2060d\ufeff", "naked"),  # zero-width and invisible
        ("||na||ked", "naked"),  # spoiler markdown inside a word
        ("**na**ked", "naked"),  # bold
        ("`naked`", "naked"),  # code
        ("~~na~~ked", "naked"),  # strike
        ("NaKeD", "naked"),  # mixed case
        ("naïve café", "naive cafe"),  # diacritics
        ("ﬁne", "fine"),  # ligature expands: slow path
    ],
)
def test_folding(raw: str, expected: str) -> None:
    assert normalize(raw).text == expected


@pytest.mark.parametrize(
    "raw",
    ["n\u0301a\u200bk\u0347e\u0300d cat", "ﬁne ﬂower", "ｆｏｏ **bar**", "plain ascii text", ""],
)
def test_every_character_maps_back(raw: str) -> None:
    norm = normalize(raw)
    index = norm.index
    assert len(index) == len(norm.text)
    assert index == sorted(index)
    for i, ch in enumerate(norm.text):
        original = raw[index[i]]
        assert normalize(original).text[:1] == ch or len(normalize(original).text) > 1


def test_tokens_use_the_normalizer_and_original_spans() -> None:
    text = "a ｎａｋｅｄ p0rn n.a.k.e.d woman, 1 9 5 0 sci - fi, 8 k"
    tokens = prompt_tokens(text)
    words = [t.text for t in tokens]
    assert words[:5] == ["a", "naked", "porn", "naked", "woman"]
    # real prompts keep their numbers: "1 9 5 0" is not a word to leet-decode
    assert "sci" in words and "fi" in words and "8" in words and "k" in words
    by_word = {t.text: text[t.start : t.end] for t in tokens}
    assert by_word["porn"] == "p0rn"
    assert text[tokens[1].start : tokens[1].end] == "ｎａｋｅｄ"
    assert text[tokens[3].start : tokens[3].end] == "n.a.k.e.d"
    assert prompt_words("Hello, World") == ["hello", "world"]
