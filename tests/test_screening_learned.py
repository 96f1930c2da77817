"""The learned tier inside the engine, with the shipped model (skipped until one exists).

The model is trained elsewhere; here we only check what the engine makes of its verdict:
review (never warn or block), words that weighed most as matches pointing at the original
text, and the guild switch that turns the tier off.
"""

from __future__ import annotations

import pytest

from promptwarden.screening.decision import Verdict
from promptwarden.screening.engine import Screener
from promptwarden.screening.rules import GuildRules

model_module = pytest.importorskip("promptwarden.screening.model")

# suggestive prompts with no listed word: what word lists cannot see
PROMPTS = [
    "the lower back of a beautiful woman on a bed, painted by milo manara",
    "voluptuous nymph bathing in a river at dawn, by bouguereau",
    "woman in white sheets, soft light, in the style of classicism",
    "a hot shirtless man with abs lying in bed, photo",
    "girls twerking by a pool, photo",
    "a screaming prisoner holding prison bars, realism old painting",
]


@pytest.fixture(scope="module")
def learned() -> Screener:
    if model_module.default_model() is None:
        pytest.skip("no data/model.json")
    return Screener(GuildRules(learned=True))


def test_model_hits_are_reviews_with_exact_spans(learned: Screener) -> None:
    reviewed = [d for d in (learned.screen(p) for p in PROMPTS) if d.verdict is Verdict.REVIEW]
    if not reviewed:
        pytest.skip("the model flags none of these prompts")
    for d in reviewed:
        model_matches = [m for m in d.matches if m.source == "model"]
        assert model_matches and len(model_matches) <= 5
        assert d.score is not None
        for m in model_matches:
            assert m.weight is not None
            assert m.text == d.prompt[m.start : m.end]
            assert m.text.strip()


def test_learned_tier_off_for_the_guild(learned: Screener) -> None:
    off = Screener(GuildRules(learned=False))
    for p in PROMPTS:
        assert off.screen(p).verdict is not Verdict.REVIEW
