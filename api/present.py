"""How records read to a caller: sealed personal fields opened for those who may see them,
masked for an api_consumer without the pii scope, and erased fields in the caller's
language."""

from __future__ import annotations

from datetime import date
from typing import Any

from api.deps import erased_text, shown
from application.access import Principal
from application.privacy import Vault
from domain.common import ERASED
from projections.residents import mask_name


class Presenter:
    def __init__(self, vault: Vault, principal: Principal, lang: str) -> None:
        self.vault = vault
        self.principal = principal
        self.lang = lang
        self.full = principal.sees_personal_data

    def name(self, sealed_or_plain: Any, masked: str | None = None) -> str:
        """A person's name: in full, or as surname and star."""
        value = self.vault.open(sealed_or_plain)
        if value == ERASED or masked == ERASED:
            return erased_text(self.lang)
        return str(value) if self.full else (masked or mask_name(str(value)))

    def text(self, value: Any) -> Any:
        """Free text that may name people: in full, or hidden (null)."""
        opened = self.vault.open_all(value)
        return shown(opened, self.lang) if self.full else None

    def birth(self, born: date | None) -> tuple[date | None, int | None]:
        if born is None:
            return None, None
        return (born, born.year) if self.full else (None, born.year)

    def permit_number(self, sealed_or_plain: Any) -> str | None:
        """A residence permit's number (sealed under its holder's key since 2026-11-29): in full,
        or its last four characters only (of a short one, half at most); [erased] once its holder was."""
        if sealed_or_plain is None:
            return None
        value = str(self.vault.open(sealed_or_plain))
        if value == ERASED:
            return erased_text(self.lang)
        kept = min(4, len(value) // 2)
        return value if self.full else "*" * (len(value) - kept) + value[len(value) - kept:]

    def resident_row(self, row: dict[str, Any]) -> dict[str, Any]:
        erased = row.get("name_masked") == ERASED
        birth_date, birth_year = self.birth(None if erased else row.get("birth_date"))
        shown_row = {k: v for k, v in row.items() if k != "name_masked"}
        if "permit_number" in shown_row:
            shown_row["permit_number"] = self.permit_number(shown_row["permit_number"])
        if "hometown" in shown_row:
            shown_row["hometown"] = shown(shown_row["hometown"], self.lang)
        return {**shown_row, "name": self.name(row["name"], row.get("name_masked")), "birth_date": birth_date,
                "birth_year": birth_year, "id_number_masked": shown(row["id_number_masked"], self.lang)}

    def parties(self, parties: list[dict[str, Any]]) -> list[dict[str, Any]]:
        result = []
        for party in parties:
            entry = dict(party)
            if party.get("name") is not None:  # a landlord or a worker is a person too: masked alike
                entry["name"] = self.name(party["name"])
            result.append(entry)
        return result

    def members(self, members: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{**m, "name": self.name(m["name"])} if m.get("name") is not None else m for m in members]
