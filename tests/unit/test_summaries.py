"""A history line reads as the office writes it: amounts as money, codes in words, in the
reader's language (``zh``, ``zh-CN`` or ``en``), and every event with a summary has one that
fills from its own fields."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from string import Formatter
from types import SimpleNamespace

import pytest

from api.summaries import SUMMARIES, summary


def line(name: str, lang: str, **fields: object) -> str:
    return summary(name, SimpleNamespace(**fields), lang, lambda code: {"xinqi": "新碶街道"}.get(code, code))


def test_amounts_read_as_money_not_as_a_question_mark() -> None:
    assert line("SubsidyApplication.PaymentRecorded", "en", amount=Decimal("9000"), paid_on=date(2026, 11, 25)) == (
        "Paid 9,000.00 yuan on 2026-11-25")
    assert line("SubsidyProgram.Opened", "zh", fiscal_year=2026, budget=Decimal("1200000.5")) == (
        "设立2026年度补助项目，预算1,200,000.50元")


@pytest.mark.parametrize(("lang", "expected"), [
    ("zh", "登记纠纷（劳资纠纷），优先级：高，发生于2026-11-01"),
    ("zh-CN", "登记纠纷（劳资纠纷），优先级：高，发生于2026-11-01"),
    ("en", "Dispute logged (Wages and labour, priority: High) that arose on 2026-11-01"),
])
def test_codes_read_in_words_in_the_readers_language(lang: str, expected: str) -> None:
    assert line("DisputeCase.Logged", lang, category="wages_and_labour", priority="high",
                occurred_on=date(2026, 11, 1)) == expected


def test_a_field_that_means_another_thing_in_another_event_takes_that_events_words() -> None:
    assert line("Pairing.ContributionDelivered", "zh", kind="goods", delivered_on=date(2026, 4, 1)) == (
        "2026-04-01共建单位投入：出物")
    assert line("Resident.ServiceDelivered", "en", kind="legal_aid", delivered_on=date(2026, 4, 1)) == (
        "Service delivered on 2026-04-01: legal aid")
    assert line("Resident.MovedToPrivateHousing", "zh-CN", housing_kind="rented", area="xinqi",
                effective_date=date(2026, 5, 1)) == "2026-05-01迁至新碶街道（租房）"


def test_an_unknown_code_is_shown_as_it_is() -> None:
    assert line("DisputeCase.Escalated", "en", to="district_court") == "Escalated to district court"


def test_each_template_names_the_same_fields_in_both_languages() -> None:
    for name, (zh, en) in SUMMARIES.items():
        fields = [{f for _, f, _, _ in Formatter().parse(t) if f} for t in (zh, en)]
        assert fields[0] == fields[1], name
