"""The word tokenization shared by the rules and the learned tier.

The learned tier is trained on exactly these tokens, so any change here means retraining
(`python -m benchmarks.train_model`). Offsets index the *original* text so that both
tiers can point at the words that fired.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


@dataclass(frozen=True, slots=True)
class Token:
    text: str  # normalized form
    start: int  # span in the original text
    end: int


def basic_fold(text: str) -> str:
    """Length-preserving fold: lowercase, accents and compatibility forms removed."""
    out = []
    for ch in text:
        folded = unicodedata.normalize("NFKD", ch)
        base = "".join(c for c in folded if not unicodedata.combining(c)).lower()
        out.append(
            base[0]
            if len(base) == 1 and base.isascii()
            else (ch.lower() if len(ch.lower()) == 1 else ch)
        )
    return "".join(out)


def prompt_tokens(text: str) -> list[Token]:
    """Words of a prompt with their spans in `text`.

    Placeholder implementation; the screening engine replaces the folding with its full
    normalizer while keeping this signature.
    """
    folded = basic_fold(text)
    return [Token(m.group(), m.start(), m.end()) for m in _WORD.finditer(folded)]


def prompt_words(text: str) -> list[str]:
    return [t.text for t in prompt_tokens(text)]
