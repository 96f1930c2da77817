"""Guideline data files: loading and validation.

The word lists are data, not code, so moderators can read and edit them: tab-separated files
under `data/guidelines/` with a header `term, category, severity, note`. Severity `none` marks a
*context* term that never fires alone (a minor, a public figure, an arrest scene, a person, a
clothing word under `--no`); the engine combines context terms into decisions. A clothing word
of severity `high` asks for nudity under `--no` on its own ("--no swimsuit"); one of severity
`none` only when the prompt shows a person ("--no shirt" on a logo means no shirt mock-up).
The profanity category comes from better-profanity's own word list, read as data and given
our severities.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from .decision import Severity
from .matcher import ALLOW, Term

CATEGORIES = (
    "sexual",
    "minors",
    "violence",
    "self_harm",
    "hate",
    "drugs",
    "profanity",
    "real_person",
    "personal_info",
)
# Data-only categories: context that the engine combines, and the allow-list.
CONTEXT = "context"  # fake-news / arrest / mugshot scenes for real_person
CLOTHING = "clothing"  # clothing words: under --no they ask for nudity (severity: see below)
PERSON = "person"  # words that put a person in the scene (a body that clothing is taken off)
DATA_CATEGORIES = (*CATEGORIES, CONTEXT, CLOTHING, PERSON, ALLOW)

HEADER = ("term", "category", "severity", "note")
# Languages shipped as `lang-<code>.tsv` files beside the English ones; a guild can switch
# each off (`GuildRules.languages`). English is the base and always applies.
LANGUAGES = ("ja", "zh", "ko", "es", "pt", "fr", "de", "ru")
LANGUAGE_NAMES = {
    "ja": "Japanese",
    "zh": "Chinese",
    "ko": "Korean",
    "es": "Spanish",
    "pt": "Portuguese",
    "fr": "French",
    "de": "German",
    "ru": "Russian",
}


class GuidelineError(ValueError):
    """A guideline file that cannot be used, with the file and line at fault."""


def default_dir() -> Path:
    """`data/guidelines` at the project root, or PROMPTWARDEN_GUIDELINES_DIR."""
    env = os.environ.get("PROMPTWARDEN_GUIDELINES_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "data" / "guidelines"


def file_language(name: str) -> str:
    """The language of a guideline file from its name: `lang-ja.tsv` is "ja", others ""."""
    stem = name.rsplit("/", 1)[-1].removesuffix(".tsv")
    if stem.startswith("lang-"):
        code = stem.removeprefix("lang-")
        if code not in LANGUAGES:
            raise GuidelineError(f"{name}: unknown language {code!r}; expected one of "
                                 f"{', '.join(LANGUAGES)}")  # fmt: skip
        return code
    return ""


def parse_tsv(text: str, name: str) -> list[Term]:
    """Entries of one guideline file; raises GuidelineError naming the first bad line."""
    terms: list[Term] = []
    language = file_language(name)
    lines = text.splitlines()
    header_seen = False
    for lineno, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        cells = [c.strip() for c in line.split("\t")]
        if not header_seen:
            if tuple(cells[:3]) != HEADER[:3]:
                raise GuidelineError(
                    f"{name}:{lineno}: expected a tab-separated header "
                    f"'term<TAB>category<TAB>severity<TAB>note', got {line!r}"
                )
            header_seen = True
            continue
        if len(cells) < 3 or len(cells) > 4:
            raise GuidelineError(
                f"{name}:{lineno}: expected 3 or 4 tab-separated cells, got {len(cells)}"
            )
        term, category, severity = cells[:3]
        note = cells[3] if len(cells) == 4 else ""
        if not term.strip("*").strip():
            raise GuidelineError(f"{name}:{lineno}: empty term")
        if category not in DATA_CATEGORIES:
            raise GuidelineError(
                f"{name}:{lineno}: unknown category {category!r}; "
                f"expected one of {', '.join(DATA_CATEGORIES)}"
            )
        try:
            sev = Severity.parse(severity)
        except KeyError:
            raise GuidelineError(
                f"{name}:{lineno}: unknown severity {severity!r}; "
                "expected none, low, medium, high or critical"
            ) from None
        terms.append(Term(term, category, sev, f"rule:{category}", note, language))
    if not header_seen:
        raise GuidelineError(f"{name}: no header line")
    return terms


@dataclass(frozen=True, slots=True)
class Guidelines:
    terms: tuple[Term, ...]

    def by_category(self, category: str) -> list[Term]:
        return [t for t in self.terms if t.category == category]


def profanity_words() -> list[str]:
    """better-profanity's word list, read from the installed package as data."""
    ref = resources.files("better_profanity").joinpath("profanity_wordlist.txt")
    return [w.strip() for w in ref.read_text(encoding="utf-8").splitlines() if w.strip()]


def load(directory: Path | None = None) -> Guidelines:
    """All guideline files plus better-profanity's words not already covered.

    A profanity word listed in our own files (as any category, or allow-listed) takes that
    entry instead; the rest are merely crude and get `profanity_default` severity (low).
    """
    directory = directory or default_dir()
    files = sorted(directory.glob("*.tsv"))
    if not files:
        raise GuidelineError(f"no guideline files (*.tsv) in {directory}")
    terms: list[Term] = []
    for path in files:
        terms += parse_tsv(path.read_text(encoding="utf-8"), path.name)
    covered = {t.term.lower() for t in terms}
    for word in profanity_words():
        if word.lower() not in covered:
            terms.append(Term(word, "profanity", Severity.LOW, "profanity"))
    return Guidelines(tuple(terms))


_DEFAULT_LOCK = threading.Lock()


@cache
def _load_default() -> Guidelines:
    return load()


def default_guidelines() -> Guidelines:
    """The shipped guidelines, one object per process.

    Under a lock: guilds' screeners are built at once in worker threads, and the shared
    automaton is keyed by this object's identity, so a second copy loaded in a race would
    mean a second automaton (its time and memory) per guild that raced.
    """
    with _DEFAULT_LOCK:
        return _load_default()
