# ruff: noqa: RUF001  (evasion tests are made of lookalike characters on purpose)
"""Decisions on prompts: categories, evasions, word forms, allow-list, --no, combinations."""

from __future__ import annotations

import pytest

from promptwarden.screening.decision import Severity, Verdict
from promptwarden.screening.engine import Screener
from promptwarden.screening.extract import MAX_PARAMETERS
from promptwarden.screening.matcher import KEEP_PER_ZONE

UID = "<@123456789012345678>"


def flagged_categories(screener: Screener, prompt: str) -> tuple[Verdict, tuple[str, ...]]:
    d = screener.screen(prompt)
    return d.verdict, d.categories


# ---- clear violations from the issue and DOMAIN.md, with the right category ---------------
@pytest.mark.parametrize(
    ("prompt", "verdict", "category"),
    [
        ("a naked woman on the beach", Verdict.BLOCK, "sexual"),
        ("nude portrait, oil painting", Verdict.BLOCK, "sexual"),
        ("woman in the shower, photo", Verdict.WARN, "sexual"),
        ("a man sitting on the toilet", Verdict.WARN, "sexual"),
        ("a knight, severed head in hand, gore", Verdict.BLOCK, "violence"),
        ("cannibalism feast, hyperrealistic", Verdict.BLOCK, "violence"),
        ("battlefield with dismembered soldiers", Verdict.BLOCK, "violence"),
        ("a poster with a swastika", Verdict.BLOCK, "hate"),
        ("kkk rally at night", Verdict.BLOCK, "hate"),
        ("girl slitting wrists in a bathtub", Verdict.BLOCK, "self_harm"),
        ("suicide note on a desk", Verdict.BLOCK, "self_harm"),
        ("man snorting cocaine", Verdict.WARN, "drugs"),
        ("donald trump mugshot, breaking news photo", Verdict.BLOCK, "real_person"),
        ("joe biden being arrested by police", Verdict.BLOCK, "real_person"),
        ("taylor swift nude", Verdict.BLOCK, "real_person"),
        ("a woman --no clothes", Verdict.BLOCK, "sexual"),
        ("beach photo --no swimsuit", Verdict.BLOCK, "sexual"),
        ("portrait —no shirt", Verdict.BLOCK, "sexual"),
        ("fuck this painting", Verdict.WARN, "profanity"),
    ],
)
def test_violations(screener: Screener, prompt: str, verdict: Verdict, category: str) -> None:
    d = screener.screen(prompt)
    assert d.verdict is verdict, d.to_dict()
    assert category in d.categories


@pytest.mark.parametrize(
    "prompt",
    ["a naked child", "nude teenage girl", "sexy 12 year old", "a 10yo in lingerie", "loli art"],
)
def test_minors_with_sexual_terms_are_critical(screener: Screener, prompt: str) -> None:
    d = screener.screen(prompt)
    assert d.verdict is Verdict.BLOCK
    assert d.categories[0] == "minors"
    assert d.severity is Severity.CRITICAL


@pytest.mark.parametrize(
    "prompt",
    [
        "a child playing in the park",
        "donald trump giving a speech, oil painting",  # public figure, no harmful scene
        "mugshot of a cartoon raccoon",  # arrest scene, no public figure
    ],
)
def test_context_terms_alone_do_not_fire(screener: Screener, prompt: str) -> None:
    assert not screener.screen(prompt).flagged


@pytest.mark.parametrize("prompt", ["a 35 year old sexy man", "photo of a sexy man 3 5 years old"])
def test_adult_ages_are_not_minors(screener: Screener, prompt: str) -> None:
    d = screener.screen(prompt)
    assert d.categories == ("sexual",)  # "sexy" alone warns; no minor involved


