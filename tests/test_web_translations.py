"""Every label of the web pages is translated into Chinese, and each message has one wording."""

from __future__ import annotations

import collections
import re
from pathlib import Path

from babel.messages.pofile import read_po

WEB = Path(__file__).resolve().parent.parent / "api" / "web"
LITERAL = re.compile(r"""\b_\(\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')""")


def catalogue(locale: str) -> dict[str, list[tuple[str, str]]]:
    found: dict[str, list[tuple[str, str]]] = collections.defaultdict(list)
    for po in sorted((WEB / "locale" / locale / "LC_MESSAGES").glob("*.po")):
        with po.open("rb") as source:
            for message in read_po(source, locale=locale):
                if message.id:
                    found[str(message.id)].append((po.name, str(message.string)))
    return found


def used_messages() -> set[str]:
    texts: set[str] = set()  # literal ids only: _(variable) is checked where the variable is made
    for path in [*WEB.glob("templates/*.html"), *WEB.glob("*.py"), *WEB.glob("pages/*.py")]:
        for match in LITERAL.finditer(path.read_text("utf-8")):
            text = match.group(1) if match.group(1) is not None else match.group(2)
            texts.add(text.encode().decode("unicode_escape").encode("latin-1").decode("utf-8"))
    return texts


def test_every_label_the_pages_use_has_a_chinese_translation() -> None:
    zh = catalogue("zh_CN")
    missing = sorted(t for t in used_messages() if not any(s for _, s in zh.get(t, [])))
    assert not missing, f"{len(missing)} labels without a zh_CN translation: {missing[:20]}"


def test_each_message_is_defined_once_per_language() -> None:
    for locale in ("zh_CN", "en"):
        twice = {k: [f for f, _ in v] for k, v in catalogue(locale).items() if len(v) > 1}
        assert not twice, f"{locale}: defined in several catalogues (the last merged wins): {twice}"


def test_every_event_a_history_page_shows_has_a_name_in_words_in_both_languages() -> None:
    """Found by a review: the history pages showed class names (``Operator.ContactChanged``)."""
    from api.routes.history import CATALOGUE
    from api.web.pages.history import KINDS

    shown = {t.name for t in CATALOGUE.by_name.values()
             if any(t.cls.__qualname__.startswith(f"{a.__name__}.") for a, _, _ in KINDS.values())}
    assert len(shown) > 80
    for locale in ("zh_CN", "en"):
        found = catalogue(locale)
        missing = sorted(n for n in shown if not any(s for _, s in found.get(f"event.{n}", [])))
        assert not missing, f"{locale}: events without words: {missing}"


def test_every_kind_of_history_page_has_a_title_in_both_languages() -> None:
    """Found by a review: a subsidy program's history was titled "subsidy-programs"."""
    from api.web.pages.history import KINDS

    for locale in ("zh_CN", "en"):
        found = catalogue(locale)
        missing = sorted(k for k in KINDS if not any(s for _, s in found.get(f"history_kind.{k}", [])))
        assert not missing, f"{locale}: history pages without a title: {missing}"


def test_the_reasons_the_system_writes_read_in_words_in_both_languages() -> None:
    """Found by a review: a site's history said "moved" and a committee's "departed the district"
    in the Chinese pages (reasons the domain writes, not a person)."""
    from api.web.pages.history import reason_in_words

    zh = {"moved": "\u8fc1\u5f80\u4ed6\u5904", "departed": "\u79bb\u5f00\u672c\u533a",
          "departed the district": "\u79bb\u5f00\u672c\u533a"}
    en = {"moved": "moved elsewhere", "departed": "left the district", "departed the district": "left the district"}
    for reason in zh:
        assert reason_in_words("zh-CN", reason) == zh[reason]
        assert reason_in_words("en", reason) == en[reason]
    assert reason_in_words("zh-CN", "went home, then came back") == "went home, then came back"  # typed text stays


def test_a_translation_holds_a_percent_sign_only_as_a_placeholder() -> None:
    """Found while adding the reporting delays page: Jinja formats every translated text with
    ``%``, so a msgstr with a bare ``%`` ("90% ...") failed the whole page with a ValueError.
    (An id with a bare % of its own, a chart's title, is used by Python code only.)"""
    placeholder = re.compile(r"%\((\w+)\)s")
    for locale in ("zh_CN", "en"):
        for message_id, found in catalogue(locale).items():
            names = {name: "x" for name in placeholder.findall(message_id)}
            try:
                message_id % names
            except ValueError:  # an id with a bare % of its own is only shown by Python code, never formatted
                continue
            for po, text in found:
                if not text:
                    continue
                try:
                    text % names
                except (ValueError, KeyError, TypeError) as error:
                    raise AssertionError(f"{locale}/{po}: {message_id!r} -> {text!r}: {error}") from None


def test_every_rule_has_words_in_both_languages() -> None:
    """Found by a review: the English pages showed the domain's own message (with its field names
    and record ids, "registered_on 1900-01-01 is before 1990-01-01") for the rules only the
    Chinese catalogue put in words."""
    zh, en = (catalogue(locale) for locale in ("zh_CN", "en"))
    rules = {locale: {k for k, found in words.items() if k.startswith("rule.") and any(s for _, s in found)}
             for locale, words in (("zh_CN", zh), ("en", en))}
    assert len(rules["zh_CN"]) > 250
    assert not rules["zh_CN"] - rules["en"], f"rules without English words: {sorted(rules['zh_CN'] - rules['en'])}"
    assert not rules["en"] - rules["zh_CN"], f"rules without Chinese words: {sorted(rules['en'] - rules['zh_CN'])}"
