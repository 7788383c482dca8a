"""Money: yuan as a Decimal with two places; never a float."""

from __future__ import annotations

import re
from decimal import Decimal

from domain.common import InvalidValue

CENT = Decimal("0.01")
_MONEY = re.compile(r"^[0-9]{1,13}(\.[0-9]{1,2})?$")


def parse_money(raw: str | Decimal, field_name: str, *, allow_zero: bool = False) -> Decimal:
    """A non-negative amount with at most two decimals, given as a string like "1200.50"."""
    text = str(raw).strip()
    if not _MONEY.match(text):
        raise InvalidValue(
            field_name,
            f"{field_name} must be a decimal string in yuan with at most two decimals, e.g. \"1200.50\"",
            rule="money_format",
        )
    amount = Decimal(text).quantize(CENT)
    if amount == 0 and not allow_zero:
        raise InvalidValue(field_name, f"{field_name} must be more than zero", rule="money_not_positive")
    return amount


def format_money(amount: Decimal) -> str:
    return str(amount.quantize(CENT))
