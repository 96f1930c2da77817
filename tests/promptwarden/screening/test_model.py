"""The learned tier at run time: faithful to scikit-learn, strict about its file, explainable."""

from __future__ import annotations

import json
import math
import pickle
import random
from pathlib import Path

import pytest

from promptwarden.screening.model import (
    CHAR_PREFIX,
    DEFAULT_PATH,
    Contribution,
    LinearModel,
    ModelFileError,
    default_model,
    letter_runs,
    model_text,
)
from promptwarden.screening.tokens import prompt_tokens, prompt_words
from scripts.train_model import concept_counts, export, features, read_concepts, train

BENIGN = [
    "castle",
    "forest",
    "river",
    "mountain",
    "portrait",
    "golden",
    "light",
    "painting",
    "by",
    "artist",
    "city",
    "night",
]
RISKY = ["storm", "wreck", "ruin", "smoke", "ash"]


def generated_corpus(seed: int) -> tuple[list[str], list[float]]:
    """Prompts whose label hangs on words, a bigram and repeats, so every code path is used."""
    rng = random.Random(seed)
    texts, labels = [], []
    for i in range(400):
        risky = i % 3 == 0
        words = rng.choices(BENIGN, k=rng.randint(3, 12))
        if risky:
            words += rng.choices(RISKY, k=rng.randint(1, 3))
            if rng.random() < 0.5:
                words += ["red", "door"]
        elif rng.random() < 0.3:
            words += ["red", "car", "door"]  # "red" and "door", never "red door"
        if rng.random() < 0.2:
            rng.shuffle(words)
        texts.append(", ".join(" ".join(words[j : j + 3]) for j in range(0, len(words), 3)))
        labels.append(1.0 if risky else 0.0)
    return texts, labels


@pytest.mark.parametrize("binary", [True, False])
def test_runtime_scores_equal_scikit_learn(tmp_path: Path, binary: bool) -> None:
    import numpy as np

    texts, labels = generated_corpus(seed=3)
    docs = [features(t) for t in texts]
    weights = np.linspace(0.5, 1.5, len(texts))
    vectorizer, clf = train(docs, np.array(labels), weights, min_df=1, binary=binary)
    path = tmp_path / "model.json"
    exported = export(vectorizer, clf)
    exported.threshold = 0.5
    exported.dump(path)
    model = LinearModel.load(path)

    probe, _ = generated_corpus(seed=99)  # unseen prompts, with words the model never saw
    probe += ["storm storm storm red door red door", "nothing known here", ""]
    x = vectorizer.transform([features(t) for t in probe])
    expected_p = clf.predict_proba(x)[:, 1]
    expected_z = clf.decision_function(x)
    for text, p, z in zip(probe, expected_p, expected_z, strict=True):
        words = prompt_words(model_text(text))
        assert model.score(words)[0] == pytest.approx(p, abs=1e-9)
        assert model.decision(words)[0] == pytest.approx(z, abs=1e-9)
        # the per-message path (word pairs, no joined 2-grams) gives the very same number
        assert model.probability(words) == model.score(words)[0]


def test_concept_weights_fold_exactly_into_the_words(tmp_path: Path) -> None:
    """A category column trained beside the words scores the same once folded into them,
    and a listed word no training prompt held still carries its category's weight."""
    import numpy as np
    from scipy.sparse import hstack

    texts, labels = generated_corpus(seed=5)
    concepts = {"storm": "weather", "gale": "weather", "wreck": "ruin", "ruin": "ruin"}
    docs = [features(t) for t in texts]
    assert not any("gale" in d for d in docs)
    vectorizer, clf = train(docs, np.array(labels), np.ones(len(texts)), concepts=concepts)
    path = tmp_path / "model.json"
    exported = export(vectorizer, clf, concepts=concepts)
    exported.threshold = 0.5
    exported.dump(path)
    model = LinearModel.load(path)

    probe, _ = generated_corpus(seed=98)
    probe += ["storm wreck ruin gale", "gale over the castle", "storm storm storm", ""]
    probe_docs = [features(t) for t in probe]
    x = hstack([vectorizer.transform(probe_docs), concept_counts(probe_docs, concepts)[1]])
    for text, z in zip(probe, clf.decision_function(x.tocsr()), strict=True):
        assert model.decision(prompt_words(model_text(text)))[0] == pytest.approx(z, abs=1e-9)
    weather = clf.coef_[0][len(vectorizer.vocabulary_) + 1]  # categories sorted: ruin, weather
    assert weather > 0
    assert model.weights["gale"] == pytest.approx(weather)
    assert "@weather" not in model.weights and "weather" not in model.weights


