"""Finding the prompt in a message: Midjourney Bot job messages, pasted /imagine, plain text.

Everything is reported as spans of the original content, so that matches found in the prompt
point at the right characters of the message. Regions tell the engine how to read each part:
the prompt text, the `--no` negative prompt (and parts weighted below zero), and parts to skip
(image links, other parameter values, the bot's own decoration).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass, field, fields
from enum import StrEnum
from itertools import islice, product

MIDJOURNEY_BOT_ID = 936929561302675456
NIJI_BOT_ID = 1022952195194359889
GENERATOR_BOT_IDS = frozenset({MIDJOURNEY_BOT_ID, NIJI_BOT_ID})

MAX_PERMUTATIONS = 40  # Midjourney's own limit of jobs per permutation prompt
MAX_BRACE_GROUPS = 8
# Parsed one by one up to these counts; flooding beyond them only makes the rest prompt text.
MAX_PARAMETERS = 64
MAX_WEIGHTS = 64


class JobKind(StrEnum):
    MESSAGE = "message"  # a person's message (plain text or pasted /imagine)
    IMAGINE = "imagine"  # a job: waiting, progress or result
    IMAGE = "image"  # "- Image #1 <@id>"
    UPSCALE = "upscale"
    VARIATION = "variation"
    REMIX = "remix"
    ZOOM = "zoom"
    PAN = "pan"
    UNKNOWN = "unknown"  # content screened whole


class Region(StrEnum):
    PROMPT = "prompt"
    NEGATIVE = "negative"
    SKIP = "skip"


@dataclass(frozen=True, slots=True)
class ExtractedPrompt:
    content: str
    text: str  # the prompt as written, parameters included
    offset: int  # where `text` starts in `content`
    kind: JobKind
    requester_id: int | None = None
    status: str | None = None  # "fast", "relaxed", "62%", "Waiting to start"...
    parameters: dict[str, str] = field(default_factory=dict)
    negative: str = ""  # the --no text
    urls: tuple[str, ...] = ()
    # (start, end, region) spans of `content`, sorted; uncovered = skip
    regions: tuple[tuple[int, int, Region], ...] = ()
    # {a, b} expansions: each a list of (start, end) spans of content joined by nothing
    permutations: tuple[tuple[tuple[int, int], ...], ...] = ()

    # region starts, for a binary search: hostile prompts hold thousands of regions. Made
    # on the first question, since most prompts have no hit to ask about.
    _starts: tuple[int, ...] | None = field(default=None, init=False, repr=False, compare=False)

    def region_at(self, pos: int) -> Region:
        starts = self._starts
        if starts is None:
            starts = tuple(start for start, _, _ in self.regions)
            object.__setattr__(self, "_starts", starts)
        i = bisect_right(starts, pos) - 1
        if i >= 0:
            start, end, region = self.regions[i]
            if start <= pos < end:
                return region
        return Region.SKIP


# Frozen dataclasses set each field through `object.__setattr__`, looked up anew per field,
# which was most of an ExtractedPrompt's cost per message; the slots' own setters, bound
# once, do the same.
_NEW = object.__new__
(
    _CONTENT,
    _TEXT,
    _OFFSET,
    _KIND,
    _REQUESTER,
    _STATUS_,
    _PARAMETERS,
    _NEGATIVE,
    _URLS,
    _REGIONS,
    _PERMUTATIONS,
    _STARTS,
) = (getattr(ExtractedPrompt, f.name).__set__ for f in fields(ExtractedPrompt))
# a field added to ExtractedPrompt fails the line above, at import, until `_prompt` sets it


def _prompt(
    content: str,
    text: str,
    offset: int,
    kind: JobKind,
    requester_id: int | None,
    status: str | None,
    parameters: dict[str, str],
    negative: str,
    urls: tuple[str, ...],
    regions: tuple[tuple[int, int, Region], ...],
    permutations: tuple[tuple[tuple[int, int], ...], ...],
) -> ExtractedPrompt:
    """`ExtractedPrompt(...)` with every field given, for the per-message path."""
    prompt: ExtractedPrompt = _NEW(ExtractedPrompt)
    _CONTENT(prompt, content)
    _TEXT(prompt, text)
    _OFFSET(prompt, offset)
    _KIND(prompt, kind)
    _REQUESTER(prompt, requester_id)
    _STATUS_(prompt, status)
    _PARAMETERS(prompt, parameters)
    _NEGATIVE(prompt, negative)
    _URLS(prompt, urls)
    _REGIONS(prompt, regions)
    _PERMUTATIONS(prompt, permutations)
    _STARTS(prompt, None)
    return prompt


_MENTION = re.compile(r"<@!?(\d{15,21})>")
_JOB = re.compile(
    r"^(?:(?P<pre>Making variations for image #\d+ with prompt|Upscaling image #\d+ with|"
    r"Remixing image #\d+ with prompt|Zooming out image #\d+ with|Panning image #\d+ with)\s+)?"
    r"\*\*(?P<prompt>.*)\*\*\s*[-\u2013\u2014]\s*(?P<rest>.*)$",
    re.DOTALL,
)
_KINDS = (
    (re.compile(r"^Image #\d+", re.I), JobKind.IMAGE),
    (re.compile(r"^Upscaled\b", re.I), JobKind.UPSCALE),
    (re.compile(r"^Variations?\b", re.I), JobKind.VARIATION),
    (re.compile(r"^Remix\b", re.I), JobKind.REMIX),
    (re.compile(r"^Zoom\b", re.I), JobKind.ZOOM),
    (re.compile(r"^Pan\b", re.I), JobKind.PAN),
)
_PRE_KINDS = {
    "making": JobKind.VARIATION,
    "upscaling": JobKind.UPSCALE,
    "remixing": JobKind.REMIX,
    "zooming": JobKind.ZOOM,
    "panning": JobKind.PAN,
}
_STATUS = re.compile(r"\((?!Open on website|<)([^()]*)\)")
_IMAGINE = re.compile(r"^\s*/imagine\s+(?:prompt\s*:\s*)?", re.I)
# `--ar`, or a phone's em dash, after a space, a comma or nothing. The dash comes first in
# the pattern so the regex engine skips ahead to dashes instead of trying every position.
_PARAM = re.compile(r"(?:--(?<![^\s,]--)|[\u2014\u2013](?<![^\s,][\u2014\u2013]))(?=[A-Za-z])")
# `_PARAM`'s alternatives apart: led by "--", the regex engine skips ahead to it in C, where
# the alternation was tried at every position of the prompt.
_PARAM_HYPHENS = re.compile(r"--(?<![^\s,]--)(?=[A-Za-z])")
_PARAM_DASH = re.compile(r"[\u2014\u2013](?<![^\s,][\u2014\u2013])(?=[A-Za-z])")


def _parameter_marks(text: str, limit: int) -> list[re.Match[str]]:
    """The first `limit` matches of `_PARAM.finditer(text)`, from its alternatives searched
    one by one: their matches never overlap (a dash is neither hyphen of a "--"), so
    together, in order, they are `_PARAM`'s."""
    marks = list(islice(_PARAM_HYPHENS.finditer(text), limit)) if "--" in text else []
    if "\u2014" in text or "\u2013" in text:
        marks += islice(_PARAM_DASH.finditer(text), limit)
        marks.sort(key=_start)
        del marks[limit:]
    return marks


