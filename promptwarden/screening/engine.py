"""The screener: message in, Decision out.

Order of work: find the prompt and its regions, normalize once, run the guild's automaton,
read each hit by region (`--no` words mean the opposite), combine context terms (a minor with
anything sexual; a public figure in a sexual, violent or arrest scene), apply the guild's
severities and actions, and only when the rules found nothing to warn or block, ask the
learned tier, whose hits go to moderators for review.
"""

from __future__ import annotations

import re
import threading
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from .decision import Decision, Match, Severity, Verdict, new_decision
from .extract import ExtractedPrompt, JobKind, Region, extract
from .guidelines import CATEGORIES, CLOTHING, CONTEXT, PERSON, Guidelines, default_guidelines
from .matcher import ALLOW, IGNORED_ZONE, Hit, Matcher, Term
from .model import may_blank, model_blanks, parameters_start
from .normalize import Normalized, normalize
from .pii import PiiHit, find_pii
from .rules import CUSTOM, GuildRules
from .tokens import plain_words, word_spans


class _Contribution(Protocol):
    """What the learned tier reports per feature (promptwarden.screening.model.Contribution)."""

    @property
    def feature(self) -> str: ...
    @property
    def weight(self) -> float: ...
    @property
    def first(self) -> int: ...  # token indices into the scored words
    @property
    def last(self) -> int: ...


class _Model(Protocol):
    """The learned tier's interface (promptwarden.screening.model.LinearModel)."""

    @property
    def threshold(self) -> float: ...

    def probability(self, words: Sequence[str]) -> float: ...

    def score(self, words: Sequence[str]) -> tuple[float, Sequence[_Contribution]]: ...


def _load_model() -> _Model | None:
    try:
        from .model import default_model  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return None
    model: _Model | None = default_model()
    return model


_DEFAULT_ACTION = {
    Severity.CRITICAL: Verdict.BLOCK,
    Severity.HIGH: Verdict.BLOCK,
    Severity.MEDIUM: Verdict.WARN,
    Severity.LOW: Verdict.ALLOW,
    Severity.NONE: Verdict.ALLOW,
}
_ACTION_VERDICT = {
    "block": Verdict.BLOCK,
    "warn": Verdict.WARN,
    "review": Verdict.REVIEW,
    "remind": Verdict.REMIND,
    "allow": Verdict.ALLOW,
}
# the verdicts the learned tier may still raise to a review, as a set: `rank` is a search
_BELOW_REVIEW = frozenset(v for v in Verdict if v.rank < Verdict.REVIEW.rank)
_DIGIT = re.compile(r"[0-9]")
# "12 year old", "12yo", "12-year-old": ages under 18 are minor terms. Every gap is bounded
# (at most 3 spaces, one hyphen): two adjacent unbounded `\s*` backtrack quadratically over
# a long run of spaces after a digit.
_GAP = r"(?:\s{0,3}-)?\s{0,3}"
_MINOR_AGE = re.compile(
    rf"(?<![0-9.])(?<![0-9] )(?:[1-9]|1[0-7]){_GAP}(?:yo|y/o|yrs?|years?)(?:{_GAP}old)?(?![a-z])"
)
# The stored term of an age match: the rule's name, never the prompt's own words, which
# must not outlive the member's erasure in an incident's matches.
MINOR_AGE_TERM = "age under 18"


@dataclass(frozen=True, slots=True)
class _Found:
    """A hit read in context: the category and severity it stands for."""

    category: str
    term: str
    start: int
    end: int
    source: str
    severity: Severity


_SHARED_LOCK = threading.Lock()
# id(guidelines) -> (guidelines, its automaton, the automaton of its person words)
_SHARED: dict[int, tuple[Guidelines, Matcher, Matcher]] = {}
_SHARED_MAX = 4  # guideline sets kept compiled (the shipped one, plus tests' own)


