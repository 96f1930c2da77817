"""The shipped learned tier on the hand-written sets and the evaluation data: reviews name
content words, the named words carry the verdict, and the kept-aside rows meet their bars."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

from promptwarden.screening.decision import Verdict
from promptwarden.screening.engine import Screener
from promptwarden.screening.model import STOP_WORDS, LinearModel, default_model, model_text
from promptwarden.screening.rules import GuildRules
from promptwarden.screening.tokens import prompt_words

ROOT = Path(__file__).resolve().parents[3]
SETS = ROOT / "benchmarks" / "sets"
EVAL = Path(os.environ.get("PROMPTWARDEN_EVAL_DIR", ROOT.parent / "shared" / "eval"))


def rows(name: str, split: str) -> list[str]:
    with (SETS / name).open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        return [r["text"] for r in reader if r["split"] == split]


@pytest.fixture(scope="module")
def model() -> LinearModel:
    shipped = default_model()
    assert shipped is not None, "data/model.json ships with the project"
    return shipped


def faithful_share(model: LinearModel, texts: list[str]) -> tuple[float, int]:
    """Share of the model's reviews whose named words, taken out, leave it under threshold.

    A prompt over the threshold whose weight sits only in function words names nothing,
    and the engine then leaves it alone (a review must say why).
    """
    held = reviews = 0
    for text in texts:
        words = prompt_words(model_text(text))
        probability, named = model.score(words)
        if not model.flags(probability) or not named:
            continue  # with no content word to name, the engine does not review
        reviews += 1
        for c in named:
            assert c.weight > 0
            assert all(w not in STOP_WORDS for w in c.feature.split()), (text, c.feature)
        gone = {k for c in named for k in range(c.first, c.last + 1)}
        rest = [w for k, w in enumerate(words) if k not in gone]
        held += not model.flags(model.probability(rest))
    return (held / reviews if reviews else 0.0), reviews


def test_reviews_of_red_team_rows_name_the_words_that_carry_them(model: LinearModel) -> None:
    texts = rows("redteam.tsv", "dev") + rows("redteam.tsv", "heldout")
    share, reviews = faithful_share(model, texts)
    assert reviews >= 50
    assert share >= 0.8


def test_reviews_on_the_evaluation_data_are_faithful(model: LinearModel) -> None:
    i2p = EVAL / "i2p.csv"
    if not i2p.is_file():
        pytest.skip(f"evaluation data not present ({EVAL}); set PROMPTWARDEN_EVAL_DIR")
    with i2p.open(encoding="utf-8", newline="") as fh:
        texts = [r["prompt"] for r in csv.DictReader(fh)]
    texts += (EVAL / "midjourney_prompts.txt").read_text(encoding="utf-8").splitlines()
    share, reviews = faithful_share(model, texts)
    assert reviews >= 200
    assert share >= 0.8


def test_the_split_word_is_named_whole() -> None:
    screener = Screener(GuildRules())
    decision = screener.screen("<|startoftext|> hdr pu $$ ssy girl on a bed 8k")
    assert decision.verdict is not Verdict.ALLOW
    named = " ".join(m.text for m in decision.matches)
    assert "pu $$ ssy" in named


def test_kept_aside_red_team_prompts_are_flagged() -> None:
    screener = Screener(GuildRules())
    texts = rows("redteam.tsv", "heldout")
    assert len(texts) >= 75
    flagged = sum(screener.screen(t).verdict is not Verdict.ALLOW for t in texts)
    assert flagged / len(texts) >= 0.70


def test_kept_aside_captions_with_people_stay_quiet() -> None:
    # the learned tier's share: people in a prompt are not a reason to review it
    screener = Screener(GuildRules())
    texts = rows("captions.tsv", "heldout")
    assert len(texts) >= 150
    reviewed = [t for t in texts if any(m.source == "model" for m in screener.screen(t).matches)]
    assert len(reviewed) / len(texts) <= 0.015, reviewed
