# ruff: noqa: RUF001  (the homoglyph table is made of lookalike letters on purpose)
"""Normalization against filter evasion, with every character traceable to the original text.

Folding is one-to-one where it can be (a character becomes one ASCII letter, or a NUL marker
when it should vanish), so the common case needs no per-character Python loop: `str.translate`
does the work in C and spans map back by counting the markers. Only characters whose
compatibility form is longer than one letter (ligatures, "½") force the slow path, which keeps
the running total of fold lengths (again from `str.translate`) and bisects it per hit.

Evasions that change word shape (leetspeak, spaced letters, repeated letters) are not folded
into the text, because real prompts are full of "8k", "1 9 5 0" and "sheep": they become
*candidate* words beside the raw ones (see `candidates`), and only a lexicon hit makes them count.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import accumulate, product
from typing import Protocol

GONE = "\x00"  # marks a character that normalization removes

# Discord markdown that can be wedged inside a word: **bold**, __underline__, ~~strike~~,
# ||spoiler||, `code`. Removing them (rather than reading them as spaces) rejoins the word.
_MARKDOWN = "*_~|`"

_INVISIBLE = (
    set(range(0x200B, 0x2010))  # zero-width space/joiners, LRM/RLM
    | set(range(0x2028, 0x202F))  # separators and bidi embeddings
    | set(range(0x2060, 0x2070))  # word joiner, invisible operators, bidi isolates
    | set(range(0xFE00, 0xFE10))  # variation selectors
    | set(range(0xE0000, 0xE0080))  # tag characters
    | {0x00AD, 0x034F, 0x061C, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x180E, 0x3164, 0xFEFF, 0xFFA0}
)

# Lookalikes that NFKD leaves alone (they are letters of other scripts), lowercase only:
# text is lowercased before this table is consulted.
HOMOGLYPHS = {
    # Cyrillic
    "а": "a", "б": "b", "в": "b", "г": "r", "д": "d", "е": "e", "ё": "e", "ж": "x", "з": "3",
    "и": "u", "й": "u", "к": "k", "л": "n", "м": "m", "н": "h", "о": "o", "п": "n", "р": "p",
    "с": "c", "т": "t", "у": "y", "ф": "f", "х": "x", "ц": "u", "ч": "4", "ш": "w", "щ": "w",
    "ъ": "b", "ы": "bi", "ь": "b", "э": "e", "ю": "io", "я": "r", "є": "e", "ѕ": "s", "і": "i",
    "ї": "i", "ј": "j", "ԁ": "d", "ԛ": "q", "ԝ": "w", "һ": "h", "ӏ": "l", "ո": "n", "ս": "u",
    "օ": "o", "ɡ": "g", "ɑ": "a", "ı": "i", "ȷ": "j", "ʏ": "y", "ɪ": "i", "ᴀ": "a", "ʙ": "b",
    "ᴄ": "c", "ᴅ": "d", "ᴇ": "e", "ғ": "f", "ʜ": "h", "ᴊ": "j", "ᴋ": "k", "ʟ": "l", "ᴍ": "m",
    "ɴ": "n", "ᴏ": "o", "ᴘ": "p", "ʀ": "r", "ꜱ": "s", "ᴛ": "t", "ᴜ": "u", "ᴠ": "v", "ᴡ": "w",
    "ᴢ": "z",
    # Greek
    "α": "a", "β": "b", "γ": "y", "δ": "d", "ε": "e", "ζ": "z", "η": "n", "θ": "o", "ι": "i",
    "κ": "k", "λ": "l", "μ": "u", "ν": "v", "ξ": "e", "ο": "o", "π": "n", "ρ": "p", "σ": "o",
    "ς": "s", "τ": "t", "υ": "u", "φ": "f", "χ": "x", "ψ": "w", "ω": "w", "ϲ": "c", "ϳ": "j",
    # Latin extras NFKD keeps whole
    "ø": "o", "ł": "l", "đ": "d", "ħ": "h", "ß": "ss", "æ": "ae", "œ": "oe", "þ": "th",
    "ð": "d", "ƒ": "f", "ŋ": "n",
}  # fmt: skip

LEET = str.maketrans({"4": "a", "@": "a", "3": "e", "1": "i", "!": "i", "0": "o", "5": "s",
                      "$": "s", "7": "t", "+": "t", "8": "b", "9": "g", "|": "l"})  # fmt: skip
LEET_L = str.maketrans({"1": "l"})  # "1" reads as i or as l: "k1ll", "b1tch"
# The same tables for bytes: `_ascii_translate` decodes a whole message in C.
_LEET_BYTES = bytes(ord(chr(c).translate(LEET)) for c in range(256))
_LEET_L_BYTES = bytes(ord(chr(c).translate(LEET_L).translate(LEET)) for c in range(256))


def _ascii_translate(text: str, table: bytes) -> str:
    """`text` with ASCII characters mapped by a bytes table, others untouched.

    `str.translate` looks every character up in a dict once the text holds any non-ASCII
    character (0.5 ms for 4,000); UTF-8 never puts an ASCII byte inside a longer character,
    so translating the encoded bytes changes exactly the ASCII characters, in place.
    """
    return text.encode("utf-8", "surrogatepass").translate(table).decode("utf-8", "surrogatepass")


WORD_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")


def _fold_char(ch: str) -> str:
    """The folded form of one character: usually one ASCII char, GONE, or itself."""
    cp = ord(ch)
    if ch in _MARKDOWN or cp in _INVISIBLE:
        return GONE
    if cp < 128:
        return ch.lower()
    low = ch.lower()
    if len(low) == 1 and low in HOMOGLYPHS:
        return HOMOGLYPHS[low]
    if unicodedata.category(ch) in ("Mn", "Me", "Cf", "Cc"):
        return GONE
    if unicodedata.decomposition(ch).startswith(("<narrow>", "<wide>")):
        # halfwidth katakana and Hangul, fullwidth signs: their usual width, one character
        wide = unicodedata.normalize("NFKC", ch)
        if len(wide) == 1 and not unicodedata.combining(wide) and not wide.isascii():
            return wide
    decomposed = unicodedata.normalize("NFKD", low)
    base = "".join(c for c in decomposed if not unicodedata.combining(c))
    if not base:
        return GONE
    base = "".join(HOMOGLYPHS.get(c, c) for c in base.lower())
    if base.isascii():
        # NFKD maps fancy spaces to " " and some letters to multi-letter strings ("ﬁ" -> "fi")
        return base if base.strip() else " "
    return low if len(low) == 1 else ch


class _FoldTable(dict[int, str]):
    """`str.translate` table for astral code points, learning each one once."""

    def __missing__(self, cp: int) -> str:
        folded = _fold_char(chr(cp))
        if len(self) < 100_000:
            self[cp] = folded
        return folded


_TABLE = _FoldTable()
_UNKNOWN = "\x01"  # a control character: folds to GONE, so it can mark "not learned yet"
# The Basic Multilingual Plane as a list: translate indexes it without hashing.
_BMP: list[str] = [_UNKNOWN] * 0x10000
for _cp in range(128):
    _BMP[_cp] = _fold_char(chr(_cp))
_BMP[1] = GONE
# The ASCII part as a bytes table: `bytes.translate` of an ASCII prompt runs at memory speed,
# where `str.translate` looks each character up.
_ASCII_FOLD = bytes(ord(_BMP[c]) for c in range(128)) + bytes(range(128, 256))


def _astral(text: str) -> bool:
    return len(text.encode("utf-16-le", "surrogatepass")) != 2 * len(text)


def _fold(text: str) -> str:
    """`text` folded character by character (see `_fold_char`)."""
    if text.isascii():
        return text.encode("ascii").translate(_ASCII_FOLD).decode("ascii")
    if _astral(text):
        return text.translate(_TABLE)  # astral characters: math letters, emoji
    return _translate_learning(text, _BMP, _UNKNOWN, lambda cp: _fold_char(chr(cp)))


def _translate_learning(
    text: str, table: list[str], unknown: str, learn: Callable[[int], str]
) -> str:
    """`text.translate(table)` for a lazily filled BMP list: entries still `unknown` are
    learned for the characters of `text` first, then the text is translated again."""
    out = text.translate(table)
    if unknown in out:
        for ch in set(text):
            if table[ord(ch)] == unknown:
                table[ord(ch)] = learn(ord(ch))
        out = text.translate(table)
    return out


_BLOCK = 64
_RUNS_OF_ANY = re.compile(r"(.)\1*", re.DOTALL)


@dataclass(slots=True)
class Normalized:
    """Normalized text plus the way back to the original.

    `text` is lowercase, homoglyph/fullwidth/diacritic-free, with invisible characters,
    combining marks and markdown removed. `orig(i)` is the original index of `text[i]`.
    """

    original: str
    text: str
    _folded: str | None = None  # same length as `original`, GONE where removed
    _ends: list[int] | None = None  # slow path: normalized length through each original char
    _blocks: list[int] | None = None  # kept characters before each block of _folded
    # block -> kept positions; made on the first lookup, as most prompts never ask one
    _kept: dict[int, list[int]] | None = None

    def orig(self, i: int) -> int:
        """Original index of normalized index `i` (`len(text)` maps to `len(original)`)."""
        if i >= len(self.text):
            return len(self.original)
        if self._ends is not None:
            return bisect_right(self._ends, i)
        folded = self._folded
        if folded is None:
            return i
        blocks = self._blocks
        if blocks is None:
            # kept-character counts per block: C-level counts, no per-character loop
            blocks = [0]
            for k in range(0, len(folded), _BLOCK):
                size = min(_BLOCK, len(folded) - k)
                blocks.append(blocks[-1] + size - folded.count(GONE, k, k + size))
            self._blocks = blocks
        b = bisect_right(blocks, i) - 1
        known = self._kept
        if known is None:
            known = self._kept = {}
        kept = known.get(b)
        if kept is None:
            base = b * _BLOCK
            chunk = folded[base : base + _BLOCK]
            kept = [base + k for k, c in enumerate(chunk) if c != GONE]
            known[b] = kept
        return kept[i - blocks[b]]

    @property
    def identity(self) -> bool:
        """True when every normalized index equals its original index (most prompts)."""
        return self._folded is None and self._ends is None

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Original span of normalized span [start, end)."""
        if end <= start:
            o = self.orig(start)
            return o, o
        return self.orig(start), self.orig(end - 1) + 1

    def from_original(self, positions: list[int]) -> list[int]:
        """Normalized indices of sorted original `positions`: the first kept character at or
        after each. One C-level count per position, so thousands of regions stay cheap."""
        if self._ends is not None:
            ends = self._ends
            return [ends[min(p, len(ends)) - 1] if p > 0 else 0 for p in positions]
        folded = self._folded
        if folded is None:
            return list(positions)
        out: list[int] = []
        gone = 0
        prev = 0
        for p in positions:
            p = min(p, len(folded))
            gone += folded.count(GONE, prev, p)
            prev = p
            out.append(p - gone)
        return out

    def project(self, aligned: str) -> str:
        """A string aligned with the original text, re-aligned with the normalized text
        (one character per normalized index), in one step per run of equal characters."""
        if self.identity:
            return aligned
        runs = [m.start() for m in _RUNS_OF_ANY.finditer(aligned)]
        mapped = self.from_original([*runs, len(aligned)])
        return "".join(aligned[a] * (mapped[k + 1] - mapped[k]) for k, a in enumerate(runs))

    @property
    def index(self) -> list[int]:
        """The full normalized-to-original index (built on demand)."""
        return [self.orig(i) for i in range(len(self.text))]