def shared_matchers(guidelines: Guidelines) -> tuple[Matcher, Matcher]:
    """The automata for a set of guidelines, shared by every guild: all terms but the
    person words, and the person words alone.

    Person words ("woman", "portrait") are in most prompts and matter only beside a
    clothing word under `--no`, so they are read only then instead of on every prompt.
    Keyed by identity (the shipped set is loaded once), bounded, and built once even when
    several threads ask at the same time.
    """
    entry = _SHARED.get(id(guidelines))
    if entry is not None and entry[0] is guidelines:
        return entry[1], entry[2]
    with _SHARED_LOCK:
        entry = _SHARED.get(id(guidelines))
        if entry is not None and entry[0] is guidelines:
            return entry[1], entry[2]
        matcher = Matcher(t for t in guidelines.terms if t.category != PERSON)
        persons = Matcher(guidelines.by_category(PERSON))
        while len(_SHARED) >= _SHARED_MAX:
            del _SHARED[next(iter(_SHARED))]
        _SHARED[id(guidelines)] = (guidelines, matcher, persons)
        return matcher, persons


def shared_matcher(guidelines: Guidelines) -> Matcher:
    """The shared automaton of every term but the person words (see `shared_matchers`)."""
    return shared_matchers(guidelines)[0]


def guild_matcher(rules: GuildRules) -> Matcher | None:
    """A small automaton of the guild's own terms and allow phrases, or None without any."""
    terms = [Term(t.term, t.category, t.severity, "custom") for t in rules.custom_terms]
    terms += [Term(t, ALLOW, Severity.NONE, "custom") for t in rules.allow_terms]
    return Matcher(terms) if terms else None


# `{a, b}` expansions: only what an expansion adds to the flat text is screened, which is
# the text around each join of an option and its neighbours (a hit elsewhere is a hit in the
# flat text). All expansions' windows are read in one pass, up to this many times the prompt.
EXPANSION_BUDGET = 1


@dataclass(frozen=True, slots=True)
class _Windows:
    """Expansion text around joins, as one string, with the way back to the message."""

    text: str
    pieces: list[tuple[int, int, int]]  # (offset in text, offset in content, length)
    joins: list[int]  # offsets in text where an expansion joins two spans


def expansion_windows(prompt: ExtractedPrompt, reach: int) -> _Windows | None:
    """The text within `reach` characters of every join of every `{a,b}` expansion.

    Windows of one expansion that overlap are merged, identical windows of different
    expansions are read once, and the total stops at EXPANSION_BUDGET times the prompt.
    """
    if not prompt.permutations:
        return None
    content = prompt.content
    budget = EXPANSION_BUDGET * max(len(prompt.text), 256)
    parts: list[str] = []
    pieces: list[tuple[int, int, int]] = []
    joins: list[int] = []
    seen: set[tuple[tuple[int, int], ...]] = set()
    size = 0
    for expansion in prompt.permutations:
        spans = [(a, b) for a, b in expansion if b > a]
        # offsets of each span in the expansion, and where two non-adjacent spans meet
        offsets: list[int] = []
        total = 0
        cuts: list[int] = []
        for k, (a, b) in enumerate(spans):
            if k and spans[k - 1][1] != a:
                cuts.append(total)
            offsets.append(total)
            total += b - a
        merged: list[list[int]] = []
        for j in cuts:
            lo, hi = max(0, j - reach), min(total, j + reach)
            if merged and lo <= merged[-1][1]:
                merged[-1][1] = hi
            else:
                merged.append([lo, hi])
        for lo, hi in merged:
            segments = tuple(
                (max(a, a + lo - off), min(b, a + hi - off))
                for (a, b), off in zip(spans, offsets, strict=True)
                if off < hi and off + (b - a) > lo
            )
            if segments in seen:
                continue
            if size + (hi - lo) > budget:
                return _Windows("".join(parts), pieces, joins) if parts else None
            seen.add(segments)
            if parts:
                parts.append("\n")  # not a word character: windows never join
                size += 1
            for k, (a, b) in enumerate(segments):
                if k and segments[k - 1][1] != a:
                    joins.append(size)
                pieces.append((size, a, b - a))
                parts.append(content[a:b])
                size += b - a
    return _Windows("".join(parts), pieces, joins) if parts else None


