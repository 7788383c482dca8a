"""The office's application: every use case on one eventsourcing ``Application``."""

from __future__ import annotations

from application.commands.access import KeyCommands
from application.commands.active_members import ActiveMemberCommands
from application.commands.areas import AreaCommands
from application.commands.committees import CommitteeCommands
from application.commands.communities import CommunityCommands
from application.commands.disputes import DisputeCommands
from application.commands.operators import OperatorCommands
from application.commands.permits import PermitCommands
from application.commands.residency import ResidencyCommands
from application.commands.services import ServiceCommands
from application.commands.subsidies import SubsidyCommands
from domain.sites import HousingSite
from domain.subsidies import SubsidyProgram


class Liudong(CommunityCommands, ResidencyCommands, PermitCommands, DisputeCommands, CommitteeCommands,
              SubsidyCommands, OperatorCommands, AreaCommands, KeyCommands,
              ActiveMemberCommands, ServiceCommands):
    """Every command takes a ``Stamp`` (who, and the caller's clock) and returns a
    ``CommandResult``; each saves what it changed in one transaction. Commands act within
    the areas set by ``application.access.acting_in`` (the API sets the caller's)."""

    name = "Liudong"
    # A subsidy program takes every approval and payment of its year, a housing site every
    # move in and out: a snapshot every 100 events keeps loading one short. A snapshot holds
    # the state as read; the names of committee members who are residents are sealed again
    # on the way to the store (application.privacy.PrivateMapper). Residents and disputes,
    # whose own fields are sealed, are not snapshotted.
    snapshotting_intervals = {SubsidyProgram: 100, HousingSite: 100}