_HALFWIDTH_MARKS = {"\uff9e": "\u3099", "\uff9f": "\u309a"}  # halfwidth (han)dakuten


def _compose_marks(text: str, folded: str) -> str:
    """Halfwidth "ｸﾞ" is two characters for one kana: the kana takes the mark ("グ") and the
    mark folds to GONE, so the text keeps one folded character per original one."""
    out = list(folded)
    for i, ch in enumerate(text):
        mark = _HALFWIDTH_MARKS.get(ch)
        if mark is not None and i and out[i - 1] != GONE:
            composed = unicodedata.normalize("NFC", out[i - 1] + mark)
            if len(composed) == 1:
                out[i - 1] = composed
                out[i] = GONE
    return "".join(out)


def normalize(text: str) -> Normalized:
    folded = _fold(text)
    if len(folded) == len(text) and ("\uff9e" in text or "\uff9f" in text):
        folded = _compose_marks(text, folded)
    if len(folded) == len(text):
        if GONE not in folded:
            return Normalized(text, folded)
        return Normalized(text, folded.replace(GONE, ""), folded)
    # Slow path: some character expanded to several ("ﬁ" -> "fi"). The map back is the
    # running total of fold lengths, which `str.translate` gives as one character each.
    if _astral(text):
        lengths = text.translate(_LENGTHS)
    else:
        lengths = _translate_learning(text, _BMP_LENGTHS, _NOT_LEARNED, _LENGTHS.__getitem__)
    ends = list(accumulate(lengths.encode("latin-1")))
    return Normalized(text, folded.replace(GONE, ""), None, ends)