def _start(m: re.Match[str]) -> int:
    return m.start()


_URL = re.compile(r"<?https?://[^\s>]+>?")
_WEIGHT = re.compile(r"::\s*(-?\d*\.?\d+)?")
_BRACES = re.compile(r"\{([^{}]*)\}")


def _parse_job(content: str) -> tuple[int, int, JobKind, int | None, str | None] | None:
    if "**" not in content or "<@" not in content:
        return None
    m = _JOB.match(content)
    if not m:
        return None
    rest = m.group("rest")
    mention = _MENTION.search(rest) or _MENTION.search(content[m.end("prompt") :])
    if not mention:
        return None
    kind = JobKind.IMAGINE
    pre = m.group("pre")
    if pre:
        kind = _PRE_KINDS.get(pre.split()[0].lower(), JobKind.IMAGINE)
    else:
        for pattern, k in _KINDS:
            if pattern.match(rest):
                kind = k
                break
    # statuses follow the mention; "(Max)", "(Strong)" before it name the job
    statuses = _STATUS.findall(rest[rest.find(mention.group()) + len(mention.group()) :])
    status = statuses[0].strip() if statuses else None
    return m.start("prompt"), m.end("prompt"), kind, int(mention.group(1)), status


def extract(content: str, *, author_is_bot: bool = False) -> ExtractedPrompt:
    """The prompt in a message, with its parameters and regions.

    A generator job message is recognised by shape (whoever posted it, since members paste
    them too); a person's message may be a pasted `/imagine prompt: ...`; anything else is
    screened whole. `author_is_bot` only stops a bot's unknown message being read as /imagine.
    """
    job = _parse_job(content)
    if job:
        start, end, kind, requester, status = job
    else:
        kind = JobKind.UNKNOWN if author_is_bot else JobKind.MESSAGE
        requester = None
        status = None
        start, end = 0, len(content)
        m = None if author_is_bot or "/" not in content else _IMAGINE.match(content)
        if m:
            start = m.end()
    return _split_prompt(content, start, end, kind, requester, status)


