"""Identity numbers are validated per GB 11643-1999: length, digits, birth date, check character."""

from datetime import date

import pytest

from domain.common import InvalidValue
from domain.identity import IdentityNumber, check_character
from tests.factories import id_number

VALID = "11010519491231002X"  # the standard's own worked example


def test_the_standards_example_is_valid_and_yields_sex_and_birth_date() -> None:
    number = IdentityNumber.parse(VALID)
    assert number.birth_date == date(1949, 12, 31)
    assert number.sex == "female"  # sequence 002 is even
    assert number.masked == "1101**********002X"


def test_a_lowercase_x_is_accepted_and_normalised() -> None:
    assert IdentityNumber.parse(VALID.lower()).value == VALID


@pytest.mark.parametrize(
    ("raw", "rule"),
    [
        (VALID[:-1] + "1", "id_number_checksum"),
        (VALID[:17], "id_number_length"),
        (VALID + "1", "id_number_length"),
        ("1101051949123A002X", "id_number_format"),
        ("110105" + "19490230" + "001", "id_number_birth_date"),
    ],
)
def test_malformed_numbers_are_refused_naming_the_rule(raw: str, rule: str) -> None:
    if len(raw) == 17 and rule == "id_number_birth_date":
        raw = raw + check_character(raw)
    with pytest.raises(InvalidValue) as refused:
        IdentityNumber.parse(raw)
    assert refused.value.rule == rule
    assert refused.value.field == "id_number"


def test_an_impossible_birth_date_is_refused_even_with_a_correct_check_character() -> None:
    first17 = "11010519490230001"
    with pytest.raises(InvalidValue) as refused:
        IdentityNumber.parse(first17 + check_character(first17))
    assert refused.value.rule == "id_number_birth_date"


def test_generated_numbers_validate_and_carry_the_requested_sex() -> None:
    for male in (True, False):
        number = IdentityNumber.parse(id_number(birth=date(1990, 5, 6), male=male))
        assert number.sex == ("male" if male else "female")
        assert number.birth_date == date(1990, 5, 6)
