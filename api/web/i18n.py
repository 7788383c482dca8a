"""Translations for the web pages: Babel message catalogues (``.po`` files in
``api/web/locale/<locale>/LC_MESSAGES/``), compiled in memory at start.

Message ids are English. zh-CN is the default language; English pages use the ids as they
are, except for ids of the form ``kind.value`` (an enum value such as
``status.in_site``, or a rule such as ``rule.site_full``), which both catalogues translate.
Every ``.po`` file of a locale is loaded and merged, so each group of pages keeps its own
file."""

from __future__ import annotations

import gettext
from functools import cache
from io import BytesIO
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

from projections.sorting import person_reading, reading

LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGES = {"zh-CN": "zh_CN", "en": "en"}
DEFAULT = "zh-CN"


@cache
def translations(lang: str) -> gettext.NullTranslations:
    """Every catalogue of the language merged into one (compiled in memory)."""
    merged = Translations()
    folder = LOCALE_DIR / LANGUAGES.get(lang, "zh_CN") / "LC_MESSAGES"
    for po in sorted(folder.glob("*.po")):
        with po.open("rb") as source:
            catalog = read_po(source, locale=LANGUAGES.get(lang, "zh_CN"))
        compiled = BytesIO()
        write_mo(compiled, catalog)
        compiled.seek(0)
        merged.merge(Translations(compiled))
    return merged


def gettext_for(lang: str) -> gettext.NullTranslations:
    return translations(lang if lang in LANGUAGES else DEFAULT)


def label(lang: str, kind: str, value: object) -> str:
    """An enum value or rule in words: ``kind.value`` from the catalogue, else the value."""
    if value is None:
        return ""
    key = f"{kind}.{value}"
    text = gettext_for(lang).gettext(key)
    return str(value).replace("_", " ") if text == key else text


def sort_key(text: str | None, *, person: bool = False) -> str:
    """How the office sorts names, in every language: by pinyin (not by code point; a person's
    surname read as a surname, 曾 Zeng), Latin letters case-folded, as the views order them
    (found by a review: the English pages listed Chinese names by code point)."""
    if not text:
        return ""
    return person_reading(text) if person else reading(text)
