"""Use cases: disputes."""

from __future__ import annotations

from api.store import OfficeApplication


class DisputeCommands(OfficeApplication):
    pass
