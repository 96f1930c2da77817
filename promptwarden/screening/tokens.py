"""The word tokenization shared by the rules and the learned tier.

The learned tier is trained on exactly these tokens, so any change here means retraining.
Tokens are read through the screening normalizer, so an obfuscated word ("n.a.k.e.d",
fullwidth letters, "p0rn") gives the model the same token as the plain word, and offsets index the
*original* text so that both tiers can point at the words that fired.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .normalize import LEET, WORD_CHARS, Normalized, normalize

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
# letters around inner leet digits: "p0rn", "s3x", "h3ll" (not "1girl", "4k", "mp4")
_INNER_LEET = re.compile(r"[a-z][a-z0-9]*[0-9][a-z0-9]*[a-z]")
# three or more single letters split by spaces, dots or dashes: "n a k e d", "s.e.x"
_SPLIT = re.compile(r"(?<![a-z0-9])(?:[a-z][ .\-]{1,3}){2,}[a-z](?![a-z0-9])")


@dataclass(frozen=True, slots=True)
class Token:
    text: str  # normalized form
    start: int  # span in the original text
    end: int


def prompt_tokens(text: str) -> list[Token]:
    """Words of a prompt, normalized, with their spans in `text`."""
    return tokens_of(normalize(text))


def tokens_of(norm: Normalized) -> list[Token]:
    """`prompt_tokens` for text already normalized (the engine normalizes once)."""
    s = norm.text
    splits = [(m.start(), m.end()) for m in _SPLIT.finditer(s)] if " " in s or "." in s else []
    out: list[Token] = []
    split_i = 0
    for m in _WORD.finditer(s):
        start, end = m.start(), m.end()
        while split_i < len(splits) and splits[split_i][1] <= start:
            split_i += 1
        if split_i < len(splits) and splits[split_i][0] <= start < splits[split_i][1]:
            a, b = splits[split_i]
            if start == a:
                joined = "".join(c for c in s[a:b] if c in WORD_CHARS)
                out.append(Token(joined, *norm.span(a, b)))
            continue
        word = m.group()
        if _INNER_LEET.fullmatch(word):
            word = word.translate(LEET)
        out.append(Token(word, *norm.span(start, end)))
    return out


def prompt_words(text: str) -> list[str]:
    return [t.text for t in prompt_tokens(text)]