def test_concepts_need_binary_features() -> None:
    import numpy as np

    texts, labels = generated_corpus(seed=5)
    with pytest.raises(ValueError, match="binary"):
        train([features(t) for t in texts], np.array(labels), np.ones(len(texts)),
              binary=False, concepts={"storm": "weather"})  # fmt: skip


def test_concept_file_is_refused_on_a_bad_line(tmp_path: Path) -> None:
    bad = tmp_path / "concepts.tsv"
    bad.write_text("term\tcategory\tnote\nbare thighs\tsexual\t\n", encoding="utf-8")
    with pytest.raises(SystemExit, match="line 2"):
        read_concepts(bad)
    good = tmp_path / "ok.tsv"
    good.write_text("term\tcategory\tnote\nbuxom\tsexual\tnote\n", encoding="utf-8")
    assert read_concepts(good) == {"buxom": "sexual"}


def test_per_message_score_is_exactly_the_explained_score() -> None:
    """The shipped model's fast path and its explaining path agree to the last bit, on
    ordinary, split, glued and leet prompts, so a review never depends on which ran."""
    model = default_model()
    if model is None:
        pytest.skip("no shipped model")
    sets = Path(__file__).resolve().parents[3] / "benchmarks" / "sets"
    texts = [
        line.split("\t")[2]
        for f in sorted(sets.glob("*.tsv"))
        for line in f.read_text(encoding="utf-8").splitlines()[1:]
        if line.count("\t") >= 2
    ]
    assert len(texts) > 500
    for text in texts:
        words = prompt_words(model_text(text))
        assert model.probability(words) == model.score(words)[0], text


def test_repeated_feature_counts_as_the_vectorizer_counts_it() -> None:
    weights = {"storm": 1.0}
    once = LinearModel(weights, 0.0, 0.5, binary=True).decision(["storm", "storm"])
    twice = LinearModel(weights, 0.0, 0.5, binary=False).decision(["storm", "storm"])
    assert once == (1.0, [Contribution("storm", 1.0, 0, 0)])
    assert twice == (2.0, [Contribution("storm", 2.0, 0, 0)])


def test_explanation_names_the_words_including_bigrams_as_phrases() -> None:
    model = LinearModel({"red door": 2.0, "storm": 1.5, "door": 0.5, "castle": -1.0}, -4.0, 0.5)
    text = "A castle, a **Red  Door** in the STORM"
    tokens = prompt_tokens(text)
    probability, contributions = model.score([t.text for t in tokens])

    assert probability == pytest.approx(1 / (1 + math.exp(-(2.0 + 1.5 + 0.5 - 1.0 - 4.0))))
    # below the threshold: the heaviest content words, neighbours joined into a phrase
    assert [c.feature for c in contributions] == ["red door", "storm"]
    spans = [text[tokens[c.first].start : tokens[c.last].end] for c in contributions]
    assert spans == ["Red  Door", "STORM"]
    assert [c.weight for c in contributions] == [pytest.approx(2.5), pytest.approx(1.5)]


def test_explanation_never_names_function_words() -> None:
    weights = {"the": 2.0, "on": 1.5, "on the": 1.0, "is": 1.0, "me": 1.0, "beach": 0.5}
    model = LinearModel(weights, -1.0, 0.5)
    words = prompt_words("show me the woman is on the beach")
    probability, contributions = model.score(words)
    assert model.flags(probability)
    assert [c.feature for c in contributions] == ["beach"]
    assert all(c.weight > 0 for c in contributions)


def test_explanation_names_just_enough_words_to_carry_the_verdict() -> None:
    # every named word matters: without them the prompt is under the threshold, and
    # naming stops as soon as that holds (a weaker word is left out)
    model = LinearModel({"naked": 2.0, "bloody": 1.5, "night": 0.4, "city": 0.2}, -1.0, 0.5)
    words = prompt_words("a naked and bloody man in the city at night")
    probability, contributions = model.score(words)
    assert model.flags(probability)
    named = [c.feature for c in contributions]
    assert named == ["naked", "bloody"]
    gone = {k for c in contributions for k in range(c.first, c.last + 1)}
    rest = [w for k, w in enumerate(words) if k not in gone]
    assert not model.flags(model.probability(rest))


