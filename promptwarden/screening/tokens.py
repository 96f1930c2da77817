"""The word tokenization shared by the rules and the learned tier.

The learned tier is trained on exactly these tokens, so any change here means retraining.
Tokens are read through the screening normalizer, so an obfuscated word ("n.a.k.e.d",
fullwidth letters, "p0rn") gives the model the same token as the plain word, and offsets index the
*original* text so that both tiers can point at the words that fired.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from .normalize import LEET, Normalized, normalize

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
# letters around inner leet digits: "p0rn", "s3x", "h3ll" (not "1girl", "4k", "mp4")
_INNER_LEET = re.compile(r"[a-z][a-z0-9]*[0-9][a-z0-9]*[a-z]")
# three or more single letters split by spaces, dots or dashes: "n a k e d", "s.e.x"
# (the first letter leads, so the regex engine skips ahead to letters and digits)
_SPLIT = r"[a-z](?<![a-z0-9][a-z])(?:[ .\-]{1,3}[a-z]){2,}(?![a-z0-9])"
# A token is a run of split letters, read as one word, or else a word; tried in that order
# at each position, in one pass.
_TOKEN = re.compile(f"({_SPLIT})|({_WORD.pattern})")
_NO_SEPARATORS = str.maketrans("", "", " .-")
# The fast path of `plain_words` for ASCII text: `_SPLIT` needs three
# single letters apart by separators, the first not after a letter or digit, which shows in
# a class string (letters and digits "a", anything else " ") as " a", spaces, "a", spaces,
# "a ": a regex led by a literal, found in C. Without one, every token is a run of letters
# and digits, which `split` cuts.
_WORD_CHARS = b"abcdefghijklmnopqrstuvwxyz0123456789"
_CLASSES = bytes(ord("a") if c in _WORD_CHARS else ord(" ") for c in range(256))
# (" {1,3}" written " " and " {0,2}": the literal prefix " a " is then a single-character
# word, which the regex engine finds in C, where " a" stopped at every word)
_SPLIT_SHAPE = re.compile(rb" a  {0,2}a {1,3}a ")
_TO_SPACE = bytes(c if c in _WORD_CHARS else ord(" ") for c in range(256))
_TO_SPACE_BUT_APOSTROPHE = bytes(c if c in _WORD_CHARS + b"'" else ord(" ") for c in range(256))
# A word `_unleet` changes has a letter right before its first digit (led by the digit, so
# the regex engine skips in C to the digits).
_LETTER_DIGIT = re.compile(r"[0-9](?<=[a-z][0-9])")


def _ascii_words(normalized: str) -> list[str] | None:
    """The words of ASCII text when it holds no `_SPLIT` run nor a stray apostrophe; else None.

    Bytes tables do it in C: a class string shows whether a run can be there, and without
    one every token is a run of letters and digits, which `split` cuts.
    """
    raw = normalized.encode("ascii")
    if _SPLIT_SHAPE.search(b" " + raw.translate(_CLASSES) + b" ") is not None:
        return None
    if b"'" not in raw:
        return raw.translate(_TO_SPACE).decode("ascii").split()
    # "gogh's": apostrophes kept, every piece holding one must be a whole `_WORD`
    words = raw.translate(_TO_SPACE_BUT_APOSTROPHE).decode("ascii").split()
    if all(_WORD.fullmatch(w) for w in words if "'" in w):
        return words
    return None


class Token(NamedTuple):
    """A word: a tuple, since one is made per word of every watched message."""

    text: str  # normalized form
    start: int  # span in the original text
    end: int


def prompt_tokens(text: str) -> list[Token]:
    """Words of a prompt, normalized, with their spans in `text`."""
    return tokens_of(normalize(text))


def tokens_of(norm: Normalized) -> list[Token]:
    """`prompt_tokens` for text already normalized (the engine normalizes once)."""
    words = word_spans(norm.text)
    if norm.identity:
        return [Token(w, a, b) for w, a, b in words]
    span = norm.span
    return [Token(w, *span(a, b)) for w, a, b in words]


def word_spans(s: str) -> list[tuple[str, int, int]]:
    """The tokens of normalized text `s`, with spans in `s` itself.

    Mapping spans back to the original costs a lookup each, so the learned tier asks for
    them here and maps only the few words its explanation names.
    """
    out: list[tuple[str, int, int]] = []
    for m in _TOKEN.finditer(s):
        run, word = m.groups()
        out.append((run.translate(_NO_SEPARATORS) if run else _unleet(word), *m.span()))
    return out


def plain_words(normalized: str) -> list[str]:
    """`word_spans` without the spans: the learned tier's per-message path, one C-level
    `findall` and a cheap pass, no match objects."""
    words = _ascii_words(normalized) if normalized.isascii() else None
    if words is not None:
        if _LETTER_DIGIT.search(normalized) is None:
            return words  # most prompts: no letter before a digit, so nothing to unleet
        return [word if word.isalpha() else _unleet(word) for word in words]
    return [
        word  # most words: letters only, no call
        if word.isalpha()
        else (_unleet(word) if word else run.translate(_NO_SEPARATORS))
        for run, word in _TOKEN.findall(normalized)
    ]


def _unleet(word: str) -> str:
    if not word.isalpha() and _INNER_LEET.fullmatch(word):
        return word.translate(LEET)
    return word


def prompt_words(text: str) -> list[str]:
    return [t.text for t in prompt_tokens(text)]
