"""How the office sorts names of people and places: by pinyin (李 before 王 before 赵), not by
code point; Latin letters case-folded, so romanised names fall in the same order."""

from __future__ import annotations

from functools import lru_cache

from pypinyin import Style, lazy_pinyin


def pinyin_key(text: str | None) -> str:
    """A text key that sorts ``text`` by its pinyin (tones left out), then by the text itself,
    compared byte by byte (the views keep it under the C collation)."""
    if not text:
        return ""
    return _pinyin_key(text)


# Masked names (a surname and a star), areas and site names repeat: a rebuild of 260,000
# residents asks for a few hundred distinct keys, and pypinyin takes ~10 µs each time.
@lru_cache(maxsize=65536)
def _pinyin_key(text: str) -> str:
    return " ".join(lazy_pinyin(text, style=Style.NORMAL)).casefold() + "\x01" + text