def test_letter_grams_see_split_glued_and_symbol_words() -> None:
    model = LinearModel({"#naked": 3.0, "#kedsu": 0.0001}, -2.0, 0.5, char_ngrams=(5,))
    for text, shown in [
        ("a naked woman", "naked"),
        ("nakedsunited on a beach", "nakedsunited"),
        ("na ked woman", "na ked"),
        ("n-a-k-e-d woman", "n-a-k-e-d"),
        ("<|startoftext|> na $$ ked ~~ woman", "na $$ ked"),
    ]:
        probability, matches = model.explain(text)
        assert model.flags(probability), text
        assert [m.text for m in matches] == [shown], text
    for text in ["a snake in the grass", "snack ed", "an apple tree"]:
        assert not model.flags(model.explain(text)[0]), text


def test_letters_are_read_only_where_words_are_unknown_or_split() -> None:
    known = frozenset({"a", "woman", "on", "the", "beach", "snake", "dancing"})
    assert list(letter_runs(["a", "woman", "on", "the", "beach"], known)) == []
    assert list(letter_runs(["a", "snake", "dancing"], known)) == []  # "asnakedancing": unread
    assert list(letter_runs(["pu", "ssy", "woman"], known)) == [(0, 1)]
    assert list(letter_runs(["a", "nakedsunited", "on", "the", "beach"], known)) == [(0, 3)]
    model = LinearModel({"#naked": 3.0}, -2.0, 0.5, char_ngrams=(5,), known=known)
    assert not model.flags(model.probability(["a", "snake", "dancing"]))
    assert model.flags(model.probability(["na", "ked", "woman"]))
    assert model.decision(["a", "nakedsunited"])[1] == [Contribution("#naked", 3.0, 1, 1)]


def test_at_most_five_contributions_and_only_positive_ones() -> None:
    weights = {w: float(i + 1) for i, w in enumerate(["a", "b", "c", "d", "e", "f", "g"])} | {
        "h": -3.0
    }
    words = [
        "h",
        "the",
        "a",
        "the",
        "b",
        "the",
        "c",
        "the",
        "d",
        "the",
        "e",
        "the",
        "f",
        "the",
        "g",
    ]
    _, contributions = LinearModel(weights, 0.0, 0.5).score(words)
    assert [c.feature for c in contributions] == ["g", "f", "e", "d", "c"]


def test_shipped_model_is_plain_json_and_small() -> None:
    raw = DEFAULT_PATH.read_bytes()
    assert raw.lstrip().startswith(b"{")
    data = json.loads(raw)
    assert data["tokenizer"] == "promptwarden.screening.tokens.prompt_words"
    assert data["ngram_range"] == [1, 2]
    assert data["char_ngrams"] == [5]
    assert len(raw) < 3_000_000
    oof = data["training"]["out_of_fold"]
    assert oof["midjourney"]["share"] <= 0.01  # the threshold rule, on out-of-fold scores
    assert list(data["weights"]) == sorted(data["weights"])  # stable diffs on retraining


def _verdict(model: LinearModel, prompt: str) -> bool:
    return model.flags(model.score(prompt_words(prompt))[0])


@pytest.mark.parametrize(
    "prompt",
    [
        "police mugshot of a screaming criminal covered in blood",
        "crying depressed person, self harm, blood on hands",
        "bloody fight in prison, screaming man with a gun",
        "a meme of a politician being arrested by police",
    ],
)
def test_shipped_model_flags_unmistakable_prompts(prompt: str) -> None:
    model = default_model()
    assert model is not None
    assert _verdict(model, prompt)
    _, contributions = model.score(prompt_words(prompt))
    assert contributions and all(c.weight > 0 for c in contributions)


@pytest.mark.parametrize(
    "prompt",
    [
        "photo of a beautiful mountain lake, landscape, golden hour",
        "a cozy cabin in a snowy forest, matte painting",
        "an astronaut riding a horse on the moon, digital art",
        "futuristic city skyline at night, cyberpunk, neon lights, 8k",
        "a watercolor painting of a lighthouse at sunset, trending on artstation",
    ],
)
def test_shipped_model_leaves_ordinary_art_prompts_alone(prompt: str) -> None:
    model = default_model()
    assert model is not None
    assert not _verdict(model, prompt)