def _split_prompt(
    content: str,
    start: int,
    end: int,
    kind: JobKind,
    requester: int | None,
    status: str | None,
) -> ExtractedPrompt:
    text = content[start:end]
    if not ("--" in text or "\u2014" in text or "\u2013" in text or "http" in text) and not (
        "::" in text or "{" in content
    ):
        # most messages: no parameter, link, weight or expansion, so one prompt region
        regions_ = ((start, end, Region.PROMPT),) if end > start else ()
        return _prompt(content, text, start, kind, requester, status, {}, "", (), regions_, ())
    regions: list[tuple[int, int, Region]] = []
    urls: list[str] = []
    params: dict[str, str] = {}
    negative = ""
    # parameters: everything from the first --flag on
    dashed = "--" in text or "\u2014" in text or "\u2013" in text
    marks = _parameter_marks(text, 1) if dashed else []
    pm = marks[0] if marks else None
    body_end = start + (pm.start() if pm else len(text))
    if pm:
        ptext = text[pm.start() :]
        pieces: list[re.Match[str]] = []
        for piece in _parameter_marks(ptext, MAX_PARAMETERS + 1):
            if len(pieces) == MAX_PARAMETERS:
                # no real prompt has this many: the rest is read as prompt, hiding nothing
                rest = body_end + piece.start()
                regions.append((rest, start + len(text), Region.PROMPT))
                ptext = ptext[: piece.start()]
                break
            pieces.append(piece)
        for i, piece in enumerate(pieces):
            seg_start = piece.end()
            seg_end = pieces[i + 1].start() if i + 1 < len(pieces) else len(ptext)
            seg = ptext[seg_start:seg_end]
            name, _, value = seg.partition(" ")
            name = name.strip().lower()
            value = value.strip()
            abs_start = body_end + seg_start
            if name == "no":
                value_start = abs_start + seg.find(value) if value else abs_start + len(seg)
                regions.append((value_start, value_start + len(value), Region.NEGATIVE))
                negative = f"{negative}, {value}" if negative else value
                params["no"] = negative
            elif name:
                params[name] = value
    # body: URLs skipped, parts weighted below zero are negative
    pos = start
    for m in _URL.finditer(content, start, body_end) if "http" in text else ():
        urls.append(m.group().strip("<>"))
        if m.start() > pos:
            regions.append((pos, m.start(), Region.PROMPT))
        pos = m.end()
    if pos < body_end:
        regions.append((pos, body_end, Region.PROMPT))
    regions = _weights(content, regions)
    regions.sort()
    return _prompt(
        content,
        text,
        start,  # offset
        kind,
        requester,  # requester_id
        status,
        params,  # parameters
        negative,
        tuple(urls),
        tuple(regions),
        _permutations(content, start, body_end),
    )


def _weights(content: str, regions: list[tuple[int, int, Region]]) -> list[tuple[int, int, Region]]:
    """`a::2 b::-0.5`: the part before a negative weight acts like --no."""
    out: list[tuple[int, int, Region]] = []
    for start, end, region in regions:
        if region is not Region.PROMPT or content.find("::", start, end) < 0:
            out.append((start, end, region))
            continue
        pos = start
        for n, m in enumerate(_WEIGHT.finditer(content, start, end)):
            if n == MAX_WEIGHTS:
                break  # no real prompt has this many: the rest is read as prompt
            weight = m.group(1)
            negative = weight is not None and float(weight) < 0
            out.append((pos, m.start(), Region.NEGATIVE if negative else Region.PROMPT))
            pos = m.end()
        if pos < end:
            out.append((pos, end, Region.PROMPT))
    return out


def _permutations(content: str, start: int, end: int) -> tuple[tuple[tuple[int, int], ...], ...]:
    """`{red, blue} car` -> the spans of "red car" and "blue car" (nested braces not expanded).

    Only prompts Midjourney would run: at most MAX_PERMUTATIONS jobs and MAX_BRACE_GROUPS
    groups. Beyond that the generator refuses the job, and the screener reads the flat text
    (each option is a word there, and a braces-removed reading rejoins split words).
    """
    if "{" not in content:
        return ()
    groups = []
    for g in _BRACES.finditer(content, start, end):
        groups.append(g)
        if len(groups) > MAX_BRACE_GROUPS:
            return ()
    if not groups:
        return ()
    options: list[list[tuple[int, int]]] = []
    jobs = 1
    for g in groups:
        opts: list[tuple[int, int]] = []
        pos = g.start(1)
        for part in g.group(1).split(","):
            lead = len(part) - len(part.lstrip())
            opts.append((pos + lead, pos + len(part.rstrip())))
            pos += len(part) + 1
        options.append(opts)
        jobs *= len(opts)
        if jobs > MAX_PERMUTATIONS:
            return ()
    out: list[tuple[tuple[int, int], ...]] = []
    for choice in product(*options):
        spans: list[tuple[int, int]] = []
        pos = start
        for g, opt in zip(groups, choice, strict=True):
            spans += [(pos, g.start()), opt]
            pos = g.end()
        spans.append((pos, end))
        out.append(tuple(spans))
    return tuple(out)