_ZONE_CODE = {Region.PROMPT: "p", Region.NEGATIVE: "n", Region.SKIP: IGNORED_ZONE}


def _zones(prompt: ExtractedPrompt) -> str:
    """The region of each character of the message, as one character each (see
    `Matcher.find`, which takes them re-aligned with the normalized text).

    The matcher caps the places it reports per term and zone, so a prompt full of a word in
    a link or under `--no` cannot hide the same word in the prompt itself.
    """
    regions = prompt.regions
    if len(regions) == 1 and regions[0][0] == 0 and regions[0][1] == len(prompt.content):
        return _ZONE_CODE[regions[0][2]] * regions[0][1]  # a message that is all prompt
    parts: list[str] = []
    pos = 0
    for a, b, region in regions:
        if a > pos:
            parts.append(IGNORED_ZONE * (a - pos))
        if b > max(a, pos):
            parts.append(_ZONE_CODE[region] * (b - max(a, pos)))
        pos = max(pos, b)
    parts.append(IGNORED_ZONE * (len(prompt.content) - pos))
    return "".join(parts)


def _visible(prompt: ExtractedPrompt, norm: Normalized) -> str:
    """The normalized text with all but the prompt's words blanked (see `model_blanks`)."""
    content = prompt.content
    lo, hi = prompt.offset, prompt.offset + len(prompt.text)
    if lo == 0 and hi == len(content) and not may_blank(content):
        return norm.text  # the whole message is the prompt, with nothing `model_blanks` blanks
    if norm.identity and "http" not in content and "::" not in content:
        # most prompts with parameters: the one blank is from the first parameter on, and
        # normalized offsets are the message's own
        text = norm.text
        cut = parameters_start(content)
        end = hi if cut is None else min(cut, hi)
        if end <= lo:
            return " " * len(text)
        if lo == 0 and end == len(text):
            return text
        return "".join((" " * lo, text[lo:end], " " * (len(text) - end)))
    keep: list[tuple[int, int]] = []
    pos = lo
    for a, b in model_blanks(content):
        if a > pos:
            keep.append((pos, min(a, hi)))
        pos = max(pos, b)
    if pos < hi:
        keep.append((pos, hi))
    keep = [(a, b) for a, b in keep if b > a]
    if keep == [(0, len(content))]:
        return norm.text
    points = sorted({x for span in keep for x in span})
    at = dict(zip(points, norm.from_original(points), strict=True))
    text = norm.text
    parts: list[str] = []
    pos = 0
    for a, b in keep:
        na, nb = at[a], at[b]
        parts += [" " * (na - pos), text[na:nb]]
        pos = nb
    parts.append(" " * (len(text) - pos))
    return "".join(parts)