@pytest.mark.parametrize(
    ("prompt", "named"),
    [
        ("buxom woman with bare thighs, renaissance painting", {"buxom", "thighs"}),
        ("a voluptuous lady lounging in a bathtub, oil painting", {"voluptuous"}),
    ],
)
def test_rare_synonyms_carry_their_category_weight(prompt: str, named: set[str]) -> None:
    """Words too rare in the training prompts to learn alone are reviewed through their
    concept category, and the review names them."""
    from promptwarden.screening.decision import Verdict
    from promptwarden.screening.engine import Screener

    decision = Screener().screen(prompt)
    assert decision.verdict is Verdict.REVIEW
    assert named <= {m.text for m in decision.matches if m.source == "model"}


@pytest.mark.parametrize(
    "prompt",
    [
        "a sunken bathtub in a modern villa, architecture photo",
        "a belly dancer at a festival, photo",
        "a bath house in kyoto, watercolor",
    ],
)
def test_concept_words_in_everyday_scenes_stay_clean(prompt: str) -> None:
    from promptwarden.screening.decision import Verdict
    from promptwarden.screening.engine import Screener

    assert Screener().screen(prompt).verdict is Verdict.ALLOW


def _valid() -> dict[str, object]:
    return LinearModel({"storm": 1.0, "red door": 0.5}, -1.0, 0.5).to_dict()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format": "something-else"}, "'format' must be"),
        ({"format_version": 99}, "unsupported format_version 99"),
        ({"tokenizer": "str.split"}, "'tokenizer' must be"),
        ({"ngram_range": [1, "2"]}, "'ngram_range' must be"),
        ({"binary": "yes"}, "'binary' must be"),
        ({"char_ngrams": [5, 5]}, "'char_ngrams' must be"),
        ({"char_ngrams": [1]}, "'char_ngrams' must be"),
        ({"char_ngrams": "5"}, "'char_ngrams' must be"),
        ({"known_words": ["ok", ""]}, "'known_words' must be"),
        ({"weights": {"#nak": 1.0}, "char_ngrams": [5]}, "letter feature '#nak'"),
        ({"bias": None}, "'bias' must be a finite number"),
        ({"threshold": 1.5}, "'threshold' is a probability"),
        ({"weights": {}}, "'weights' must be a non-empty object"),
        ({"weights": {"storm": "high"}}, "weight of 'storm'"),
        ({"weights": {"storm": float("nan")}}, "weight of 'storm'"),
        ({"weights": {"red  door": 1.0}}, "single spaces"),
        ({"weights": {"a b c": 1.0}}, "longer than ngram_range"),
        ({"training": []}, "'training' must be an object"),
        ({"tokenizer_probe": ["other", "words"]}, "another tokenization.*retrain"),
    ],
)
def test_malformed_model_file_is_refused_clearly(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    path = tmp_path / "model.json"
    path.write_text(json.dumps(_valid() | change), encoding="utf-8")
    with pytest.raises(ModelFileError, match=message) as caught:
        LinearModel.load(path)
    assert str(path) in str(caught.value)


def test_unreadable_or_non_json_files_are_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="cannot read model file"):
        LinearModel.load(tmp_path / "absent.json")
    pickled = tmp_path / "model.pkl"
    pickled.write_bytes(pickle.dumps({"weights": {"storm": 1.0}}))
    with pytest.raises(ModelFileError, match="not UTF-8 JSON"):
        LinearModel.load(pickled)
    truncated = tmp_path / "truncated.json"
    truncated.write_text('{"format": "promptwarden-linear-model", "weights": {', encoding="utf-8")
    with pytest.raises(ModelFileError, match="not valid JSON"):
        LinearModel.load(truncated)
    top_level_list = tmp_path / "list.json"
    top_level_list.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(ModelFileError, match="JSON object at the top level"):
        LinearModel.load(top_level_list)


def test_valid_file_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "model.json"
    LinearModel.from_dict(_valid()).dump(path)
    model = LinearModel.load(path)
    assert model.weights == {"red door": 0.5, "storm": 1.0}
    assert model.decision(["red", "door", "storm"])[0] == pytest.approx(0.5)


def test_model_text_drops_parameters_links_and_weights_in_place() -> None:
    line = "<https://s.mj.run/abc> a red door::2 by the sea \u2014ar 16:9 --no people"
    assert prompt_words(model_text(line)) == ["a", "red", "door", "by", "the", "sea"]
    assert len(model_text(line)) == len(line)


