"""The office's application: every use case on one eventsourcing ``Application``."""

from __future__ import annotations

from application.commands.committees import CommitteeCommands
from application.commands.disputes import DisputeCommands
from application.commands.permits import PermitCommands
from application.commands.residency import ResidencyCommands
from application.commands.subsidies import SubsidyCommands


class Liudong(ResidencyCommands, PermitCommands, DisputeCommands, CommitteeCommands, SubsidyCommands):
    """Every command takes a ``Stamp`` (who, and the caller's clock) and returns a
    ``CommandResult``; each saves what it changed in one transaction."""

    name = "Liudong"
