"""Hypothesis against the prompt parser and the screener: hostile text never escapes as an error.

Whatever a member or a generator bot posts (up to Discord's 4,000 characters), `extract` and
`Screener.screen` return, every span they report indexes the original text, and the work done
grows linearly with the input. Work is counted (characters normalized and scanned), never
timed: the time per 4,000 characters is measured in `benchmarks/fuzz_bound.py`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from promptwarden.screening import engine
from promptwarden.screening.decision import Verdict
from promptwarden.screening.engine import EXPANSION_BUDGET, Screener
from promptwarden.screening.extract import MAX_PERMUTATIONS, ExtractedPrompt, extract
from promptwarden.screening.normalize import Normalized
from promptwarden.screening.rules import GuildRules
from tests.helpers import DISCORD_LIMIT, FULLWIDTH_NUDE, ZALGO, every_category

REQUESTER = "<@123456789012345678>"
# Pieces that steer the parser into its corners: job shapes, parameters, weights, braces,
# links, direction overrides, NUL, combining marks (zalgo) and words the rules know.
FRAGMENTS = [
    "**",
    " - ",
    REQUESTER,
    "<@!0>",
    "<@99999999999999999999999999>",
    " (fast)",
    " (Waiting to start)",
    " (62%) (relaxed)",
    "[(Open on website for full quality)](<https://midjourney.com/jobs/x>)",
    "Upscaled (Max) by ",
    "- Image #1 ",
    "Making variations for image #1 with prompt ",
    "/imagine prompt: ",
    " --no ",
    " --ar 16:9",
    " \u2014ar 2:3",
    " --",
    "--no",
    "::",
    "::-0.5 ",
    "::2",
    "::-",
    "{",
    "}",
    "{a, b, c}",
    ",",
    "<https://s.mj.run/abc>",
    "https://",
    "\u202e",
    "\u202d",
    "\u2066",
    "\x00",
    ZALGO,
    "\ufeff",
    "\u200b",
    FULLWIDTH_NUDE,
    "n.u.d.e",
    "nuuuude",
    "blood",
    "child",
    "12 year old",
    "naked",
    "clothes",
    "gore",
    "@",
    "email@example.com",
    "+1 555 123 4567",
    "\n",
    "    ",
]
CATEGORY_SAMPLES = every_category()

unicode_text = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=DISCORD_LIMIT)
structured = st.lists(
    st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=12)), max_size=200
).map("".join)
long_repeats = st.tuples(st.sampled_from([*FRAGMENTS, CATEGORY_SAMPLES]), st.integers(1, 4000)).map(
    lambda p: (p[0] * p[1])[:DISCORD_LIMIT]
)
messages = st.one_of(unicode_text, structured, long_repeats).map(lambda s: s[:DISCORD_LIMIT])

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def assert_spans_index(content: str, prompt: ExtractedPrompt) -> None:
    n = len(content)
    assert prompt.content is content
    assert 0 <= prompt.offset <= prompt.offset + len(prompt.text) <= n
    assert content[prompt.offset : prompt.offset + len(prompt.text)] == prompt.text
    for start, end, _ in prompt.regions:
        assert 0 <= start <= end <= n
    assert [r[:2] for r in prompt.regions] == sorted(r[:2] for r in prompt.regions)
    assert len(prompt.permutations) <= MAX_PERMUTATIONS
    for spans in prompt.permutations:
        for start, end in spans:
            assert 0 <= start <= end <= n


@FUZZ
@given(content=messages, author_is_bot=st.booleans())
def test_extract_never_raises_and_its_spans_index_the_message(
    content: str, author_is_bot: bool
) -> None:
    assert_spans_index(content, extract(content, author_is_bot=author_is_bot))


@pytest.fixture(scope="module")
def screener() -> Screener:
    # The rules tier only: these properties are about extraction, normalization and matching.
    return Screener(GuildRules(learned=False), model=None)


class WorkCounter:
    """Counts the characters the screener normalizes: its work, independent of the clock."""

    def __init__(self) -> None:
        self.calls = 0
        self.chars = 0

    def wrap(self, normalize: object) -> object:
        def counted(text: str) -> Normalized:
            self.calls += 1
            self.chars += len(text)
            return normalize(text)  # type: ignore[operator, no-any-return]

        return counted


@pytest.fixture
def work(monkeypatch: pytest.MonkeyPatch) -> Iterator[WorkCounter]:
    counter = WorkCounter()
    monkeypatch.setattr(engine, "normalize", counter.wrap(engine.normalize))
    yield counter


@FUZZ
@given(content=messages, author_is_bot=st.booleans())
def test_screen_never_raises_and_every_match_points_at_the_original_text(
    screener: Screener, content: str, author_is_bot: bool
) -> None:
    decision = screener.screen(content, author_is_bot=author_is_bot)
    assert decision.prompt == content
    assert isinstance(decision.verdict, Verdict)
    for match in decision.matches:
        assert 0 <= match.start <= match.end <= len(content), match
        assert match.text == content[match.start : match.end]


@settings(FUZZ, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(content=messages)
def test_screening_work_grows_linearly_with_the_message(
    screener: Screener, work: WorkCounter, content: str
) -> None:
    """The message once, and the text around `{a,b}` joins once, within a budget.

    The counter is shared by all examples (hence the suppressed health check); each
    example reads only its own difference.
    """
    before_calls, before_chars = work.calls, work.chars
    screener.screen(content)
    calls, chars = work.calls - before_calls, work.chars - before_chars
    assert 1 <= calls <= 2
    assert chars <= len(content) + EXPANSION_BUDGET * max(len(content), 256) + 256


def test_a_brace_heavy_prompt_is_screened_flat_and_still_caught(
    screener: Screener, work: WorkCounter
) -> None:
    """4,000 characters of `{a, b}` groups: Midjourney would refuse so many jobs, so no
    expansion is read (expanding 16 full copies once cost ~250 ms); the words are still
    found in the flat text."""
    content = ("{a,b,c,d} " * 40 + "{nude,castle} " + "{{x,y},z} " * 40) * 20
    content = content[:DISCORD_LIMIT]
    assert extract(content).permutations == ()
    decision = screener.screen(content)
    assert decision.verdict is Verdict.BLOCK
    assert "nude" in {m.text for m in decision.matches}
    assert work.chars == len(content)


@pytest.mark.parametrize(
    ("content", "word"),
    [
        ("{red, blue} {car, naked woman}", "naked"),
        ("a {nu,bl}de figure", "nude"),  # an option joined to the text after it
        ("a fig {x, y} {nu}{de} " + "castle " * 500, "nude"),  # a join far into a long prompt
        ("{n}{u}{d}{e} " * 3 + "{a}" * 20, "nude"),  # too many groups: the flat reading
    ],
)
def test_words_made_by_joining_options_are_caught(
    screener: Screener, work: WorkCounter, content: str, word: str
) -> None:
    decision = screener.screen(content)
    assert decision.verdict is Verdict.BLOCK, decision.to_dict()
    hit = next(m for m in decision.matches if m.category == "sexual")
    assert word in hit.text.replace("{", "").replace("}", "").replace(",", "").replace("bl", "")
    assert work.chars <= len(content) + EXPANSION_BUDGET * max(len(content), 256) + 256


def test_every_unicode_category_and_the_worst_shapes_screen_cleanly(screener: Screener) -> None:
    """Named cases a fuzzer may take long to reach, each at Discord's full length."""
    nested = "{" * 2000 + "}" * 2000
    braces = ("{" + ",".join("abcdefgh") + "} ") * 250
    weights = "a::-" * 1000
    cases = [
        CATEGORY_SAMPLES * (DISCORD_LIMIT // len(CATEGORY_SAMPLES)),
        ZALGO * (DISCORD_LIMIT // len(ZALGO)),
        "\u202enude girl\u202c " * 250,
        "\x00" * DISCORD_LIMIT,
        nested,
        braces[:DISCORD_LIMIT],
        weights,
        f"**{'--no ' * 790}** - {REQUESTER} (fast)",
        "**" * 2000,
        f"<@{'9' * 30}> " * 120,
    ]
    for content in cases:
        decision = screener.screen(content[:DISCORD_LIMIT], author_is_bot=True)
        assert all(m.text == content[m.start : m.end] for m in decision.matches)