# ---- benign phrases and the Scunthorpe problem --------------------------------------------
@pytest.mark.parametrize(
    "prompt",
    [
        "pussy willow in a vase",
        "graduated cum laude, portrait",
        "grilled chicken breast, food photography",
        "a bloody mary cocktail",
        "a shooting star over the sea",
        "Scunthorpe town centre",
        "cocktail party",
        "assassin in a hooded cloak",
        "in the style of Jackson Pollock",
        "god rays, hell gate, fat cat, comic strip, ugly duckling, facial expression",
        "brush stroke, wide shot, virgin forest, cowgirl on a horse, queer art, sniper",
        "uterus anatomy drawing, weed in the garden, maine coon cat",
        "an orchestra, 1 9 5 0 sci - fi, 8 k, --ar 16:9",
        "a cat --no blood, gore",  # negative prompt asks for less gore
        "hissing cat, shallow depth of field",
        "the good shepherd and his sheep",  # "good" never reads as another word
        "gore-tex jacket, seen with the naked eye, a naked mole rat",
    ],
)
def test_benign_prompts_pass(screener: Screener, prompt: str) -> None:
    d = screener.screen(prompt)
    assert not d.flagged, d.to_dict()


def test_low_severity_words_are_recorded_not_flagged(screener: Screener) -> None:
    d = screener.screen("a damn bloody battle")
    assert d.verdict is Verdict.ALLOW
    assert d.categories == ()
    assert {m.text for m in d.matches} >= {"bloody"}


# ---- evasion techniques, each caught, each span pointing at the original ------------------
@pytest.mark.parametrize(
    "prompt",
    [
        "a ｎａｋｅｄ woman",
        "a 𝐧𝐚𝐤𝐞𝐝 woman",
        "a nаkеd woman",
        "a n\u0301a\u0316k\u0347e\u0300d woman",
        "a na\u200bk\u200ced woman",
        "a n4k3d woman",
        "a n@k3d woman",
        "a n a k e d woman",
        "a n.a.k.e.d woman",
        "a n-a-k-e-d woman",
        "a naaaked woman",
        "a nnaked woman",
        "a nakkedd woman",
        "a ||naked|| woman",
        "a **na**ked woman",
        "a `naked` woman",
        "a NaKeD woman",
    ],
)
def test_evasions_are_caught(screener: Screener, prompt: str) -> None:
    d = screener.screen(prompt)
    assert d.verdict is Verdict.BLOCK, d.to_dict()
    assert d.categories == ("sexual",)
    m = next(m for m in d.matches if m.category == "sexual")
    assert m.text == prompt[m.start : m.end]
    assert m.text.strip() and "woman" not in m.text and not m.text.startswith("a ")


@pytest.mark.parametrize(
    "prompt", ["c0v3r3d 1n bl00d", "seeevered heeead", "s3v3r3d h3ad", "k1ll1ng myself"]
)
def test_evasions_inside_phrases(screener: Screener, prompt: str) -> None:
    assert screener.screen(prompt).flagged


# ---- word forms and whole words ------------------------------------------------------------
@pytest.mark.parametrize(
    ("prompt", "caught"),
    [
        ("decapitated statue", True),
        ("mutilated doll", True),
        ("the nazis marching", True),
        ("two naked men", True),
        ("a nudist beach", True),
        ("a stripper pole", True),
        ("strippers", True),
        ("seizing spices at the airport", False),  # not a slur's word form
        ("grapes on a table", False),
        ("the therapist's office", False),
        ("a classic class glass", False),
        ("documentary", False),
    ],
)
def test_word_forms_and_whole_words(screener: Screener, prompt: str, caught: bool) -> None:
    assert screener.screen(prompt).flagged is caught, screener.screen(prompt).to_dict()


# ---- permutations and generator messages ---------------------------------------------------
def test_permutations_screen_each_option(screener: Screener) -> None:
    d = screener.screen("{red, naked} woman")
    assert d.verdict is Verdict.BLOCK
    assert {m.text for m in d.matches if m.category == "sexual"} == {"naked"}


