"""Use cases: permits."""

from __future__ import annotations

from api.store import OfficeApplication


class PermitCommands(OfficeApplication):
    pass
