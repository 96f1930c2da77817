"""Personal information: a private reminder, checked beyond the regex where possible."""

from __future__ import annotations

import pytest

from promptwarden.screening.decision import Verdict
from promptwarden.screening.engine import Screener
from promptwarden.screening.pii import find_pii, luhn_ok


@pytest.mark.parametrize(
    ("text", "kind", "found"),
    [
        ("mail me at jane.doe+art@example.co.uk", "email", "jane.doe+art@example.co.uk"),
        ("call +44 20 7946 0958 today", "phone", "+44 20 7946 0958"),
        ("call +1 (555) 123-4567", "phone", "+1 (555) 123-4567"),
        ("call (555) 123-4567", "phone", "(555) 123-4567"),
        ("call 555.123.4567", "phone", "555.123.4567"),
        ("ruf 030 1234 5678", "phone", "030 1234 5678"),
        ("card 4111 1111 1111 1111 exp 12/29", "card", "4111 1111 1111 1111"),
        ("card 5500-0000-0000-0004", "card", "5500-0000-0000-0004"),
        ("card 378282246310005", "card", "378282246310005"),
        ("server at 192.168.10.254 is down", "ip", "192.168.10.254"),
        ("ipv6 2001:db8:85a3::8a2e:370:7334 here", "ip", "2001:db8:85a3::8a2e:370:7334"),
        ("key AKIAIOSFODNN7EXAMPLE oops", "token", "AKIAIOSFODNN7EXAMPLE"),
        (
            "token MTA4NzY1NDMyMTA5ODc2NTQz.GaBcDe.abcdefghijklmnopqrstuvwxyz0123456789",
            "token",
            "MTA4NzY1NDMyMTA5ODc2NTQz.GaBcDe.abcdefghijklmnopqrstuvwxyz0123456789",
        ),
        (
            "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
            "token",
            "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
        ),
        (
            "secret 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            "token",
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        ),
        ("I live at 221 Baker Street, London", "address", "221 Baker Street"),
    ],
)
def test_kinds(text: str, kind: str, found: str) -> None:
    hits = find_pii(text)
    assert [(h.kind, text[h.start : h.end]) for h in hits] == [(kind, found)]


@pytest.mark.parametrize(
    "text",
    [
        "card 4111 1111 1111 1112",  # fails Luhn
        "a fox --ar 16:9 --seed 1234567890 --v 5.2",
        "render 8k, 35mm, 1950s sci-fi, version 1.2.3",
        "a::2 b::-0.5 c::3",  # prompt weights, not IPv6
        "hissing cat with tongue out",
        "999.999.999.999 is not an address",
    ],
)
def test_prompt_numbers_are_not_pii(text: str) -> None:
    assert find_pii(text) == []


def test_luhn() -> None:
    assert luhn_ok("79927398713")
    assert not luhn_ok("79927398710")


def test_pii_reminds_rather_than_flags(screener: Screener) -> None:
    d = screener.screen("portrait of me, contact jane@example.com")
    assert d.verdict is Verdict.REMIND
    assert d.categories == ("personal_info",)
    assert not d.flagged
    assert d.matches[0].source == "pii:email"
    assert d.matches[0].text == "jane@example.com"