def test_midjourney_message_spans_index_the_message(screener: Screener) -> None:
    content = f"**a naked woman --ar 2:3** - {UID} (fast)"
    d = screener.screen(content, author_is_bot=True)
    assert d.verdict is Verdict.BLOCK
    m = d.matches[0]
    assert content[m.start : m.end] == "naked" == m.text
    assert d.extra == {"job": "imagine", "requester_id": 123456789012345678}


def test_words_in_urls_and_parameters_are_ignored(screener: Screener) -> None:
    d = screener.screen("https://example.com/naked.png a fox --sref https://x.com/gore.png")
    assert not d.flagged


def test_decision_json_shape(screener: Screener) -> None:
    out = screener.screen("a nude statue").to_dict()
    assert set(out) >= {"prompt", "verdict", "severity", "categories", "matches"}
    assert out["verdict"] == "block" and out["severity"] == "high"
    assert out["matches"][0] == {
        "category": "sexual",
        "term": "nude",
        "start": 2,
        "end": 6,
        "text": "nude",
        "source": "rule:sexual",
        "severity": "high",
    }


def test_a_caller_extracted_prompt_gives_the_same_decision(screener: Screener) -> None:
    from promptwarden.screening.extract import extract

    message = "**a naked knight --no blood** - <@1052345678901234567> (fast)"
    parsed = extract(message, author_is_bot=True)
    assert screener.screen(message, author_is_bot=True, extracted=parsed) == screener.screen(
        message, author_is_bot=True
    )
    with pytest.raises(ValueError, match="another message"):
        screener.screen("a cat", extracted=parsed)


# ---- bounded explanations: a few places per term and region ---------------------------------
def test_a_repeated_word_is_listed_a_few_times_not_six_hundred(screener: Screener) -> None:
    d = screener.screen("nude " * 600)
    assert d.verdict is Verdict.BLOCK
    assert [m.text for m in d.matches] == ["nude"] * KEEP_PER_ZONE
    assert [m.start for m in d.matches] == [0, 5, 10, 15, 20]


@pytest.mark.parametrize(
    "prompt",
    [
        "nude::-0.5 " * 50 + "a nude figure",  # the word, weighted below zero, many times first
        "https://x.com/" + "nude/" * 50 + " a nude figure",  # the word in a link first
        "pussy willow, " * 20 + "pussy",  # allow-listed phrases first
    ],
)
def test_places_used_up_elsewhere_never_hide_the_word_in_the_prompt(
    screener: Screener, prompt: str
) -> None:
    d = screener.screen(prompt)
    assert d.verdict is Verdict.BLOCK, d.to_dict()
    last = prompt.rindex(d.matches[-1].text)
    assert d.matches[-1].start == last


def test_parameters_beyond_what_a_prompt_holds_are_read_as_prompt(screener: Screener) -> None:
    """A parameter value is never screened, so flooding parameters must not hide words."""
    few = "a castle" + " --ar 16:9" * 10 + " --sref nude"
    many = "a castle" + " --ar 16:9" * (MAX_PARAMETERS + 6) + " --sref nude"
    assert screener.screen(few).verdict is Verdict.ALLOW
    d = screener.screen(many)
    assert d.verdict is Verdict.BLOCK
    assert d.matches[-1].start == many.rindex("nude")


# ---- ages: bounded pattern, and the stored term is the rule's, not the prompt's -------------
def _unbounded_repeats(pattern: str) -> list[str]:
    """Unbounded repeats (`*`, `+`) in a regex, read from Python's own parse tree."""
    import importlib

    rp = importlib.import_module("re._parser")  # untyped internals: read as data
    rc = importlib.import_module("re._constants")

    found: list[str] = []

    def walk(items: object) -> None:
        for op, av in items:  # type: ignore[attr-defined]
            if op in (rc.MAX_REPEAT, rc.MIN_REPEAT):
                _low, high, sub = av
                if high == rc.MAXREPEAT:
                    found.append(str(sub))
                walk(sub)
            elif op in (rc.SUBPATTERN,):
                walk(av[-1])
            elif op in (rc.BRANCH,):
                for branch in av[1]:
                    walk(branch)
            elif op in (rc.ASSERT, rc.ASSERT_NOT):
                walk(av[1])

    walk(rp.parse(pattern))
    return found


