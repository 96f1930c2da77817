"""The word tokenization shared by the rules and the learned tier.

The learned tier is trained on exactly these tokens, so any change here means retraining.
Tokens are read through the screening normalizer, so an obfuscated word ("n.a.k.e.d",
fullwidth letters, "p0rn") gives the model the same token as the plain word, and offsets index the
*original* text so that both tiers can point at the words that fired.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from .normalize import LEET, WORD_CHARS, Normalized, normalize

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
# letters around inner leet digits: "p0rn", "s3x", "h3ll" (not "1girl", "4k", "mp4")
_INNER_LEET = re.compile(r"[a-z][a-z0-9]*[0-9][a-z0-9]*[a-z]")
# three or more single letters split by spaces, dots or dashes: "n a k e d", "s.e.x"
_SPLIT = re.compile(r"(?<![a-z0-9])(?:[a-z][ .\-]{1,3}){2,}[a-z](?![a-z0-9])")


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
    splits = [(m.start(), m.end()) for m in _SPLIT.finditer(s)] if " " in s or "." in s else []
    out: list[tuple[str, int, int]] = []
    split_i = 0
    for m in _WORD.finditer(s):
        start, end = m.span()
        if splits:
            while split_i < len(splits) and splits[split_i][1] <= start:
                split_i += 1
            if split_i < len(splits) and splits[split_i][0] <= start < splits[split_i][1]:
                a, b = splits[split_i]
                if start == a:
                    out.append(("".join(c for c in s[a:b] if c in WORD_CHARS), a, b))
                continue
        word = m.group()
        if not word.isalpha() and _INNER_LEET.fullmatch(word):
            word = word.translate(LEET)
        out.append((word, start, end))
    return out


def plain_words(normalized: str) -> list[str] | None:
    """The words of already-normalized text, or None when letters are split ("n a k e d").

    The learned tier's fast path: no offsets, no objects; `tokens_of` handles the rest.
    """
    if ("." in normalized or " " in normalized) and _SPLIT.search(normalized):
        return None
    return [
        w.translate(LEET) if not w.isalpha() and _INNER_LEET.fullmatch(w) else w
        for w in _WORD.findall(normalized)
    ]


def prompt_words(text: str) -> list[str]:
    return [t.text for t in prompt_tokens(text)]