class _LengthTable(dict[int, str]):
    """`str.translate` table: each code point to chr(length of its fold), GONE counting 0."""

    def __missing__(self, cp: int) -> str:
        folded = _TABLE[cp]
        length = chr(0 if folded == GONE else len(folded))
        if len(self) < 100_000:
            self[cp] = length
        return length


_LENGTHS = _LengthTable()


_NOT_LEARNED = "\xff"  # no fold is 255 characters long
# `_LENGTHS` for the Basic Multilingual Plane as a plain list: translate indexes it in C
_BMP_LENGTHS: list[str] = [_NOT_LEARNED] * 0x10000


# ---- candidate words for shape-changing evasions -------------------------------------------

# A token that mixes letters with leet digits/symbols: "s3x", "p0rn", "$lut", "k1ll".
_LEET_TOKEN = re.compile(
    r"(?<![a-z0-9@$!+|])(?=[a-z0-9@$!+|]*[a-z])(?=[a-z0-9@$!+|]*[4@31!05$7+89|])[a-z0-9@$!+|]*[a-z0-9@$]"
)
_LEET_WORD_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789@$!+|")
_LEET_WORDS = re.compile(r"[a-z0-9@$!+|]+")
_HAS_LETTER = re.compile(r"[a-z]")
_TWO_ONES = re.compile(r"1[a-z0-9@$!+|]*1")
# A letter beside a leet character. Led by the leet character alone, so the regex engine
# skips in C to the few digits and symbols of a prompt instead of trying every letter.
_LEET_HINT = re.compile(r"[4@31!05$7+89|](?:(?<=[a-z][4@31!05$7+89|])|[a-z])")
_NON_LEET = bytes(c for c in range(128) if chr(c) not in "4@31!05$7+89|")
# The digits and symbols the leet and fragment hints start from: most prompts without a
# digit hold none, and one C-level pass over the text then stands for both regexes.
_NON_SYMBOL = bytes(c for c in range(128) if chr(c) not in "0123456789@$!*#%+|")
_NON_FRAGMENT_SYMBOL = bytes(c for c in range(128) if chr(c) not in "0123456789@$!*#%")
# Three or more single characters separated by spaces, dots, dashes...: "n a k e d", "s.e.x".
_SPLIT_RUN = re.compile(
    r"(?<![a-z0-9@$])(?:[a-z0-9@$!][ .\-,/\\:+·•]{1,3}){2,}[a-z0-9@$!](?![a-z0-9@$])"
)
# `_SPLIT_RUN` needs three single characters apart by separators, the first not after a
# word character. In ASCII text that shows in a class string (run characters "a", "!" as
# itself since it may also stand before a run, anything else " ") as " a", spaces, "a",
# spaces, "a ": a regex led by a literal, which the regex engine finds in C, where
# `_SPLIT_RUN` itself is tried at every position of the text ("--ar 3:2" has two singles).
_RUN_CLASSES = bytes(
    ord("a") if c in b"abcdefghijklmnopqrstuvwxyz0123456789@$"
    else ord("!") if c == ord("!")
    else ord(" ")
    for c in range(256)
)  # fmt: skip
_RUN_SHAPE = re.compile(rb" a  {0,2}a {1,3}a ")  # " a " + " {0,2}": a longer literal prefix
_RUN_SHAPE_BANG = re.compile(rb"[ !][a!] {1,3}[a!] {1,3}[a!][ !]")