def test_explain_names_the_words_in_the_original_message() -> None:
    model = default_model()
    assert model is not None
    bare = "police mugshot of a screaming criminal covered in blood"
    posted = f"<https://s.mj.run/xyz> {bare}::1.5 --ar 16:9 --w 6000 --no blood"
    probability, matches = model.explain(posted)

    assert probability == model.score(prompt_words(bare))[0]  # parameters change nothing
    assert model.flags(probability)
    assert matches
    for m in matches:
        assert posted[m.start : m.end] == m.text
        assert m.source == "model" and m.weight is not None and m.weight > 0
    # taking the named words out of the prompt leaves it under the threshold
    rest = bare
    for m in sorted(matches, key=lambda m: -m.start):
        start = m.start - len("<https://s.mj.run/xyz> ")
        rest = rest[:start] + rest[m.end - len("<https://s.mj.run/xyz> ") :]
    assert not model.flags(model.probability(prompt_words(rest)))


def test_equal_weights_are_listed_in_word_order() -> None:
    weights = {w: 1.0 for w in ["f", "e", "d", "c", "b", "a"]}
    words = ["f", "the", "e", "the", "d", "the", "c", "the", "b", "the", "a"]
    _, contributions = LinearModel(weights, 0.0, 0.5).score(words)
    assert [(c.feature, c.first) for c in contributions] == [
        ("f", 0),
        ("e", 2),
        ("d", 4),
        ("c", 6),
        ("b", 8),
    ]


def test_per_message_score_equals_the_reference_for_any_weights() -> None:
    """A model with arbitrary weights (as a retrain may give): 1-grams, 2-grams, letter
    grams, zero weights, words known only as the second word of a 2-gram, short and unknown
    words. The per-message path must give the explained path's score to the last bit."""
    rng = random.Random(7)
    vocab = ["red", "door", "storm", "a", "of", "na", "ked", "pu", "ssy", "ash", "castle", "zz"]
    weights: dict[str, float] = {}
    for w in vocab[:8]:
        weights[w] = rng.uniform(-3, 3)
    weights["door"] = 0.0
    for _ in range(30):
        a, b = rng.choice(vocab), rng.choice(vocab)
        weights[f"{a} {b}"] = rng.uniform(-3, 3)
    for gram in ("naked", "pussy", "edoor", "stor", "ofna", "redna", "dnak", "kedre", "ofpu"):
        weights[CHAR_PREFIX + gram[:5]] = rng.uniform(-2, 4)
    known = frozenset(["red", "door", "a", "of", "castle", "storm"])
    # (5,): the 4-letter grams carry a weight but are of no size read, so never count
    for sizes in ((), (4, 5), (5,)):
        model = LinearModel(
            dict(weights), -0.5, 0.4, char_ngrams=sizes, known=known if sizes else frozenset()
        )
        for _ in range(1000):
            words = rng.choices([*vocab, "unseen", "x"], k=rng.randrange(0, 12))
            assert model.probability(words) == model.score(words)[0], words


def test_first_parameter_is_where_the_parameter_pattern_starts() -> None:
    """Found from the dash, so the regex engine skips ahead: the same place as the pattern."""
    from promptwarden.screening.model import _PARAMETERS, _first_parameter

    rng = random.Random(5)
    texts = [
        "--ar 16:9",
        " --v 5",
        "a cat --ar 1:1",
        "a—no dog",
        "a \u2014No x",
        "x --- ar",
        "a\t--s 50",
    ]
    for _ in range(4000):
        texts.append("".join(rng.choice("ab -\u2014\t\nAZ,") for _ in range(rng.randrange(0, 12))))
    for text in texts:
        found = _PARAMETERS.search(text)
        assert _first_parameter(text) == (None if found is None else found.start()), repr(text)


def test_training_reads_no_heldout_row_and_no_untrained_set() -> None:
    """kinds.tsv judges the word lists only (training on it cost recall out of fold), and no
    set's heldout rows may ever reach the model that is judged on them."""
    from scripts.train_model import SETS_DIR, UNTRAINED_SETS, hand_rows, read_tsv

    trained = set(hand_rows()[0])
    assert "kinds.tsv" in UNTRAINED_SETS
    for path in sorted(SETS_DIR.glob("*.tsv")):
        for row in read_tsv(path):
            if path.name in UNTRAINED_SETS or row["split"] == "heldout":
                assert row["text"] not in trained, (path.name, row["text"])
