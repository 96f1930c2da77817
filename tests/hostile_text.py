"""Text that breaks naive parsers, shared by the fuzz tests and the end-to-end bad-input test."""

from __future__ import annotations

import unicodedata
from functools import cache

DISCORD_LIMIT = 4000  # characters in one message (with Nitro)
# Every Unicode general category except Cs: Discord content is UTF-8, so no lone surrogates.
GENERAL_CATEGORIES = (
    "Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Nd", "Nl", "No", "Pc", "Pd", "Ps", "Pe",
    "Pi", "Pf", "Po", "Sm", "Sc", "Sk", "So", "Zs", "Zl", "Zp", "Cc", "Cf", "Co", "Cn",
)  # fmt: skip
ZALGO = "z\u0301\u0316\u0337\u0489\u035c\u0361"
FULLWIDTH_NUDE = "\uff4e\uff55\uff44\uff45"


@cache
def every_category() -> str:
    """The first character of each general category, in GENERAL_CATEGORIES order."""
    found: dict[str, str] = {}
    for cp in range(0x30000):
        if 0xD800 <= cp < 0xE000:
            continue
        category = unicodedata.category(chr(cp))
        found.setdefault(category, chr(cp))
    return "".join(found[c] for c in GENERAL_CATEGORIES)