def may_hold_split_run(norm: str) -> bool:
    """False only when `_SPLIT_RUN` cannot match `norm` (most prompts)."""
    if not norm.isascii():
        return True
    shape = b" " + norm.encode("ascii").translate(_RUN_CLASSES) + b" "
    return (_RUN_SHAPE_BANG if "!" in norm else _RUN_SHAPE).search(shape) is not None


_TRIPLE = re.compile(r"([a-z])\1\1+")


def _may_triple(norm: str) -> bool:
    """False only when no character of `norm` comes three times in a row (so `_TRIPLE` cannot
    match): the UTF-8 bytes as one integer, XORed with themselves shifted by a byte, have a
    zero byte where two neighbours are equal; two zeros in a row mean three equal bytes."""
    raw = norm.encode("utf-8", "surrogatepass")
    n = len(raw)
    if n < 3:
        return False
    x = int.from_bytes(raw, "little")
    y = x ^ (x >> 8)
    pairs = (y | (y >> 8)).to_bytes(n, "little")
    # The last two bytes hold the last byte of the text, which is not NUL (normalized
    # text never holds one), so they are never zero and need no slicing off: an int
    # membership test is a memchr, ten times quicker than slicing and a bytes search.
    return 0 in pairs if raw[-1] else 0 in pairs[: n - 2]


