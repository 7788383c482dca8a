"""The office's application: every use case on one eventsourcing ``Application``."""

from __future__ import annotations

from api.commands.committees import CommitteeCommands
from api.commands.disputes import DisputeCommands
from api.commands.permits import PermitCommands
from api.commands.residency import ResidencyCommands
from api.commands.subsidies import SubsidyCommands


class Liudong(ResidencyCommands, PermitCommands, DisputeCommands, CommitteeCommands, SubsidyCommands):
    """Every command takes a ``Stamp`` (who, and the caller's clock) and returns a
    ``CommandResult``; each saves what it changed in one transaction."""

    name = "Liudong"