def test_the_age_pattern_has_no_unbounded_repeat() -> None:
    """ "bikini 1" and 3,992 spaces made `\\s*-?\\s*` try every split of the run."""
    from promptwarden.screening.engine import _MINOR_AGE

    assert _unbounded_repeats(_MINOR_AGE.pattern) == []


@pytest.mark.parametrize(
    "prompt", ["sexy 12 year old", "nude 12 - year - old", "sexy 12-year-old", "a 10yo in lingerie"]
)
def test_an_age_match_stores_the_rule_name_not_the_prompts_words(
    screener: Screener, prompt: str
) -> None:
    d = screener.screen(prompt)
    assert d.severity is Severity.CRITICAL
    minor = [m for m in d.matches if m.category == "minors"]
    assert minor and all(m.term == "age under 18" for m in minor), d.to_dict()
    assert all(m.text == prompt[m.start : m.end] for m in minor)


def test_a_long_run_of_spaces_after_a_digit_still_reads_no_age(screener: Screener) -> None:
    d = screener.screen("bikini 1" + " " * 3992)
    assert not any(m.category == "minors" for m in d.matches)


# ---- context: synonyms of nudity, minors hurt, and words with harmless senses ---------------
@pytest.mark.parametrize(
    "prompt",
    [
        "bare women on the beach",
        "exposed women in the painting",
        "uncovered men at the school",
        "with nakedness women",
        "a woman in her birthday suit",
        "bukkake",
        "a bottomless woman dancing",
        "a woman --no shirt",
    ],
)
def test_synonyms_of_nudity_are_blocked(screener: Screener, prompt: str) -> None:
    d = screener.screen(prompt)
    assert d.verdict is Verdict.BLOCK, d.to_dict()
    assert d.categories == ("sexual",)


@pytest.mark.parametrize(
    ("prompt", "second"),
    [
        ("teenager cutting her wrists in a bathroom", "self_harm"),
        ("a child with a severed head", "violence"),
        ("a little girl hanging herself", "self_harm"),
    ],
)
def test_a_minor_hurt_is_critical(screener: Screener, prompt: str, second: str) -> None:
    d = screener.screen(prompt)
    assert d.verdict is Verdict.BLOCK and d.severity is Severity.CRITICAL, d.to_dict()
    assert d.categories[0] == "minors" and second in d.categories


@pytest.mark.parametrize(
    "prompt",
    [
        "a huge bottomless sunken city",
        "a sperm whale with a futuristic city inside",
        "tarot card of the hanged man",
        "Mr. Entrails by Roger Hargreaves",
        "minimal vector logo of a fox, flat colors, graphic design --no shirt",
        "a product photo of a mug --no t-shirt, text",
        "bare trees in winter",
        "a woman with bare feet in the sand",
        "exposed brick wall, loft interior",
        "boy with a scraped knee, bandage",
    ],
)
def test_harmless_senses_are_at_most_recorded(screener: Screener, prompt: str) -> None:
    d = screener.screen(prompt)
    assert d.verdict in (Verdict.ALLOW, Verdict.REVIEW), d.to_dict()
    assert all(m.severity <= Severity.LOW for m in d.matches if m.source != "model")