_BRACE_RUN = re.compile(r"[{}]+")
_RUN = re.compile(r"([a-z])\1+")


class Positions(Protocol):
    def __getitem__(self, i: int, /) -> int: ...


SEP = "\x02"  # joins batched candidate pieces: never in a key, never a word character


@dataclass(frozen=True, slots=True)
class Candidate:
    """An alternative reading of part of the normalized text.

    `positions[k]` is the normalized index of `text[k]` (-1 for a `SEP` between pieces);
    `substring` says that any part of `text` may match (spaced letters carry no word
    boundaries), otherwise only whole words. Pieces of one kind are batched into one text
    joined by `SEP`, so hostile text with hundreds of them costs one automaton pass, not one each.
    """

    text: str
    positions: Positions | None  # None: same positions as the normalized text
    substring: bool = False
    accept: Callable[[int, int], bool] | None = None  # which hits [start, end) count
    shortest: int = 3  # substring readings: the shortest key that may match inside


class _LeetCheck:
    """Whether a hit in leet-decoded text is new and reads leetspeak, not a number.

    A hit over unchanged text is one the plain scan found already; a decoded word must
    mix letters and leet characters ("p0rn", "$lut"), so "455" never reads as a word.
    """

    __slots__ = ("_decoded", "_norm")

    def __init__(self, norm: str, decoded: str) -> None:
        self._norm = norm
        self._decoded = decoded

    def __call__(self, start: int, end: int) -> bool:
        raw = self._norm[start:end]
        if raw == self._decoded[start:end]:
            return False
        # widen to whole words: a hit may be a word form cut from a longer token
        norm = self._norm
        while start > 0 and norm[start - 1] in _LEET_WORD_CHARS:
            start -= 1
        while end < len(norm) and norm[end] in _LEET_WORD_CHARS:
            end += 1
        return all(
            _HAS_LETTER.search(word) is not None
            for word in _LEET_WORDS.findall(norm, start, end)
            if word != word.translate(LEET)
        )


