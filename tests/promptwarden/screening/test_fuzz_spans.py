# ruff: noqa: RUF001  (evasion tests are made of lookalike characters on purpose)
"""Property tests: screening never raises, and every span indexes the original text."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from promptwarden.screening.engine import Screener
from promptwarden.screening.normalize import normalize
from promptwarden.screening.rules import GuildRules
from promptwarden.screening.tokens import plain_words, prompt_tokens, word_spans

SCREENER = Screener(GuildRules(learned=False))

# words that fire, evasion characters, markdown and Midjourney syntax, mixed with anything
pieces = st.sampled_from(
    ["naked", "n a k e d", "n4k3d", "gore", "child", "trump", "mugshot", "--no ", "—no ",
     "clothes", "**", "||", "::-1", "{a, b}", "<@123456789012345678>", " - ", "(fast)",
     "\u200b", "\u0301", "ﬁ", "ａ", "а", "@", "4111 1111 1111 1111", "https://x.y/z"]
)  # fmt: skip
texts = st.lists(st.one_of(st.text(max_size=12), pieces), max_size=30).map("".join)


@settings(max_examples=400, deadline=None)
@given(texts, st.booleans())
def test_screen_never_raises_and_spans_are_exact(text: str, bot: bool) -> None:
    d = SCREENER.screen(text, author_is_bot=bot)
    assert d.prompt == text
    for m in d.matches:
        assert 0 <= m.start <= m.end <= len(text)
        assert m.text == text[m.start : m.end]
    d.to_dict()


@settings(max_examples=300, deadline=None)
@given(texts)
def test_normalized_index_is_monotonic_and_in_range(text: str) -> None:
    norm = normalize(text)
    index = norm.index
    assert index == sorted(index)
    assert all(0 <= i < len(text) for i in index)
    for t in prompt_tokens(text):
        assert 0 <= t.start < t.end <= len(text)


@settings(max_examples=400, deadline=None)
@given(texts)
def test_the_learned_tiers_fast_words_are_the_tokens(text: str) -> None:
    """The model scores `plain_words` and explains with `word_spans` by index: they must
    be the same words, or the explanation would point at the wrong ones."""
    normalized = normalize(text).text
    assert plain_words(normalized) == [w for w, _, _ in word_spans(normalized)]
    assert plain_words(normalized) == [t.text for t in prompt_tokens(text)]