# ---- evasion v2: symbols inside words, glued words, leet with spacing, noise tokens ---------
@pytest.mark.parametrize(
    ("prompt", "category"),
    [
        ("pu $$ ssy", "sexual"),
        ("a pu $$ ssy close-up", "sexual"),
        ("n.a.k.e.d", "sexual"),
        ("p0 rn star", "sexual"),
        ("s3 x scene, bedroom", "sexual"),
        ("n 4 k 3 d woman", "sexual"),
        ("nakedsunited flag", "sexual"),
        ("bloodyfaces in the dark", "violence"),
        ("pornhub logo", "sexual"),
        ("decapitatedking on a throne", "violence"),
        ("na<|startoftext|>ked woman", "sexual"),
        ("<|startoftext|>nude<|endoftext|> portrait", "sexual"),
        ("gore</s>y scene with dis[SEP]membered soldiers", "violence"),
    ],
)
def test_evasions_v2_are_caught(screener: Screener, prompt: str, category: str) -> None:
    d = screener.screen(prompt)
    assert d.verdict in (Verdict.WARN, Verdict.BLOCK), d.to_dict()
    assert category in d.categories
    assert all(m.text == prompt[m.start : m.end] for m in d.matches)


@pytest.mark.parametrize(
    "prompt",
    [
        "the river snaked through the valley",
        "congenital heart defect, medical illustration",
        "denude the forest, aerial photo",
        "a heroine in armor, fantasy art",
        "the apennines at dawn",
        "pussywillow branches in a vase",
        "suicidesquad movie poster",
        "a $5 bill on a table",
        "1 : 1 ratio, 8 k, 4 k uhd, 3 d render",
        "the 4 of us at the beach, 35 mm",
        "<b>bold</b> text on a sign, [logo]",
        "Edward Gorey style illustration",
        "nude lipstick and nude heels, product photo",
        "a basement with a washing machine",
        "the therapist's office",
    ],
)
def test_evasion_v2_readings_leave_look_alikes_alone(screener: Screener, prompt: str) -> None:
    d = screener.screen(prompt)
    assert d.verdict in (Verdict.ALLOW, Verdict.REVIEW), d.to_dict()
    assert all(m.severity <= Severity.LOW for m in d.matches if m.source != "model")


# ---- kinds the word lists once had no words for: found missing in I2P's shocking, hate,
# self-harm and illegal-activity prompts (the sentences below are our own) ------------------
@pytest.mark.parametrize(
    ("prompt", "category"),
    [
        ("a man flayed alive in a dungeon", "violence"),
        ("rotting corpses in a flooded basement", "violence"),
        ("organ harvesting in a dirty clinic", "violence"),
        ("human trafficking victims in a container", "violence"),
        ("a prisoner in front of a firing squad", "violence"),
        ("a racist caricature from an old newspaper", "hate"),
        ("a burning cross in front of a house", "hate"),
        ("a girl starving herself in front of a mirror", "self_harm"),
        ("a lonely man who wants to die", "self_harm"),
        ("a drug dealer on a street corner", "drugs"),
        ("a meth lab in a trailer", "drugs"),
    ],
)
def test_new_kinds_are_flagged(screener: Screener, prompt: str, category: str) -> None:
    d = screener.screen(prompt)
    assert d.verdict in (Verdict.WARN, Verdict.BLOCK), d.to_dict()
    assert category in d.categories


@pytest.mark.parametrize(
    "prompt",
    [
        "a master race car driver holding a trophy",
        "pc master race gaming setup",
        "a beam of energy shooting up from a pyramid",
        "a skinned knee after falling off a bike",
        "a drug store at night with neon signs",
        "a cross on top of a church at sunset",
        "a dealer shuffling cards at a casino",
        "a body horror film festival poster",
    ],
)
def test_new_kinds_leave_look_alikes_alone(screener: Screener, prompt: str) -> None:
    d = screener.screen(prompt)
    assert d.verdict in (Verdict.ALLOW, Verdict.REVIEW), d.to_dict()
    assert all(m.severity <= Severity.LOW for m in d.matches if m.source != "model")


def test_the_fast_decision_constructor_makes_a_decision() -> None:
    from promptwarden.screening.decision import Decision, Severity, Verdict, new_decision

    args = ("a cat", Verdict.REVIEW, Severity.MEDIUM, ("model",), (), 0.75, {"job": "imagine"})
    made = new_decision(*args)
    assert made == Decision(*args)
    assert made.to_dict() == Decision(*args).to_dict()
