"""Use cases: subsidies."""

from __future__ import annotations

from api.store import OfficeApplication


class SubsidyCommands(OfficeApplication):
    pass
