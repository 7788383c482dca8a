"""How the office sorts names of people and places: by pinyin (李 before 王 before 赵), not by
code point; Latin letters case-folded, so romanised names fall in the same order."""

from __future__ import annotations

from pypinyin import Style, lazy_pinyin


def pinyin_key(text: str | None) -> str:
    """A text key that sorts ``text`` by its pinyin (tones left out), then by the text itself,
    compared byte by byte (the views keep it under the C collation)."""
    if not text:
        return ""
    return " ".join(lazy_pinyin(text, style=Style.NORMAL)).casefold() + "\x01" + text