class Screener:
    def __init__(
        self,
        rules: GuildRules | None = None,
        *,
        guidelines: Guidelines | None = None,
        model: _Model | bool | None = True,
    ) -> None:
        """`model=True` loads the shipped model if there is one; None or False disables it."""
        self.rules = rules or GuildRules()
        self.guidelines = guidelines or default_guidelines()
        self.matcher, self._persons = shared_matchers(self.guidelines)
        self.own = guild_matcher(self.rules)  # owned by this screener: dropped with it
        langs = self.rules.languages
        self._languages = None if langs is None else frozenset(langs)
        self._longest = max(self.matcher.longest, self.own.longest if self.own else 0)
        self.model: _Model | None = None
        if self.rules.learned:
            self.model = _load_model() if model is True else (model or None)
        self._word_category = {
            t.term.lower(): t.category
            for t in self.guidelines.terms
            if t.category in CATEGORIES and " " not in t.term
        }

    def screen(
        self,
        content: str,
        *,
        author_is_bot: bool = False,
        extracted: ExtractedPrompt | None = None,
    ) -> Decision:
        """Screen one message; spans in the Decision index `content`.

        `extracted` is `extract(content, ...)` when the caller already has it (the watcher
        needs the requester first), so the hot path does not parse the message twice.
        """
        prompt = extracted or extract(content, author_is_bot=author_is_bot)
        if prompt.content != content:
            raise ValueError("extracted prompt belongs to another message")
        norm = normalize(content)
        hits = self._hits(prompt, norm)
        found = self._read_hits(prompt, norm, hits) if hits else []  # most prompts: none
        pii = find_pii(content)
        if pii:
            found += self._pii(prompt, pii)
        matches = self._apply_rules(content, found) if found else []
        verdict = Verdict.ALLOW  # most prompts: nothing found, nothing to rank
        flagged: list[Match] = []
        if matches:
            verdict = Verdict.harshest([self._action(m) for m in matches])
            flagged = [m for m in matches if self._action(m) is not Verdict.ALLOW]
        extra: dict[str, Any] = {}
        if prompt.kind not in (JobKind.MESSAGE, JobKind.UNKNOWN):
            extra = {"job": prompt.kind.value, "requester_id": prompt.requester_id}
        score: float | None = None
        if self.model is not None and verdict in _BELOW_REVIEW:
            score, model_matches = self._learned(prompt, norm)
            if model_matches:
                verdict = Verdict.REVIEW
                flagged += model_matches
                matches += model_matches
        severity = Severity.NONE
        categories: list[str] = []
        if flagged:
            severity = max(m.severity for m in flagged)
            for m in sorted(flagged, key=lambda m: -m.severity):
                if m.category not in categories:
                    categories.append(m.category)
        return new_decision(
            content,  # prompt
            verdict,
            severity,
            tuple(categories),
            tuple(matches),
            score,
            extra,
        )

    # ---- rules tier ----------------------------------------------------------------------

    def _find(self, norm: Normalized, zones: str) -> list[Hit]:
        return self.matcher.find(norm, zones, also=self.own, languages=self._languages)

    def _hits(self, prompt: ExtractedPrompt, norm: Normalized) -> list[Hit]:
        zones = _zones(prompt)
        hits = self._find(norm, norm.project(zones))
        if not prompt.permutations:
            return hits  # most prompts: no `{a, b}` expansion
        windows = expansion_windows(prompt, self._longest + 1)
        if windows is None:
            return hits
        seen = {(h.term, h.start, h.end) for h in hits}
        starts = [p for p, _, _ in windows.pieces]

        def back(i: int) -> int:
            base, orig, _ = windows.pieces[bisect_right(starts, i) - 1]
            return orig + i - base

        wnorm = normalize(windows.text)
        aligned = "".join(  # "\n" between windows: a hit never starts there
            zones[orig : orig + size].ljust(next_ - base, IGNORED_ZONE)
            for (base, orig, size), next_ in zip(
                windows.pieces, [*starts[1:], len(windows.text)], strict=True
            )
        )
        joins = windows.joins
        for h in self._find(wnorm, wnorm.project(aligned)):
            # only hits across a join are new: the flat text holds every other one
            k = bisect_left(joins, h.start)
            if k == len(joins) or joins[k] > h.end:
                continue
            mapped = Hit(h.term, back(h.start), back(h.end - 1) + 1)
            if (mapped.term, mapped.start, mapped.end) not in seen:
                seen.add((mapped.term, mapped.start, mapped.end))
                hits.append(mapped)
        return hits

    def _read_hits(
        self, prompt: ExtractedPrompt, norm: Normalized, hits: list[Hit]
    ) -> list[_Found]:
        if not hits:
            return []  # most prompts
        plain: list[_Found] = []
        minors: list[_Found] = []
        figures: list[_Found] = []
        scenes: list[_Found] = []
        negated: list[_Found] = []  # clothing under --no that asks for nudity only on a person
        person = False
        for h in hits:
            region = prompt.region_at(h.start)
            t = h.term
            if region is Region.SKIP:
                continue
            if region is Region.NEGATIVE:
                # "--no blood" asks for less gore; "--no clothes" asks for nudity
                if t.category == CLOTHING:
                    found = _Found(
                        "sexual", f"--no {t.term}", h.start, h.end, "rule:negative", Severity.HIGH
                    )
                    # "--no swimsuit" only ever means a body; "--no shirt" on a logo means
                    # no shirt mock-up, so it counts once the prompt shows a person
                    (plain if t.severity >= Severity.HIGH else negated).append(found)
                continue
            if t.category in ("minors", "real_person"):
                person = True
            found = _Found(t.category, t.term, h.start, h.end, t.source, t.severity)
            if t.category == "minors" and t.severity == Severity.NONE:
                minors.append(found)
            elif t.category == "real_person" and t.severity == Severity.NONE:
                figures.append(found)
            elif t.category == CONTEXT:
                scenes.append(found)
            elif t.severity > Severity.NONE and t.category in (*CATEGORIES, CUSTOM):
                plain.append(found)
        if negated and not person:
            # the plain text only: a person needs no evasion to count as one
            person = any(
                prompt.region_at(norm.orig(start)) is Region.PROMPT
                for start, _, _ in self._persons.raw(norm.text, ())
            )
        for f in negated:
            plain.append(f if person else replace(f, severity=Severity.LOW))
        if not plain and not figures and not scenes:
            return plain
        if plain and _DIGIT.search(norm.text):
            for m in _MINOR_AGE.finditer(norm.text):
                start, end = norm.span(m.start(), m.end())
                if prompt.region_at(start) is Region.PROMPT:
                    minors.append(
                        _Found("minors", MINOR_AGE_TERM, start, end, "rule:minors", Severity.NONE)
                    )
        sexual = [f for f in plain if f.category == "sexual"]
        harm = [
            f
            for f in plain
            if (f.category == "self_harm" and f.severity > Severity.NONE)
            or (f.category == "violence" and f.severity >= Severity.MEDIUM)
        ]
        out = list(plain)
        if minors and (sexual or harm):
            # a minor in a sexual scene, or hurt (self-harm, real violence): never allowed
            source = "rule:minors+sexual" if sexual else f"rule:minors+{harm[0].category}"
            out += [
                _Found("minors", f.term, f.start, f.end, source, Severity.CRITICAL) for f in minors
            ]
        if figures:
            scene = [f for f in plain if f.category in ("sexual", "violence")]
            if scenes or scene:
                strong = bool(scenes) or any(f.severity >= Severity.MEDIUM for f in scene)
                sev = Severity.HIGH if strong else Severity.MEDIUM
                out += [
                    _Found("real_person", f.term, f.start, f.end, "rule:real_person", sev)
                    for f in (*figures, *scenes)
                ]
        return out

    def _pii(self, prompt: ExtractedPrompt, pii: list[PiiHit]) -> list[_Found]:
        out = []
        for p in pii:
            if prompt.region_at(p.start) is not Region.SKIP:
                out.append(
                    _Found("personal_info", p.kind, p.start, p.end, f"pii:{p.kind}", p.severity)
                )
        return out

    def _apply_rules(self, content: str, found: list[_Found]) -> list[Match]:
        rules = self.rules
        content_matches: list[Match] = []
        for f in found:
            if rules.actions.get(f.category) == "off":
                continue
            severity = rules.severity.get(f.category, f.severity)
            content_matches.append(
                Match(
                    category=f.category,
                    term=f.term,
                    start=f.start,
                    end=f.end,
                    text=content[f.start : f.end],
                    source=f.source,
                    severity=severity,
                )
            )
        return content_matches

    def _action(self, m: Match) -> Verdict:
        action = self.rules.actions.get(m.category)
        if action is not None:
            return _ACTION_VERDICT.get(action, Verdict.ALLOW)
        if m.category == "personal_info":
            return Verdict.REMIND
        return _DEFAULT_ACTION[m.severity]

    # ---- learned tier --------------------------------------------------------------------

    def _learned(
        self, prompt: ExtractedPrompt, norm: Normalized
    ) -> tuple[float | None, list[Match]]:
        model = self.model
        if model is None:
            return None, []
        # The words the model was trained on: the prompt with parameters, links and
        # ::weights blanked exactly as `model_text` did at training time. Blanking keeps
        # offsets, so it is done in the normalized text, whose spans map back.
        visible = _visible(prompt, norm)
        words = plain_words(visible)  # most prompts: the words alone, no spans
        if not words:
            return None, []
        score = model.probability(words)
        if score < model.threshold:
            return score, []
        spans = word_spans(visible)  # the same words, with spans for the explanation
        score, contributions = model.score(words)
        category = "model"
        for c in contributions:
            for word in c.feature.split():
                if word in self._word_category:
                    category = self._word_category[word]
                    break
            if category != "model":
                break
        if self.rules.actions.get(category) == "off":
            return score, []
        matches = []
        for c in contributions:
            first = max(0, min(c.first, len(spans) - 1))
            last = max(first, min(c.last, len(spans) - 1))
            start, end = norm.span(spans[first][1], spans[last][2])
            matches.append(
                Match(
                    category=category,
                    term=c.feature,
                    start=start,
                    end=end,
                    text=prompt.content[start:end],
                    source="model",
                    severity=Severity.MEDIUM,
                    weight=c.weight,
                )
            )
        return score, matches


