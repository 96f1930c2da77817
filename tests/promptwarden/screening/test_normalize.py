# ruff: noqa: RUF001, RUF003  (evasion tests are made of lookalike characters on purpose)
"""Normalization: each evasion technique, and spans that point back at the original text."""

from __future__ import annotations

import random
import re

import pytest

from promptwarden.screening import normalize as N
from promptwarden.screening.normalize import normalize
from promptwarden.screening.tokens import plain_words, prompt_tokens, prompt_words, word_spans


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


# Random text over the characters the readings' patterns care about, for checking that each
# C-level prefilter lets through everything its regex would find.
_ALPHABET = "aaabbkk1304@$!.. --,,:+/\\#%*_~'é·•\n"


def _random_texts(seed: int, count: int = 4000) -> list[str]:
    rng = random.Random(seed)
    texts = ["a b c", "x a.b-c", "!a b c", "na ked", "p0rn", "8k --ar 16:9", "a1b xy 1"]
    for _ in range(count):
        texts.append("".join(rng.choice(_ALPHABET) for _ in range(rng.randrange(0, 24))))
    return texts


def test_split_run_prefilter_never_hides_a_run() -> None:
    for text in _random_texts(1):
        if N._SPLIT_RUN.search(text) is not None:
            assert N.may_hold_split_run(text), text
    assert not N.may_hold_split_run("a portrait of a woman, oil painting, 8k")


def test_hint_patterns_find_what_the_plain_patterns_find() -> None:
    """The hints lead with their rarer character so the regex engine skips ahead in C; they
    must still answer exactly as the straightforward patterns do."""
    leet = re.compile(r"[a-z][4@31!05$7+89|]|[4@31!05$7+89|][a-z]")
    fragment = re.compile(rf"[{N._FRAG_SEP}][@$!*#%0-9]|[@$!*#%0-9][{N._FRAG_SEP}]")
    for text in _random_texts(2):
        assert (N._LEET_HINT.search(text) is None) == (leet.search(text) is None), text
        assert (N._FRAGMENT_HINT.search(text) is None) == (fragment.search(text) is None), text


def test_plain_words_fast_path_gives_the_tokens_of_the_full_pattern() -> None:
    extra = ["it's a n a k e d cat", "s.e.x 8k mp4 p0rn 1girl", "a  b  c", "ab a b", "x-y-z"]
    extra += ["van gogh's", "'s x", "rock'n'roll", "a' b", "1'a a'1", "''", "it's 8k"]
    for text in _random_texts(3) + extra:
        text = text.lower()
        assert plain_words(text) == [w for w, _, _ in word_spans(text)], text


def test_fragment_search_starts_before_every_run_it_keeps() -> None:
    def kept(run: str) -> bool:
        joined = run.translate(N._FRAG_DROP)
        return (
            len(joined) >= 3 and not joined.isdigit() and bool(N._LETTER_AND_SYMBOL.search(joined))
        )

    texts = [*_random_texts(4), "pu $$ ssy", "of a 3d", "a portrait, 8k --ar 16:9", "abcd e 1 f"]
    texts += ["a cat in a garden --ar 16:9", "a cat ,- --- 3d", "x - $ab"]
    for text in texts:
        start = N._first_run_start(text)
        for m in N._FRAGMENT_RUN.finditer(text):
            if kept(m.group()):
                assert m.start() >= start, text
                assert m.span() in [r.span() for r in N._FRAGMENT_RUN.finditer(text, start)], text


def test_triple_prefilter_never_hides_a_tripled_letter() -> None:
    for text in [*_random_texts(5), "naaaked", "nuuude", "x" * 3, "é" * 3]:
        if N._TRIPLE.search(text) is not None:
            assert N._may_triple(text), text
    assert not N._may_triple("a portrait of a woman, oil painting, 8k")
    # a NUL at the end: the bytes past the text read as zeros, and must not count
    assert not N._may_triple("ab\x00\x00") and N._may_triple("a\x00\x00\x00")


def test_ascii_folds_as_the_character_table_does() -> None:
    every = "".join(map(chr, range(128)))
    assert N._fold(every) == every.translate(N._BMP)


def test_possessive_fragment_runs_match_as_the_backtracking_pattern() -> None:
    frag, sep = N._FRAG, N._FRAG_SEP
    plain = re.compile(
        rf"(?<![{frag}])(?:[{frag}]{{1,3}}[{sep}]{{1,3}})+[{frag}]{{1,3}}(?![{frag}])"
    )
    for text in [*_random_texts(8), "ab cd efgh", "a  b    c", "pu $$ ssy", "8k, hdr --ar 16:9"]:
        assert [m.span() for m in N._FRAGMENT_RUN.finditer(text)] == [
            m.span() for m in plain.finditer(text)
        ], text