class _Batch:
    """Pieces of text with their normalized positions, joined by `SEP`."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.positions: list[int] = []

    def add(self, text: str, positions: list[int] | range) -> None:
        if self.parts:
            self.parts.append(SEP)
            self.positions.append(-1)
        self.parts.append(text)
        self.positions.extend(positions)

    def candidate(self, *, substring: bool = False, shortest: int = 3) -> Candidate | None:
        if not self.parts:
            return None
        return Candidate("".join(self.parts), self.positions, substring, shortest=shortest)


_SPLIT_SEPARATORS_CHARS = " .-,/\\:+·•"  # as in _SPLIT_RUN
_SPLIT_SEPARATORS = str.maketrans({c: None for c in _SPLIT_SEPARATORS_CHARS})


def candidates(norm: str, ignored_from: int | None = None) -> Iterator[Candidate]:
    """Alternative readings of evasive words in normalized text `norm`.

    Leetspeak and repeated letters are read over the whole text, so phrases still match
    ("c0v3r3d 1n bl00d"); spaced letters are read run by run, as one word without boundaries.
    `ignored_from` is where the text's ignored tail starts (Midjourney parameters such as
    `--ar 16:9`): a hit starting there counts for nothing, so fragment runs are not read there.
    """
    symbols = norm.encode("ascii", "ignore").translate(None, _NON_SYMBOL)
    has_leet = bool(symbols) and bool(symbols.translate(None, _NON_LEET))
    if has_leet and _LEET_HINT.search(norm):
        # The whole text decoded in C; `_LeetCheck` then keeps only hits over a decoded
        # word that has a letter, as a per-word regex callback costs 1 ms on hostile text.
        decoded = _ascii_translate(norm, _LEET_BYTES)
        yield Candidate(decoded, None, accept=_LeetCheck(norm, decoded))
        if "1" in norm:
            decoded_l = _ascii_translate(norm, _LEET_L_BYTES)
            yield Candidate(decoded_l, None, accept=_LeetCheck(norm, decoded_l))
        if _TWO_ONES.search(norm):
            # "k1ll1ng": each "1" may be i or l; try every mix on words with a few of them
            mixes = _Batch()
            for m in _LEET_TOKEN.finditer(norm):
                tok = m.group()
                ones = tok.count("1")
                if 2 <= ones <= 4:
                    span = range(m.start(), m.end())
                    for mix in product("il", repeat=ones):
                        it = iter(mix)
                        word = "".join(next(it) if c == "1" else c for c in tok)
                        mixes.add(word.translate(LEET), span)
            if (batch := mixes.candidate()) is not None:
                yield batch
    if (" " in norm or "." in norm or "-" in norm) and may_hold_split_run(norm):
        runs = _Batch()
        decoded_runs = _Batch()
        for m in _SPLIT_RUN.finditer(norm):
            # a run alternates one letter and 1-3 separators: letters are where separators are not
            run = m.group()
            base = m.start()
            joined = run.translate(_SPLIT_SEPARATORS)
            if len(joined) * 2 - 1 == len(run):  # the usual "n a k e d": every other character
                pos: list[int] | range = range(base, base + len(run), 2)
            else:
                pos = [base + k for k, ch in enumerate(run) if ch not in _SPLIT_SEPARATORS_CHARS]
            runs.add(joined, pos)
            decoded = joined.translate(LEET)
            if decoded != joined:
                decoded_runs.add(decoded, pos)
        for batch_ in (runs, decoded_runs):
            if (cand := batch_.candidate(substring=True)) is not None:
                yield cand
    if symbols and symbols.translate(None, _NON_FRAGMENT_SYMBOL) and _FRAGMENT_HINT.search(norm):
        yield from _fragments(norm, len(norm) if ignored_from is None else ignored_from)
    if "<" in norm or "[" in norm:
        noise = _without_noise(norm)
        if noise is not None:
            yield noise
    if _may_triple(norm) and _TRIPLE.search(norm):
        for keep in (1, 2):
            yield _collapse(norm, keep, _TRIPLE)
    if "{" in norm or "}" in norm:
        # "{nu}{de}", "{red,nu}de": Midjourney joins options to their neighbours
        yield _collapse(norm, 0, _BRACE_RUN)


# Short fragments with a symbol among them, split by spaces or punctuation: "pu $$ ssy",
# "p0 rn", "s3 x". Fragment and separator characters are disjoint, so matching is linear.
_FRAG = "a-z0-9@$!*#%"
_FRAG_SEP = r" .\-,/\\:+·•_~"
# The inner repeats are possessive: a shorter fragment or separator is followed by another
# of its kind, never the other, so giving characters back never matched; it only cost
# steps at every word the search passes.
_FRAGMENT_RUN = re.compile(
    rf"(?<![{_FRAG}])(?:[{_FRAG}]{{1,3}}+[{_FRAG_SEP}]{{1,3}}+)+[{_FRAG}]{{1,3}}+(?![{_FRAG}])"
)
# A separator beside a digit or symbol, led by the digit or symbol (see _LEET_HINT).
_FRAGMENT_HINT = re.compile(rf"[@$!*#%0-9](?:(?<=[{_FRAG_SEP}][@$!*#%0-9])|[{_FRAG_SEP}])")
_LETTER_AND_SYMBOL = re.compile(r"[a-z][^a-z]*?[@$!0-9]|[@$!0-9][^@$!0-9]*?[a-z]")
_FRAGMENT_INSIDE = 5  # keys at least this long may match inside a joined run


def _fragments(norm: str, ignored_from: int) -> Iterator[Candidate]:
    """Runs of short fragments with a leet digit or symbol in them, each read as one word.

    The run is joined, leet-decoded and its letter runs cut to two ("pu$$ssy" -> "pussy"),
    then read whole, and for longer keys also inside ("a pu $$ ssy" still reads "pussy").
    Joining and decoding happen in C; only a run with a tripled letter takes a Python pass.
    """
    begin = _first_run_start(norm)
    if begin >= ignored_from:
        return  # every run it keeps lies in the ignored tail ("a cat --ar 16:9")
    batch = _Batch()
    for m in _FRAGMENT_RUN.finditer(norm, begin):
        if m.start() >= ignored_from:
            break  # the rest lies in the ignored tail, and is not even searched
        run = m.group()
        joined = run.translate(_FRAG_DROP)  # most runs ("8 k", "16:9") end here
        if len(joined) < 3 or joined.isdigit() or not _LETTER_AND_SYMBOL.search(joined):
            continue
        base = m.start()
        pos = [base + k for k, ch in enumerate(run) if ch not in _FRAG_DROP_CHARS]
        letters = joined.translate(LEET)
        if _TRIPLE_ANY.search(letters):
            # "ssss" reads "ss" (the doubled letters of "pussy", "ass"): cut per run, in C
            parts: list[str] = []
            kept: list[int] = []
            last = 0
            for t in _TRIPLE_ANY.finditer(letters):
                parts.append(letters[last : t.start() + 2])
                kept += pos[last : t.start() + 2]
                last = t.end()
            parts.append(letters[last:])
            kept += pos[last:]
            letters, pos = "".join(parts), kept
        if len(letters) >= 3:
            batch.add(letters, pos)
    if (whole := batch.candidate()) is not None:
        yield whole
        # built directly: `dataclasses.replace` costs more than the scan of a short run
        yield Candidate(whole.text, whole.positions, True, whole.accept, _FRAGMENT_INSIDE)


# Fragment text as classes: "y" a digit or symbol a kept run needs, "f" another fragment
# character, "s" a separator, "o" anything else (never inside a run).
_FRAG_CLASSES = bytes(
    ord("y") if c in b"@$!0123456789"
    else ord("f") if c in b"abcdefghijklmnopqrstuvwxyz*#%"
    else ord("s") if c in b" .-,/\\:+_~"
    else ord("o")
    for c in range(256)
)  # fmt: skip


def _first_run_start(norm: str) -> int:
    """Where `_fragments` may start searching: no run it keeps starts before.

    A kept run holds a digit or symbol (`_LETTER_AND_SYMBOL`), so none ends before the first
    one. Runs are made of fragment characters and separators with fragments of at most three,
    so none spans a character of neither kind or a word of four letters: searching from the
    last such place before the first digit finds every run that can be kept, and the prompt
    before "8k" or "--ar 16:9" is not searched. A run starts with a fragment character, so
    the separators after that place are skipped too: the " --" of "a cat --ar 16:9" leaves
    the start in the parameters. ASCII text only (two separators are not).
    """
    if not norm.isascii():
        return 0
    shape = norm.encode("ascii").translate(_FRAG_CLASSES)
    first = shape.find(b"y")
    if first < 0:
        return len(norm)  # no digit or symbol: no run is kept
    word = shape.rfind(b"ffff", 0, first)
    start = max(shape.rfind(b"o", 0, first) + 1, word + 4 if word >= 0 else 0)
    fragment = _FRAGMENT_CHAR.search(shape, start)
    return first if fragment is None else fragment.start()  # none: `first` is one


_FRAGMENT_CHAR = re.compile(rb"[fy]")  # a fragment character in `_FRAG_CLASSES` text


_FRAG_DROP_CHARS = frozenset(" .-,/\\:+·•_~*#%")  # separators, and symbols read as nothing
_FRAG_DROP = str.maketrans(dict.fromkeys(_FRAG_DROP_CHARS))
_TRIPLE_ANY = re.compile(r"(.)\1\1+")


# Tokens of text encoders and markup pasted into prompts: "<|startoftext|>", "</s>", "[SEP]".
# Markdown folding has removed "|" already.
_NOISE = re.compile(r"</?[a-z_]{1,20}>|\[(?:cls|sep|pad|mask|unk)\]")


_NOISE_REACH = 64  # a key is at most 60 characters (and a few for its forms)


def _without_noise(norm: str) -> Candidate | None:
    """The text around noise tokens with the tokens cut out, so words they split rejoin
    ("na<|eot|>ked"). Only `_NOISE_REACH` characters either side are read: farther text
    reads as in the plain scan, so a message full of tokens is not copied whole."""
    tokens = [m.span() for m in _NOISE.finditer(norm)]
    if not tokens:
        return None
    batch = _Batch()
    text: list[str] = []
    pos: list[int] = []
    lo = max(0, tokens[0][0] - _NOISE_REACH)
    for k, (start, end) in enumerate(tokens):
        text.append(norm[lo:start])
        pos.extend(range(lo, start))
        nxt = tokens[k + 1][0] if k + 1 < len(tokens) else len(norm)
        if nxt - end <= 2 * _NOISE_REACH:
            lo = end  # the gap joins this group to the next token
            continue
        text.append(norm[end : end + _NOISE_REACH])
        pos.extend(range(end, end + _NOISE_REACH))
        batch.add("".join(text), pos)
        text, pos = [], []
        lo = nxt - _NOISE_REACH
    if text or lo < len(norm):
        text.append(norm[lo:])
        pos.extend(range(lo, len(norm)))
        batch.add("".join(text), pos)
    return batch.candidate()


class Shifted:
    """Positions of a collapsed text: each index plus the letters cut before it.

    Kept as breakpoints rather than a list of every position, so a 4,000-character message
    full of "nuuuude" costs one entry per run, and the lookups happen only for hits.
    """

    __slots__ = ("_at", "_shift", "keep")

    def __init__(self, at: list[int], shift: list[int], keep: int) -> None:
        self._at = at  # collapsed index from which `shift` applies
        self._shift = shift
        self.keep = keep  # letters kept of each cut run

    def __getitem__(self, i: int) -> int:
        k = bisect_right(self._at, i) - 1
        return i + self._shift[k] if k >= 0 else i

    @property
    def cuts(self) -> list[int]:
        """Collapsed index just after each cut run's kept letters."""
        return self._at