class ScreenerCache:
    """Compiled screeners per guild, rebuilt when the guild's rules change.

    Bounded (least recently used guilds are dropped and rebuilt on their next message), and
    a guild's screener is built once under that guild's lock: concurrent misses, each in a
    worker thread, wait for the one build instead of each building their own.
    """

    MAX_GUILDS = 2048

    def __init__(self, *, model: _Model | bool | None = True, max_guilds: int = MAX_GUILDS) -> None:
        self._model = model
        self._max = max_guilds
        self._entries: OrderedDict[int, tuple[str, GuildRules, Screener]] = OrderedDict()
        self._locks: dict[int, threading.Lock] = {}
        self._guard = threading.Lock()  # the two dicts above, never held while building

    def cached(self, guild_id: int, rules: GuildRules) -> Screener | None:
        """The compiled screener for these rules if there is one; never builds.

        The rules object itself is checked first, so the per-message path does not hash a
        guild's (up to 1,000) custom terms while the settings are unchanged.
        """
        entry = self._entries.get(guild_id)
        if entry is None:
            return None
        if entry[1] is rules:
            self._touch(guild_id)
            return entry[2]
        if entry[0] == rules.fingerprint():
            with self._guard:
                if guild_id in self._entries:
                    self._entries[guild_id] = (entry[0], rules, entry[2])
            return entry[2]
        return None

    def get(self, guild_id: int, rules: GuildRules) -> Screener:
        """The screener for these rules, building it (a fraction of a second) if needed.

        Called from worker threads (`asyncio.to_thread`): builds never block the event loop.
        """
        screener = self.cached(guild_id, rules)
        if screener is not None:
            return screener
        with self._guard:
            lock = self._locks.setdefault(guild_id, threading.Lock())
        with lock:
            screener = self.cached(guild_id, rules)  # built while this thread waited
            if screener is None:
                screener = Screener(rules, model=self._model)
                with self._guard:
                    # the old screener (and its automaton) goes here, before the next build
                    self._entries[guild_id] = (rules.fingerprint(), rules, screener)
                    self._entries.move_to_end(guild_id)
                    while len(self._entries) > self._max:
                        old, _ = self._entries.popitem(last=False)
                        self._locks.pop(old, None)
        return screener

    def _touch(self, guild_id: int) -> None:
        with self._guard:
            if guild_id in self._entries:
                self._entries.move_to_end(guild_id)

    def forget(self, guild_id: int) -> None:
        with self._guard:
            self._entries.pop(guild_id, None)
            self._locks.pop(guild_id, None)
