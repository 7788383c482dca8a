"""Use cases: committees."""

from __future__ import annotations

from api.store import OfficeApplication


class CommitteeCommands(OfficeApplication):
    pass
