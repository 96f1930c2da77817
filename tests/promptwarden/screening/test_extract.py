"""Prompt extraction from every message form in DOMAIN.md."""

from __future__ import annotations

import pytest

from promptwarden.screening.extract import JobKind, Region, extract

UID = 123456789012345678
M = f"<@{UID}>"


@pytest.mark.parametrize(
    ("content", "kind", "status"),
    [
        (f"**a red fox** - {M} (Waiting to start)", JobKind.IMAGINE, "Waiting to start"),
        (f"**a red fox** - {M} (62%) (relaxed)", JobKind.IMAGINE, "62%"),
        (f"**a red fox** - {M} (fast)", JobKind.IMAGINE, "fast"),
        (f"**a red fox** - {M} (turbo)", JobKind.IMAGINE, "turbo"),
        (f"**a red fox** - {M} (fast, stealth)", JobKind.IMAGINE, "fast, stealth"),
        (f"**a red fox** - {M} (metered, fast)", JobKind.IMAGINE, "metered, fast"),
        (f"**a red fox** - {M} (paused)", JobKind.IMAGINE, "paused"),
        (f"**a red fox** - {M} (Stopped)", JobKind.IMAGINE, "Stopped"),
        (f"**a red fox** - {M} (Open on website for full quality)", JobKind.IMAGINE, None),
        (
            f"**a red fox** - {M} [(Open on website for full quality)]"
            "(<https://midjourney.com/jobs/0b1c2d3e-aaaa-bbbb-cccc-123456789abc>)",
            JobKind.IMAGINE,
            None,
        ),
        (f"**a red fox** - Image #1 {M}", JobKind.IMAGE, None),
        (f"**a red fox** - Upscaled by {M} (fast)", JobKind.UPSCALE, "fast"),
        (f"**a red fox** - Upscaled (Max) by {M} (relaxed)", JobKind.UPSCALE, "relaxed"),
        (f"**a red fox** - Variations (Strong) by {M} (fast)", JobKind.VARIATION, "fast"),
        (f"**a red fox** - Variations by {M} (fast)", JobKind.VARIATION, "fast"),
        (f"**a red fox** - Remix (Subtle) by {M} (fast)", JobKind.REMIX, "fast"),
        (f"**a red fox** - Zoom Out by {M} (fast)", JobKind.ZOOM, "fast"),
        (f"**a red fox** - Pan Left by {M} (fast)", JobKind.PAN, "fast"),
        (
            f"Making variations for image #1 with prompt **a red fox** - {M} (Waiting to start)",
            JobKind.VARIATION,
            "Waiting to start",
        ),
        (
            f"Upscaling image #2 with **a red fox** - {M} (Waiting to start)",
            JobKind.UPSCALE,
            "Waiting to start",
        ),
    ],
)
def test_midjourney_forms(content: str, kind: JobKind, status: str | None) -> None:
    p = extract(content, author_is_bot=True)
    assert p.kind is kind
    assert p.text == "a red fox"
    assert content[p.offset : p.offset + len(p.text)] == "a red fox"
    assert p.requester_id == UID
    assert p.status == status
    # only the prompt is screened, not the bot's decoration
    assert p.region_at(content.index("fox")) is Region.PROMPT
    assert p.region_at(content.index("<@")) is Region.SKIP


@pytest.mark.parametrize(
    ("content", "text"),
    [
        ("/imagine prompt: a red fox --ar 16:9", "a red fox --ar 16:9"),
        ("/imagine a red fox", "a red fox"),
        ("a red fox in the snow", "a red fox in the snow"),
    ],
)
def test_person_messages(content: str, text: str) -> None:
    p = extract(content)
    assert p.kind is JobKind.MESSAGE
    assert p.text == text
    assert p.requester_id is None


def test_unknown_bot_message_is_screened_whole() -> None:
    content = "Something the generator says that we do not know"
    p = extract(content, author_is_bot=True)
    assert p.kind is JobKind.UNKNOWN
    assert p.text == content
    assert p.region_at(0) is Region.PROMPT


@pytest.mark.parametrize("dash", ["--", "\u2014", "\u2013"])
def test_parameters_and_em_dash(dash: str) -> None:
    content = (
        f"**a fox {dash}ar 16:9 {dash}v 6 {dash}no blood, gore {dash}stylize 250** - {M} (fast)"
    )
    p = extract(content, author_is_bot=True)
    assert p.parameters == {"ar": "16:9", "v": "6", "no": "blood, gore", "stylize": "250"}
    assert p.negative == "blood, gore"
    assert p.region_at(content.index("gore")) is Region.NEGATIVE
    assert p.region_at(content.index("16:9")) is Region.SKIP
    assert p.region_at(content.index("fox")) is Region.PROMPT


def test_image_and_style_reference_urls_are_skipped() -> None:
    content = (
        f"**<https://s.mj.run/abcDEF> https://example.com/x.png a fox "
        f"--sref https://example.com/style.png --cref https://example.com/c.png** - {M} (fast)"
    )
    p = extract(content, author_is_bot=True)
    assert p.urls == ("https://s.mj.run/abcDEF", "https://example.com/x.png")
    assert p.parameters["sref"] == "https://example.com/style.png"
    assert p.parameters["cref"] == "https://example.com/c.png"
    assert p.region_at(content.index("s.mj.run")) is Region.SKIP
    assert p.region_at(content.index("style.png")) is Region.SKIP
    assert p.region_at(content.index("fox")) is Region.PROMPT


def test_negative_weights_act_like_no() -> None:
    content = "a castle::2 fog::-0.5 towers"
    p = extract(content)
    assert p.region_at(content.index("castle")) is Region.PROMPT
    assert p.region_at(content.index("fog")) is Region.NEGATIVE
    assert p.region_at(content.index("towers")) is Region.PROMPT


def test_permutations_expand_each_option() -> None:
    content = "a {red, blue} car in {rain, snow}"
    p = extract(content)
    texts = ["".join(content[a:b] for a, b in spans) for spans in p.permutations]
    assert texts == [
        "a red car in rain",
        "a red car in snow",
        "a blue car in rain",
        "a blue car in snow",
    ]


def test_the_fast_constructor_makes_the_dataclass_it_stands_for() -> None:
    from promptwarden.screening.extract import ExtractedPrompt, _prompt

    for message in ["a cat", "**a {red, blue} cat --no dog** - <@1052345678901234567> (fast)"]:
        made = extract(message)
        args = (
            made.content,
            made.text,
            made.offset,
            made.kind,
            made.requester_id,
            made.status,
            made.parameters,
            made.negative,
            made.urls,
            made.regions,
            made.permutations,
        )
        assert _prompt(*args) == ExtractedPrompt(*args) == made
        assert _prompt(*args).region_at(made.offset) is ExtractedPrompt(*args).region_at(
            made.offset
        )


def test_parameter_marks_are_the_parameter_pattern_s_matches() -> None:
    import random

    from promptwarden.screening.extract import _PARAM, _parameter_marks

    rng = random.Random(3)
    texts = ["a --ar 3:2", "---ar", "a,--no x", "x\u2014no y \u2013v 5", "—a", "a—b", "--a--b --c"]
    for _ in range(5000):
        texts.append("".join(rng.choice("ab -\u2014\u2013\t,A") for _ in range(rng.randrange(14))))
    for text in texts:
        every = [m.span() for m in _PARAM.finditer(text)]
        assert [m.span() for m in _parameter_marks(text, 10**6)] == every, repr(text)
        assert [m.span() for m in _parameter_marks(text, 2)] == every[:2], repr(text)
