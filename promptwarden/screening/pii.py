"""Personal information in prompts: a privacy reminder, not a violation.

Prompts are public, so a member who pastes an email, a card number or a bot token should be
told privately. Every pattern is checked beyond the regex where it can be (Luhn for cards,
`ipaddress` for IPs) because prompts are full of numbers: seeds, sizes, versions, weights.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from .decision import Severity


@dataclass(frozen=True, slots=True)
class PiiHit:
    kind: str  # email, phone, card, ip, token, address
    start: int
    end: int
    severity: Severity


KEEP_PER_KIND = 5
_NON_DIGITS = bytes(c for c in range(128) if not chr(c).isdigit())
# runs of the characters every secret below is written in: zalgo or "a::-a::" never qualify
_LONG_WORD = re.compile(r"[A-Za-z0-9_\-+/.=]{20,}")
# its characters "w", others " ": twenty "w" in a row is where `_LONG_WORD` can match
_LONG_WORD_CLASSES = bytes(
    ord("w") if re.fullmatch(r"[A-Za-z0-9_\-+/.=]", chr(c)) else ord(" ") for c in range(256)
)
_TWENTY = b"w" * 20
_DIGIT_RUN = re.compile(r"\d(?:[\s().+-]{0,2}\d){6,}")  # seven digits or more: phone, card
_IPV6_HINT = re.compile(r":[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{0,4}:|:[0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{1,4}:")
_DOTTED_QUAD = re.compile(r"\d\.\d{1,3}\.\d{1,3}\.\d")
_ADDRESS_HINT = re.compile(r"\d\s+[A-Z]")

_EMAIL = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}\b"
)
_PHONE = re.compile(
    r"(?<![\w+])(?:"
    r"\+\d{1,3}[\s.-]?(?:\(\d{1,4}\)[\s.-]?)?\d{1,4}(?:[\s.-]?\d{2,4}){1,4}"  # +44 20 7946 0958
    r"|\(\d{3}\)\s?\d{3}[\s.-]\d{4}"  # (555) 123-4567
    r"|\d{3}[\s.-]\d{3}[\s.-]\d{4}"  # 555-123-4567
    r"|0\d{1,4}[\s.-]\d{3,4}[\s.-]\d{3,4}"  # 020 7946 0958
    r")(?![\w])"
)
_CARD = re.compile(r"(?<![\d-])(?:[2-6]\d{3})(?:[ -]?\d{2,4}){3,5}(?![\d])")
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.]|\.\d)")
# three colons at least: four groups, fewer is a prompt weight ("a::2")
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){3,7}[0-9A-Fa-f]{0,4}(?![\w:])")
_TOKENS = re.compile(
    r"(?<![\w-])(?:"
    r"[MNO][A-Za-z\d_-]{23,27}\.[\w-]{6,7}\.[\w-]{27,40}"  # Discord bot token
    r"|(?:AKIA|ASIA)[0-9A-Z]{16}"  # AWS access key id
    r"|gh[pousr]_[A-Za-z0-9]{36,}"  # GitHub
    r"|xox[abprs]-[A-Za-z0-9-]{10,}"  # Slack
    r"|sk-[A-Za-z0-9_-]{20,}"  # OpenAI-style secret keys
    r"|AIza[0-9A-Za-z_-]{35}"  # Google API key
    r"|[0-9a-fA-F]{32,}"  # long hex secret
    r"|(?=[A-Za-z0-9+/]*\d)(?=[A-Za-z0-9+/]*[a-z])(?=[A-Za-z0-9+/]*[A-Z])[A-Za-z0-9+/]{40,}={0,2}"
    r")(?![\w-])"
)
_STREETS = (
    *("Street", "St", "Avenue", "Ave", "Road", "Rd", "Boulevard", "Blvd", "Lane", "Ln"),
    *("Drive", "Dr", "Court", "Ct", "Terrace", "Place", "Pl", "Square", "Sq", "Way"),
    *("Close", "Crescent", "Strasse", "Straße"),
)
_ADDRESS = re.compile(
    r"\b\d{1,5}[A-Za-z]?\s+(?:[A-Z][a-z]+\s+){1,3}"
    rf"(?:{'|'.join(_STREETS)})\b\.?"
    r"(?:,?\s+(?:Apt|Suite|Unit|Flat)\.?\s*\w+)?"
)


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _digits(s: str) -> str:
    return "".join(c for c in s if c.isdigit())


def find_pii(text: str) -> list[PiiHit]:
    """Personal information in `text`, spans in `text`.

    Cheap C-level checks decide which patterns can apply, since most prompts hold none.
    """
    # every pattern is ASCII, and bytes checks are cheap on long zalgo text
    ascii_text = text.encode("ascii", "ignore")
    has_at = b"@" in ascii_text
    n_digits = len(ascii_text.translate(None, _NON_DIGITS))
    has_digit = n_digits > 0
    # A phone or card number has seven digits at least, a dotted quad four and three dots:
    # the digits of "--ar 16:9 --v 5.2" stop here, before any regex. Counted in ASCII text
    # only, where `\d` matches nothing but ASCII digits.
    exact = text.isascii()
    numbers = has_digit and (n_digits >= 7 or not exact) and _DIGIT_RUN.search(text) is not None
    quads = (
        has_digit
        and (not exact or (n_digits >= 4 and ascii_text.count(b".") >= 3))
        and _DOTTED_QUAD.search(text) is not None
    )
    long_words = (
        list(_LONG_WORD.finditer(text))
        if _TWENTY in ascii_text.translate(_LONG_WORD_CLASSES)
        else []
    )
    # the hint holds three colons: most prompts have none, or the one of "--ar 16:9"
    ipv6 = ascii_text.count(b":") >= 3 and _IPV6_HINT.search(text) is not None
    address = (
        has_digit
        # a digit before a capital first: most prompts with numbers ("--ar 16:9") stop
        # here, before 27 substring checks
        and not ascii_text.islower()  # no capital letter, no street name: most prompts
        and _ADDRESS_HINT.search(text) is not None
        and any(street in text for street in _STREETS)
    )
    if not (has_at or numbers or quads or long_words or ipv6 or address):
        return []
    hits: list[PiiHit] = []
    taken: list[tuple[int, int]] = []

    per_kind: dict[str, int] = {}

    def add(kind: str, start: int, end: int, severity: Severity) -> None:
        # a few places per kind say enough, and keep a pasted list of 200 emails cheap
        kept = per_kind.get(kind, 0)
        if kept >= KEEP_PER_KIND or any(a < end and start < b for a, b in taken):
            return
        per_kind[kind] = kept + 1
        taken.append((start, end))
        hits.append(PiiHit(kind, start, end, severity))

    for word in long_words:  # secrets are ASCII: zalgo "words" are long but never keys
        for m in _TOKENS.finditer(text, word.start(), word.end()):
            add("token", m.start(), m.end(), Severity.MEDIUM)
    if has_at:
        for m in _EMAIL.finditer(text):
            add("email", m.start(), m.end(), Severity.LOW)
    if numbers:
        for m in _CARD.finditer(text):
            digits = _digits(m.group())
            if 13 <= len(digits) <= 19 and luhn_ok(digits):
                add("card", m.start(), m.end(), Severity.MEDIUM)
    if quads:
        for m in _IPV4.finditer(text):
            if all(int(p) <= 255 for p in m.group().split(".")):
                add("ip", m.start(), m.end(), Severity.LOW)
    if ipv6:
        for m in _IPV6.finditer(text):
            candidate = m.group()
            groups = [g for g in candidate.split(":") if g]
            if len(groups) < 4:  # "a::2" is a prompt weight, not an address
                continue
            try:
                ipaddress.IPv6Address(candidate)
            except ValueError:
                continue
            add("ip", m.start(), m.end(), Severity.LOW)
    if numbers:
        for m in _PHONE.finditer(text):
            if 7 <= len(_digits(m.group())) <= 15:
                add("phone", m.start(), m.end(), Severity.LOW)
    if address:
        for m in _ADDRESS.finditer(text):
            add("address", m.start(), m.end(), Severity.LOW)
    hits.sort(key=lambda h: h.start)
    return hits
