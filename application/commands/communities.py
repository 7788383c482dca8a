"""Use cases: a housing site's way to a community (成熟一个发展一个): assessments,
the preparatory group, elections, member changes and the end of a term."""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

from application.commands.residency import ResidencyCommands
from application.store import CommandResult, IdempotencyClaim
from domain.common import Stamp
from domain.residents import Resident
from domain.sites import HousingSite


class CommunityCommands(ResidencyCommands):
    """On top of the site commands of ResidencyCommands (``_site_command``)."""

    def assess_site(
        self, site_id: UUID, *, assessed_on: date, headcount: int, facilities_present: list[str],
        operator_status: str, villages: list[str], note: str | None, checklist: list[str], min_headcount: int,
        stamp: Stamp, expected_version: int | None = None, idempotency: IdempotencyClaim | None = None,
    ) -> CommandResult:
        """``checklist`` and ``min_headcount`` are the office's settings of the day; the
        assessment records them, so a replay shows what was asked of the site then."""
        found: dict[str, Any] = {}

        def act(site: HousingSite) -> None:
            found["missing_conditions"] = site.assess(
                assessed_on=assessed_on, headcount=headcount, facilities_present=facilities_present,
                operator_status=operator_status, villages=villages, checklist=checklist, min_headcount=min_headcount,
                note=note, stamp=stamp)

        return self._site_command(site_id, act, expected_version, idempotency, found)

    def approve_preparation(
        self, site_id: UUID, *, approved_on: date, group: list[dict[str, Any]], note: str | None, stamp: Stamp,
        expected_version: int | None = None, idempotency: IdempotencyClaim | None = None,
    ) -> CommandResult:
        def act(site: HousingSite) -> None:
            # found by a review: a group of unknown residents was taken
            self._check_residents(group, "group", approved_on, "approved_on")
            site.approve_preparation(approved_on=approved_on, group=group, note=note, stamp=stamp)

        return self._site_command(site_id, act, expected_version, idempotency)

    def _check_residents(self, people: list[dict[str, Any]], field_name: str, day: date, day_field: str) -> None:
        """Every resident a list of people names is on the register, in the caller's scope, in
        the district now and on ``day``, and not erased."""
        for n, person in enumerate(people):
            if person.get("resident_id") is not None:
                resident = self.load_in_scope(Resident, UUID(str(person["resident_id"])),
                                              field_name=f"{field_name}.{n}.resident_id")
                # found by a review: a departed resident joined a committee that refused them elsewhere
                resident.check_present()
                resident.check_not_erased()  # found by a review: an erased resident was elected
                resident.check_present_on(day, day_field)

    def hold_election(
        self, site_id: UUID, *, held_on: date, seats: int, candidates: list[dict[str, Any]], ballots: int | None,
        stamp: Stamp, expected_version: int | None = None, idempotency: IdempotencyClaim | None = None,
    ) -> CommandResult:
        result: dict[str, Any] = {}

        def act(site: HousingSite) -> None:
            self._check_residents(candidates, "candidates", held_on, "held_on")
            elected = site.hold_election(held_on=held_on, seats=seats, candidates=candidates, ballots=ballots,
                                         stamp=stamp)
            result["elected"] = [m["member_id"] for m in elected]

        return self._site_command(site_id, act, expected_version, idempotency, result)

    def change_community_members(
        self, site_id: UUID, *, changed_on: date, joined: list[dict[str, Any]], left: list[str], reason: str,
        stamp: Stamp, expected_version: int | None = None, idempotency: IdempotencyClaim | None = None,
    ) -> CommandResult:
        result: dict[str, Any] = {}

        def act(site: HousingSite) -> None:
            self._check_residents(joined, "joined", changed_on, "changed_on")
            result["joined"] = site.change_community_members(changed_on=changed_on, joined=joined, left=left,
                                                             reason=reason, stamp=stamp)

        return self._site_command(site_id, act, expected_version, idempotency, result)

    def end_community_term(
        self, site_id: UUID, *, ended_on: date, stamp: Stamp, expected_version: int | None = None,
        idempotency: IdempotencyClaim | None = None,
    ) -> CommandResult:
        return self._site_command(site_id, lambda s: s.end_term(ended_on=ended_on, stamp=stamp),
                                       expected_version, idempotency)
