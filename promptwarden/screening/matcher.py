"""One Aho-Corasick automaton per guild configuration, with whole-word checks and word forms.

Terms are stored as the normalized keys of themselves and of their common word forms, so
matching is a single C-level pass over the normalized text plus a cheap boundary check per hit,
never a loop over terms. Allow-list phrases live in the same automaton and suppress any match
whose span they cover ("pussy willow" covers "pussy").
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import ahocorasick

from .decision import Severity
from .normalize import WORD_CHARS, Normalized, candidates, doubled, normalize, squeeze

ALLOW = "allow"


@dataclass(frozen=True, slots=True)
class Term:
    """A guideline entry. `*` at either end is an AutoMod-style wildcard; otherwise whole words."""

    term: str
    category: str
    severity: Severity
    source: str
    note: str = ""


@dataclass(frozen=True, slots=True)
class Hit:
    term: Term
    start: int  # span in the original text
    end: int


@dataclass(frozen=True, slots=True)
class _Key:
    term: Term
    lead: bool  # may start inside a word
    trail: bool  # may end inside a word
    derived: bool  # a generated word form, not the term as written


_VOWELS = set("aeiou")


def word_forms(word: str) -> set[str]:
    """Common inflections of an English word (hack -> hacks, hacking, hacked, hacker)."""
    if len(word) < 3 or not word.isalpha():
        return set()
    forms = {word + s for s in ("s", "ed", "ing", "er", "ers", "ings")}
    if word.endswith(("s", "x", "z", "ch", "sh", "o")):  # not "spic" -> "spices"
        forms.add(word + "es")
    if word.endswith("e"):
        stem = word[:-1]
        forms |= {word + "d", word + "r", word + "rs", stem + "ing", stem + "ings"}
    if word.endswith("y") and word[-2] not in _VOWELS:
        forms |= {word[:-1] + "ies", word[:-1] + "ied"}
    if (
        word[-1] not in _VOWELS | {"w", "x", "y"}
        and word[-2] in _VOWELS
        and word[-3] not in _VOWELS
    ):
        forms |= {word + word[-1] + s for s in ("ing", "ed", "er", "ers")}
    forms.discard(word)
    return forms


_SPACES = re.compile(r"\s+")


def term_keys(term: str) -> tuple[list[str], bool, bool]:
    """Normalized automaton keys for a term as written, and its wildcard flags."""
    raw = term.strip()
    lead = raw.startswith("*")
    trail = raw.endswith("*") and len(raw) > 1
    core = _SPACES.sub(" ", normalize(raw.strip("*")).text.strip())
    if not core:
        return [], lead, trail
    keys = [core]
    if " " in core:
        keys += [core.replace(" ", "-"), core.replace(" ", "")]
    return keys, lead, trail


class Matcher:
    def __init__(self, terms: Iterable[Term]) -> None:
        table: dict[str, list[_Key]] = {}
        explicit: set[str] = set()
        derived: list[tuple[str, _Key]] = []
        for term in terms:
            keys, lead, trail = term_keys(term.term)
            for key in keys:
                table.setdefault(key, []).append(_Key(term, lead, trail, False))
                explicit.add(key)
                if (
                    term.severity >= Severity.MEDIUM
                    and term.category != ALLOW
                    and squeeze(key) == key
                    and len(key) >= 4
                    and key.isalpha()
                    and not (lead or trail)
                ):
                    derived += [(v, _Key(term, lead, trail, True)) for v in doubled(key)]
            if keys and not trail and term.category != ALLOW:  # allow phrases as written
                head, _, last = keys[0].rpartition(" ")
                for form in word_forms(last):
                    full = f"{head} {form}" if head else form
                    derived.append((full, _Key(term, lead, False, True)))
        for key, k in derived:
            if key not in explicit:  # a term as written beats another's word form
                table.setdefault(key, []).append(k)
        self.size = len(table)
        self._automaton = ahocorasick.Automaton()
        for key, ks in table.items():
            self._automaton.add_word(key, (len(key), tuple(ks)))
        if self.size:
            self._automaton.make_automaton()

    def _scan(self, text: str, *, substring: bool = False) -> list[tuple[int, int, _Key]]:
        """Hits [start, end) in `text` that respect word boundaries."""
        out: list[tuple[int, int, _Key]] = []
        if not self.size:
            return out
        n = len(text)
        for end, (length, keys) in self._automaton.iter(text):
            start = end - length + 1
            stop = end + 1
            left = start == 0 or text[start - 1] not in WORD_CHARS
            right = stop == n or text[stop] not in WORD_CHARS
            for k in keys:
                if substring:
                    if length < 3:
                        continue
                elif not ((left or k.lead) and (right or k.trail)):
                    continue
                out.append((start, stop, k))
        return out

    def find(self, norm: Normalized) -> list[Hit]:
        """Every term hit in `norm`, allow-listed spans removed, spans in the original text."""
        found: dict[tuple[str, int, int], Hit] = {}
        allows: list[tuple[int, int]] = []
        text = norm.text

        def add(start: int, end: int, key: _Key) -> None:
            ostart, oend = norm.span(start, end)
            if key.term.category == ALLOW:
                allows.append((ostart, oend))
                return
            ident = (key.term.category, ostart, oend)  # one hit per category and span
            old = found.get(ident)
            if old is None or key.term.severity > old.term.severity:
                found[ident] = Hit(key.term, ostart, oend)

        for start, end, key in self._scan(text):
            add(start, end, key)
        for cand in candidates(text):
            pos = cand.positions
            if pos is None:
                for s, e, key in self._scan(cand.text):
                    add(s, e, key)
                continue
            for s, e, key in self._scan(cand.text, substring=cand.substring):
                add(pos[s], pos[e - 1] + 1, key)
        hits = sorted(found.values(), key=lambda h: (h.start, h.end, h.term.term))
        if allows:
            hits = [h for h in hits if not any(a <= h.start and h.end <= b for a, b in allows)]
        return hits
