"""The API's language follows Accept-Language with its weights (found by a review: the
first tag won whatever its q)."""

import pytest
from starlette.requests import Request

from api.deps import language


def asked(header: str) -> str:
    return language(Request({"type": "http", "headers": [(b"accept-language", header.encode())]}))


@pytest.mark.parametrize(("header", "expected"), [
    ("", "zh"), ("en", "en"), ("zh-CN", "zh"), ("en-GB,en;q=0.9", "en"), ("zh-CN;q=0.2, en;q=0.8", "en"),
    ("en;q=0, zh", "zh"), ("fr, en;q=0.5", "en"), ("fr", "zh"), ("en;q=bad, zh;q=0.1", "zh"), ("EN-us", "en"),
    ("zh;q=0.5, en;q=0.5", "zh"),
])
def test_the_language_with_the_highest_weight_wins(header: str, expected: str) -> None:
    assert asked(header) == expected


def test_a_persons_name_sorts_by_its_surnames_reading_a_places_by_the_common_one() -> None:
    """曾 is Zeng and 单 Shan as surnames (found by a review: they sorted as ceng and dan);
    解放路 is still jiefang as a place."""
    from projections.sorting import person_key, pinyin_key

    zeng, li, zhao, shan = "\u66fe*", "\u674e*", "\u8d75*", "\u5355*"
    assert sorted([zeng, zhao, shan, li], key=person_key) == [li, shan, zeng, zhao]
    assert pinyin_key("\u89e3\u653e\u8def").startswith("jie fang")
    assert person_key("\u89e3\u4f1f").startswith("xie")
