"""How the office sorts names of people and places: by pinyin (李 before 王 before 赵), not by
code point; Latin letters case-folded, so romanised names fall in the same order."""

from __future__ import annotations

from functools import lru_cache

from pypinyin import Style, lazy_pinyin

# Surnames read otherwise than the character's common reading (曾 is Zeng, not ceng; 单 is
# Shan, 解 is Xie): a person's name sorts by its surname's reading. Only for people, not
# places (解放路 is still jiefang).
SURNAME_READINGS = {
    "曾": "zeng", "单": "shan", "仇": "qiu", "区": "ou", "朴": "piao", "解": "xie", "查": "zha", "翟": "zhai",
    "盖": "ge", "乐": "yue", "缪": "miao", "覃": "qin", "种": "chong", "召": "shao", "繁": "po", "秘": "bi",
    "员": "yun", "句": "gou", "尉": "yu", "折": "she", "眭": "sui", "任": "ren", "华": "hua", "万": "wan",
}


def pinyin_key(text: str | None) -> str:
    """A text key that sorts ``text`` by its pinyin (tones left out), then by the text itself,
    compared byte by byte (the views keep it under the C collation)."""
    return reading(text) + "\x01" + text if text else ""


def person_key(text: str | None) -> str:
    """``pinyin_key`` for a person's name: its first character read as a surname."""
    return person_reading(text) + "\x01" + text if text else ""


# Masked names (a surname and a star), areas and site names repeat: a rebuild of 260,000
# residents asks for a few hundred distinct keys, and pypinyin takes ~10 µs each time.
@lru_cache(maxsize=65536)
def reading(text: str) -> str:
    """``text``'s pinyin, tones left out, case-folded."""
    return " ".join(lazy_pinyin(text, style=Style.NORMAL)).casefold()


@lru_cache(maxsize=65536)
def person_reading(text: str) -> str:
    """``reading`` of a person's name: its first character read as a surname."""
    surname = SURNAME_READINGS.get(text[:1])
    if surname is None:
        return reading(text)
    return " ".join(filter(None, (surname, reading(text[1:]) if len(text) > 1 else ""))).casefold()
