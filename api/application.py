"""The office's application: every use case on one eventsourcing ``Application``."""

from __future__ import annotations

from api.commands.residency import ResidencyCommands


class Liudong(ResidencyCommands):
    """Every command takes a ``Stamp`` (who, and the caller's clock) and returns a
    ``CommandResult``; each saves what it changed in one transaction."""
