"""One Aho-Corasick automaton per guild configuration, with whole-word checks and word forms.

Terms are stored as the normalized keys of themselves and of their common word forms, so
matching is a single C-level pass over the normalized text plus a cheap boundary check per hit,
never a loop over terms. Allow-list phrases live in the same automaton and suppress any match
whose span they cover ("pussy willow" covers "pussy").
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import ahocorasick

from .decision import Severity
from .normalize import (
    WORD_CHARS,
    Candidate,
    Normalized,
    Shifted,
    candidates,
    doubled,
    normalize,
    squeeze,
)

ALLOW = "allow"
KEEP_PER_ZONE = 5  # places reported per term and zone (see `Matcher.find`)
IGNORED_ZONE = "-"
# Words whose doubled-letter forms become keys: about n*n/2 keys each, so long words are left
# to the repeated-letter reading of `candidates` (three or more of a letter).
MIN_DOUBLED = 4
MAX_DOUBLED = 12


@dataclass(frozen=True, slots=True)
class Term:
    """A guideline entry. `*` at either end is an AutoMod-style wildcard; otherwise whole words."""

    term: str
    category: str
    severity: Severity
    source: str
    note: str = ""
    language: str = ""  # ISO 639-1 code of a language file's terms; "" for English and custom


@dataclass(frozen=True, slots=True)
class Hit:
    term: Term
    start: int  # span in the original text
    end: int


@dataclass(slots=True, eq=False)  # hashed by identity: one per automaton entry
class _Key:
    term: Term
    lead: bool  # may start inside a word
    trail: bool  # may end inside a word
    derived: bool  # a generated word form, not the term as written
    inside_only: bool = False  # a wildcard twin of a whole-word key: fires only inside words


_VOWELS = set("aeiou")
# Kana, CJK ideographs and Hangul: no spaces between words, so no word boundaries either
_CJK = re.compile(
    "[\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]"
)


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
                # scripts written without spaces match anywhere, even beside "8k" or a digit
                lead_k = lead or _CJK.match(key) is not None
                trail_k = trail or _CJK.match(key[-1]) is not None
                table.setdefault(key, []).append(_Key(term, lead_k, trail_k, False))
                explicit.add(key)
            if term.language:  # English suffixes and doubled letters read other languages wrong
                continue
            # doubled letters ("nnaked") for single words only: a phrase joined without
            # spaces would add hundreds of long keys per term and read no likelier evasion
            if (
                len(keys) == 1
                and term.severity >= Severity.MEDIUM
                and term.category != ALLOW
                and squeeze(keys[0]) == keys[0]
                and MIN_DOUBLED <= len(keys[0]) <= MAX_DOUBLED
                and keys[0].isalpha()
                and not (lead or trail)
            ):
                derived += [(v, _Key(term, lead, trail, True)) for v in doubled(keys[0])]
            if keys and not trail and term.category != ALLOW:  # allow phrases as written
                head, _, last = keys[0].rpartition(" ")
                for form in word_forms(last):
                    full = f"{head} {form}" if head else form
                    derived.append((full, _Key(term, lead, False, True)))
        for key, k in derived:
            if key not in explicit:  # a term as written beats another's word form
                table.setdefault(key, []).append(k)
        for ks in table.values():
            # "nude*" beside "nude": at a whole word only the plain one reports, so a
            # message repeating the word does not pay for every hit twice
            plain = {(k.term.category, k.term.severity) for k in ks if not (k.lead or k.trail)}
            for k in ks:
                if (k.lead or k.trail) and (k.term.category, k.term.severity) in plain:
                    k.inside_only = True
        self.size = len(table)
        self._longest = max(map(len, table), default=0)
        # Keys in kana, ideographs or Hangul live in an automaton of their own, read only
        # when the text has such characters: in one automaton with the Latin keys they make
        # every scan of a Latin prompt over twice as slow.
        latin = ahocorasick.Automaton()
        cjk = ahocorasick.Automaton()
        for key, ks in table.items():
            (cjk if _CJK.search(key) else latin).add_word(key, (len(key), tuple(ks)))
        self._automata: list[tuple[Any, bool]] = []
        for automaton, needs_cjk in ((latin, False), (cjk, True)):
            if len(automaton):
                automaton.make_automaton()
                self._automata.append((automaton, needs_cjk))

    @property
    def longest(self) -> int:
        """The longest key: a hit never spans more normalized characters than this."""
        return self._longest

    def _scan(
        self,
        text: str,
        *,
        substring: bool = False,
        changed: Shifted | None = None,
        shortest: int = 3,
    ) -> list[tuple[int, int, _Key]]:
        """Hits [start, end) in `text` that respect word boundaries.

        With `changed`, `text` is a collapsed reading and only hits over a cut are kept:
        the rest read as in the plain text, which has been scanned already.
        """
        out: list[tuple[int, int, _Key]] = []
        if not self.size:
            return out
        n = len(text)
        cuts = changed.cuts if changed is not None else None
        keep = changed.keep if changed is not None else 0
        for automaton, needs_cjk in self._automata:
            if needs_cjk and (text.isascii() or _CJK.search(text) is None):
                continue
            q = 0  # cuts whose kept letters start before the hit's end (ends only grow)
            for end, (length, keys) in automaton.iter(text):
                start = end - length + 1
                stop = end + 1
                if cuts is not None:
                    while q < len(cuts) and cuts[q] - keep < stop:
                        q += 1
                    if not q or cuts[q - 1] <= start:
                        continue
                if substring:
                    if length >= shortest:
                        out += [(start, stop, k) for k in keys]
                    continue
                left = start == 0 or text[start - 1] not in WORD_CHARS
                right = stop == n or text[stop] not in WORD_CHARS
                whole = left and right
                for k in keys:
                    if (left or k.lead) and (right or k.trail) and not (whole and k.inside_only):
                        out.append((start, stop, k))
        return out

    def raw(self, text: str, readings: Iterable[Candidate]) -> list[tuple[int, int, _Key]]:
        """Hits [start, end) in normalized `text` and in its alternative `readings`."""
        raw: list[tuple[int, int, _Key]] = self._scan(text)
        if not self.size:
            return raw
        for cand in readings:
            pos = cand.positions
            if pos is None:
                found_ = self._scan(cand.text)
                accept = cand.accept
                raw += found_ if accept is None else [h for h in found_ if accept(h[0], h[1])]
            elif isinstance(pos, Shifted):
                raw += [
                    (pos[s], pos[e - 1] + 1, key)
                    for s, e, key in self._scan(cand.text, changed=pos)
                ]
            else:
                hits = self._scan(cand.text, substring=cand.substring, shortest=cand.shortest)
                raw += [(pos[s], pos[e - 1] + 1, key) for s, e, key in hits]
        return raw

    def find(
        self,
        norm: Normalized,
        zones: str | None = None,
        *,
        also: Matcher | None = None,
        languages: frozenset[str] | None = None,
    ) -> list[Hit]:
        """Every term hit in `norm`, allow-listed spans removed, spans in the original text.

        `zones[i]` names the zone of normalized index `i` (IGNORED_ZONE: hits starting
        there are dropped). Only the first KEEP_PER_ZONE places of each term in each zone
        are reported: one is enough for the decision and a few explain it, while a message
        repeating a word a thousand times would otherwise cost a thousand span lookups.
        `also` is a second automaton read over the same text (a guild's own terms beside
        the shared guidelines); allow phrases of either cover hits of both. `languages`,
        when given, keeps only terms of those languages (terms without one always count).
        """
        text = norm.text
        # hits starting in the ignored tail (parameters) are dropped below: not read there
        tail = None if zones is None else len(zones.rstrip(IGNORED_ZONE))
        readings: Iterable[Candidate] = candidates(text, tail)
        if also is not None and also.size:
            readings = list(readings)
            raw = self.raw(text, readings) + also.raw(text, readings)
        else:
            raw = self.raw(text, readings)
        if not raw:
            return []  # most prompts
        allows = [(s, e) for s, e, key in raw if key.term.category == ALLOW]
        allowed = _Cover(allows) if allows else None
        found: dict[tuple[str, int, int], Hit] = {}
        # terms by identity: hashing a frozen dataclass per hit costs more than the rest
        counts: dict[tuple[int, str], int] = {}
        seen: set[tuple[int, int, int]] = set()
        for start, end, key in raw:
            term = key.term
            if term.category == ALLOW:
                continue
            if languages is not None and term.language and term.language not in languages:
                continue
            zone = zones[start] if zones is not None else ""
            if zone == IGNORED_ZONE:
                continue
            counted = (id(term), zone)
            n = counts.get(counted, 0)
            if n >= KEEP_PER_ZONE or (ident := (id(term), start, end)) in seen:
                continue
            if allowed is not None and allowed.covers(start, end):
                continue
            counts[counted] = n + 1
            seen.add(ident)
            ostart, oend = norm.span(start, end)
            place = (term.category, ostart, oend)  # one hit per category and span
            old = found.get(place)
            if old is None or _rank(term) > _rank(old.term):
                found[place] = Hit(term, ostart, oend)
        return sorted(found.values(), key=lambda h: (h.start, h.end, h.term.term))


def _rank(term: Term) -> tuple[int, bool, bool]:
    """Which of two terms on one span explains it: the graver one, then an English term,
    then one written without wildcards ("nude" over "nude*", "sex" over German "Sex")."""
    return term.severity, not term.language, "*" not in term.term


class _Cover:
    """Allow-listed spans, asked whether they cover a span, in O(log n) per question.

    Checked before the per-term cap of `Matcher.find`, so allowed places ("pussy willow")
    never use up the places that would report a real hit.
    """

    def __init__(self, spans: list[tuple[int, int]]) -> None:
        spans.sort()
        self._starts = [a for a, _ in spans]
        self._reach: list[int] = []  # furthest end among spans starting at or before each
        furthest = -1
        for _, b in spans:
            furthest = max(furthest, b)
            self._reach.append(furthest)

    def covers(self, start: int, end: int) -> bool:
        if not self._starts:
            return False
        i = bisect_right(self._starts, start) - 1
        return i >= 0 and self._reach[i] >= end
