"""PRC resident identity numbers (GB 11643-1999)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from domain.common import InvalidValue

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARS = "10X98765432"
_SHAPE = re.compile(r"^[0-9]{17}[0-9X]$")
EARLIEST_BIRTH_YEAR = 1900  # no one registered today was born before


def check_character(first17: str) -> str:
    """The check character for the first 17 digits of an identity number."""
    total = sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True))
    return _CHECK_CHARS[total % 11]


@dataclass(frozen=True)
class IdentityNumber:
    """A validated, normalised identity number (upper-case ``X``)."""

    value: str

    @classmethod
    def parse(cls, raw: str, field_name: str = "id_number") -> IdentityNumber:
        value = raw.strip().upper()
        if len(value) != 18:
            raise InvalidValue(
                field_name,
                f"identity number must have 18 characters, got {len(value)}",
                rule="id_number_length",
            )
        if not _SHAPE.match(value):
            raise InvalidValue(
                field_name,
                "identity number must be 17 digits followed by a digit or X",
                rule="id_number_format",
            )
        if not 11 <= int(value[:2]) <= 82:  # GB/T 2260: provinces are 11 (Beijing) to 82 (Macao)
            raise InvalidValue(
                field_name,
                f"identity number starts with area code {value[:6]}, which names no province (11 to 82)",
                rule="id_number_area_code",
            )
        try:
            born = date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
            if born.year < EARLIEST_BIRTH_YEAR:
                raise ValueError(born)
        except ValueError:
            raise InvalidValue(
                field_name,
                f"identity number holds an impossible birth date {value[6:14]}",
                rule="id_number_birth_date",
            ) from None
        expected = check_character(value[:17])
        if value[17] != expected:
            raise InvalidValue(
                field_name,
                f"identity number check character is {value[17]}, expected {expected}",
                rule="id_number_checksum",
            )
        return cls(value)

    @property
    def birth_date(self) -> date:
        v = self.value
        return date(int(v[6:10]), int(v[10:12]), int(v[12:14]))

    @property
    def sex(self) -> str:
        return "male" if int(self.value[16]) % 2 == 1 else "female"

    @property
    def area_code(self) -> str:
        return self.value[:6]

    @property
    def masked(self) -> str:
        """Shown in lists: the first four and last four characters only."""
        return self.value[:4] + "*" * 10 + self.value[14:]

    def __str__(self) -> str:
        return self.masked
