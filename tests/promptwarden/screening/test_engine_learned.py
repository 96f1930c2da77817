"""The learned tier inside the engine, with the shipped model.

The model is trained elsewhere; here we only check what the engine makes of its verdict:
review (never warn or block), words that weighed most as matches pointing at the original
text, and the guild switch that turns the tier off.
"""

from __future__ import annotations

import pytest

from promptwarden.screening.decision import Verdict
from promptwarden.screening.engine import Screener
from promptwarden.screening.model import default_model, model_text
from promptwarden.screening.rules import GuildRules
from promptwarden.screening.tokens import prompt_words

# suggestive prompts with no listed word: what word lists cannot see
PROMPTS = [
    "the lower back of a beautiful woman on a bed, painted by milo manara",
    "voluptuous nymph bathing in a river at dawn, by bouguereau",
    "woman in white sheets, soft light, in the style of classicism",
    "a hot shirtless man with abs lying in bed, photo",
    "girls twerking by a pool, photo",
    "a screaming prisoner holding prison bars, realism old painting",
    # marks and zero-width characters: the normalized text no longer lines up with the message
    "a scre\u0301aming pri\u200bsoner holding prison b\u0327ars, realism old painting --ar 3:2",
]


@pytest.fixture(scope="module")
def learned() -> Screener:
    assert default_model() is not None, "data/model.json ships with the project"
    return Screener(GuildRules(learned=True))


def test_model_hits_are_reviews_with_exact_spans(learned: Screener) -> None:
    decisions = [learned.screen(p) for p in PROMPTS]
    reviewed = [d for d in decisions if d.verdict is Verdict.REVIEW]
    # the rules never hand the model's work a harsher verdict than review
    assert all(d.verdict in (Verdict.REVIEW, Verdict.WARN, Verdict.ALLOW) for d in decisions)
    assert len(reviewed) >= 3
    for d in reviewed:
        model_matches = [m for m in d.matches if m.source == "model"]
        assert model_matches and len(model_matches) <= 5
        assert d.score is not None
        for m in model_matches:
            assert m.weight is not None
            assert m.text == d.prompt[m.start : m.end]
            assert m.text.strip()
    zalgo = decisions[-1]
    assert zalgo.verdict is Verdict.REVIEW
    words = {m.text for m in zalgo.matches if m.source == "model"}
    assert any("scre\u0301aming" in w or "pri\u200bsoner" in w for w in words), words


def test_learned_tier_off_for_the_guild(learned: Screener) -> None:
    off = Screener(GuildRules(learned=False))
    for p in PROMPTS:
        assert off.screen(p).verdict is not Verdict.REVIEW


@pytest.mark.parametrize(
    "message",
    [
        "a screaming prisoner holding prison bars --ar 3:2 --v 5 --no people",
        "a scre\u0301aming pri\u200bsoner <https://s.mj.run/x> holding bars::-1 --ar 3:2",
        "<https://s.mj.run/abc> a screaming prisoner::2 holding prison bars::-0.5 --stylize 900",
        "**a screaming prisoner holding prison bars —ar 16:9** - <@1052345678901234567> (fast)",
        "Upscaling image #2 with **a screaming prisoner, prison bars --w 6000** - "
        "<@1052345678901234567> (Waiting to start)",
    ],
)
def test_the_model_sees_the_words_it_was_trained_on(learned: Screener, message: str) -> None:
    # Training blanks parameters, links and ::weights (model_text) before tokenizing; the
    # engine must score exactly those words, or the threshold means something else.
    model = default_model()
    assert model is not None
    decision = learned.screen(message)
    prompt = message
    if "**" in message:
        prompt = message.split("**")[1]
    expected, _ = model.score(prompt_words(model_text(prompt)))
    assert decision.score == pytest.approx(expected, abs=1e-12)