def _collapse(norm: str, keep: int, runs: re.Pattern[str]) -> Candidate:
    """`norm` with each match of `runs` cut to its first `keep` characters, positions kept."""
    parts: list[str] = []
    at: list[int] = []
    shift: list[int] = []
    cut = 0
    pos = 0
    for m in runs.finditer(norm):
        start, end = m.span()
        parts.append(norm[pos : start + keep])
        at.append(start + keep - cut)
        cut += end - start - keep
        shift.append(cut)
        pos = end
    parts.append(norm[pos:])
    return Candidate("".join(parts), Shifted(at, shift, keep))


def squeeze(word: str) -> str:
    """Collapse every run of a repeated letter to one letter."""
    return _RUN.sub(r"\1", word)


def doubled(word: str) -> set[str]:
    """`word` with one or two of its letters doubled ("naked" -> "nnaked", "naakedd").

    Matching these as keys reads "nnaked" as "naked" at no run-time cost, where squeezing
    every doubled letter of every prompt would cost a pass and misread "good" as "god".
    """
    ones = {word[: i + 1] + word[i:] for i in range(len(word)) if word[i].isalpha()}
    twos = {w[: i + 1] + w[i:] for w in ones for i in range(len(w)) if w[i].isalpha()}
    return {v for v in ones | twos if squeeze(v) == word}
