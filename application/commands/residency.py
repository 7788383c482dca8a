"""Use cases for residents and housing sites."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate
from psycopg.sql import SQL, Composed, Identifier

from application.access import current_scope
from application.commands.active_members import active_member_of
from application.privacy import NOTIFY_CHANNEL as PII_CHANNEL
from application.privacy import TEXTS_LOCK, text_key_id
from application.store import CommandResult, IdempotencyClaim, LiudongRecorder, OfficeApplication
from domain.active_members import ActiveMember
from domain.committees import ManagementCommittee
from domain.common import InvalidValue, RuleViolated, Stamp, folded, needles
from domain.disputes import CaseStatus, DisputeCase
from domain.identity import IdentityNumber
from domain.residents import (
    HouseholdRelation,
    HousingKind,
    IdentityNumberClaim,
    ResidenceStatus,
    Resident,
    duplicate_identity_number,
    legacy_claim_id,
)
from domain.sites import HousingSite
from domain.subsidies import SubsidyApplication


@dataclass(frozen=True)
class FoldedText:
    """A free-text event as an erasure looks for names in it."""

    key_id: UUID
    originator_id: UUID
    kind: str  # the event's name (MeetingScheduled, ActionAssigned, ...)
    ref: str  # the meeting, action or member it is about
    texts: tuple[str, ...]
    topic: str = ""  # the event's stored topic


# A dispute's free text, sealed with the case's key: a case whose text spells out a resident who is
# no party to it is erased with them too (found by a review: "X complained of Y" kept Y readable).
CASE_TEXTS = [f"domain.disputes:DisputeCase.{name}" for name in (
    "Logged", "NoteAdded", "MediationHeld", "Escalated", "Reopened")]
LIAISON_TEXTS = "domain.active_members:ActiveMember.EmployerLiaisonAgreed"
FOLDED_TEXTS_MAX = 200_000  # texts an erasure keeps folded in memory between erasures (~50 MB)
# The committee events whose text an erasure marks erased on the committee itself.
COMMITTEE_TEXTS = frozenset({"MeetingScheduled", "AgendaItemsAdded", "MinutesRecorded", "ActionAssigned",
                             "SeatVacated"})
# A subsidy application's texts: its justification, an approval's note, why it was rejected or revoked.
APPLICATION_TEXTS = frozenset(f"domain.subsidies:SubsidyApplication.{name}" for name in (
    "Submitted", "ApprovalGiven", "Rejected", "OutcomeVerified", "Revoked"))


class ResidencyCommands(OfficeApplication):
    # -- housing sites ------------------------------------------------------
    def register_site(
        self,
        *,
        name: str,
        area: str,
        address: str,
        operator_type: str,
        operator_name: str,
        capacity: int,
        facilities: list[str],
        stamp: Stamp,
        idempotency: IdempotencyClaim | None = None,
    ) -> CommandResult:
        code = self.place(area)

        def decide() -> tuple[Aggregate, Sequence[Aggregate]]:
            site = HousingSite.register(
                name=name,
                area=code,
                address=address,
                operator_type=operator_type,
                operator_name=operator_name,
                capacity=capacity,
                facilities=facilities,
                stamp=stamp,
            )
            return site, [site]

        return self._execute(decide, idempotency=idempotency)

    def _site_command(
        self,
        site_id: UUID,
        act: Callable[[HousingSite], None],
        expected_version: int | None,
        idempotency: IdempotencyClaim | None,
        details: dict[str, Any] | None = None,
    ) -> CommandResult:
        """Change one site; ``details`` (filled by ``act``) go into the command's answer."""

        def decide() -> tuple[Aggregate, Sequence[Aggregate]]:
            site = self.load_current(HousingSite, site_id, expected_version)
            act(site)
            return site, [site]

        return self._execute(decide, idempotency=idempotency,
                             details=(lambda: details) if details is not None else None)

    def change_site_capacity(
        self, site_id: UUID, capacity: int, stamp: Stamp, *, effective_date: date | None = None,
        expected_version: int | None = None, idempotency: IdempotencyClaim | None = None,
    ) -> CommandResult:
        return self._site_command(site_id, lambda s: s.change_capacity(capacity, stamp, effective_date),
                                  expected_version, idempotency)

    def change_site_facilities(
        self, site_id: UUID, facilities: list[str], stamp: Stamp, *, expected_version: int | None = None,
        idempotency: IdempotencyClaim | None = None,
    ) -> CommandResult:
        return self._site_command(
            site_id, lambda s: s.change_facilities(facilities, stamp), expected_version, idempotency
        )

    def establish_community_committee(
        self, site_id: UUID, established_on: date, members: list[dict[str, Any]], stamp: Stamp, *,
        expected_version: int | None = None, idempotency: IdempotencyClaim | None = None,
    ) -> CommandResult:
        return self._site_command(
            site_id,
            lambda s: s.establish_community_committee(established_on=established_on, members=members, stamp=stamp),
            expected_version,
            idempotency,
        )

    def close_site(
        self, site_id: UUID, closed_on: date, reason: str, stamp: Stamp, *,
        expected_version: int | None = None, idempotency: IdempotencyClaim | None = None,
    ) -> CommandResult:
        return self._site_command(
            site_id, lambda s: s.close(closed_on=closed_on, reason=reason, stamp=stamp), expected_version, idempotency
        )

    # -- residents ----------------------------------------------------------
    def register_resident(
        self,
        *,
        id_number: IdentityNumber,
        name: str,
        phone: str,
        hometown: str,
        employer: str | None,
        area: str | None,
        registered_on: date,
        stamp: Stamp,
        household_relation: HouseholdRelation | None = None,
        site_id: UUID | None = None,
        housing_kind: str | None = None,
        address: str | None = None,
        landlord: str | None = None,
        idempotency: IdempotencyClaim | None = None,
    ) -> CommandResult:
        """Register a resident in ``area``. Where they live from the day registered, if
        known: a housing site (``site_id``; without an area, the site's), or housing of
        ``housing_kind`` (a rented room with its landlord or address, an employer's
        dormitory): recorded as a move on the registration date, in the same transaction,
        so a full site or unidentified rented room refuses the registration too."""
        if not area and site_id is None:
            raise InvalidValue("area", "give the area where the resident lives", rule="area_missing")
        code = self.place(area) if area else ""
        claim_id = self.vault.claim_id(id_number.value)
        attempts = 0

        def decide() -> tuple[Aggregate, Sequence[Aggregate]]:
            nonlocal attempts
            attempts += 1
            # The claim's unique id refuses a duplicate; the first attempt relies on it. A
            # conflict brings us back here to name the resident who holds the number.
            # Residents registered before claims were keyed hashes hold a legacy claim.
            self._refuse_if_held(self._claim(legacy_claim_id(id_number.value)))
            freed = None
            if attempts > 1:
                freed = self._claim(claim_id)
                self._refuse_if_held(freed)  # else its holder was erased: the number is free again
            site = self.load_in_scope(HousingSite, site_id, field_name="site_id") if site_id else None
            if site is not None:
                self.check_site_in_area(site, code)
            resident = Resident.register(
                id_number=id_number,
                name=name,
                phone=phone,
                hometown=hometown,
                employer=employer,
                area=code or (site.area if site is not None else ""),
                registered_on=registered_on,
                stamp=stamp,
                household_relation=household_relation,
            )
            if freed is not None:
                freed.reclaim(resident_id=resident.id, stamp=stamp, holder_erased=True)
                claim = freed
            else:
                claim = IdentityNumberClaim.claim(claim_id, resident_id=resident.id, stamp=stamp)
            if site is not None:
                resident.move_into_site(site, registered_on, stamp)
                return resident, [resident, claim, site]
            if housing_kind not in (None, HousingKind.OTHER.value) or address or landlord:
                resident.move_to_private_housing(area=resident.area, effective_date=registered_on, stamp=stamp,
                                                 housing_kind=housing_kind or HousingKind.OTHER.value,
                                                 address=address, landlord=landlord)
            return resident, [resident, claim]

        return self._execute(decide, idempotency=idempotency)

    def freed_claim(self, claim_id: UUID, legacy_id: UUID) -> IdentityNumberClaim | None:
        """For a number whose claim exists already (an import finds it): the claim to take
        over if its holder was erased, None if only an erased holder's legacy claim exists (a
        new claim is made); refused (``identity_number_registered``) while a holder is there."""
        self._refuse_if_held(self._claim(legacy_id))
        claim = self._claim(claim_id)
        self._refuse_if_held(claim)
        return claim

    def _claim(self, claim_id: UUID) -> IdentityNumberClaim | None:
        return self.find(IdentityNumberClaim, claim_id)

    def _refuse_if_held(self, claim: IdentityNumberClaim | None) -> None:
        """Refuse a number a resident holds, naming them only to a caller who may read
        them; a number whose holder was erased is free."""
        holder = claim.holder() if claim is not None else None
        if holder is None:
            return
        try:
            resident: Aggregate = self.repository.get(holder)
        except AggregateNotFoundError:
            raise duplicate_identity_number(None) from None
        assert isinstance(resident, Resident)
        if resident.erased_on is not None:
            return
        scope = current_scope()
        raise duplicate_identity_number(holder if scope is None or scope.allows(resident.area) else None)

    def erase_resident(self, resident_id: UUID, *, legal_basis: str, note: str, stamp: Stamp,
                       expected_version: int | None = None,
                       idempotency: IdempotencyClaim | None = None,
                       retention_cutoff: date | None = None) -> CommandResult:
        """Erase a resident's personal data: the erasure is recorded on the resident, on
        every dispute they are a party to and on every committee whose free text names them,
        and the keys that sealed it (their own, those cases', those texts') are destroyed in
        the same transaction. While it decides, no free text is written (an advisory lock the
        writers of texts share), so none naming them commits between the scan and the erasure."""
        cases: list[UUID] = []
        texts: list[UUID] = []

        def decide() -> tuple[Aggregate, Sequence[Aggregate]]:
            resident = self.load_current(Resident, resident_id, expected_version)
            names, numbers = resident.identifying_texts(), resident.identifying_numbers()
            resident.erase_personal_data(legal_basis=legal_basis, note=note, stamp=stamp)
            cases[:] = self._cases_of(resident_id)
            if retention_cutoff is not None:
                self._check_retention_due(resident, cases, retention_cutoff)
            # A case of others erased whole with its key: only for a number that is theirs alone, not
            # for a name another resident may share (found by a review: erasing one 王芳 erased the
            # open case of another that named a third)
            naming = [c for c in self._cases_naming(numbers) if c not in cases]
            cases.extend(naming)
            named = self._texts_naming(names)
            # A committee's decisions copied onto the cases: erased with the case's parties; the
            # liaison notes of their active member: with them.
            texts[:] = sorted({t.key_id for t in named} | set(self._texts_of(cases))
                              | set(self._texts_about(resident_id)))
            changed: list[Aggregate] = [resident]
            # their liaison notes (found by a review: a cached copy kept them)
            if resident.active_member_id is not None:
                member = self.load(ActiveMember, UUID(str(resident.active_member_id)), field_name="active_member")
                member.erase_personal_data(legal_basis=legal_basis, stamp=stamp)
                changed.append(member)
            for case_id in cases:
                case = self.load(DisputeCase, case_id, field_name="case")
                case.erase_personal_data(resident_id=resident_id, legal_basis=legal_basis, stamp=stamp,
                                         named_in_text=case_id in naming)
                changed.append(case)
            # Each record holding such a text records it, so its readers (and caches) see it erased.
            by_committee: dict[UUID, list[dict[str, str]]] = {}
            by_application: dict[UUID, list[dict[str, str]]] = {}
            for text in named:
                if text.kind in COMMITTEE_TEXTS:
                    by_committee.setdefault(text.originator_id, []).append({"event": text.kind, "ref": text.ref})
                elif text.topic in APPLICATION_TEXTS:
                    by_application.setdefault(text.originator_id, []).append({"event": text.kind, "ref": text.ref})
            own = str(resident.active_member_id) if resident.active_member_id is not None else None
            for member_id in sorted({str(t.originator_id) for t in named if t.topic == LIAISON_TEXTS} - {own}):
                other = self.load(ActiveMember, UUID(member_id), field_name="active_member")
                erased_keys = {t.key_id for t in named}
                versions = [v for v in getattr(other, "liaison_versions", [])
                            if text_key_id(other.id, v) in erased_keys]
                other.erase_liaison_notes(versions=versions, legal_basis=legal_basis, stamp=stamp)
                changed.append(other)
            for committee_id, items in by_committee.items():
                committee = self.load(ManagementCommittee, committee_id, field_name="committee")
                committee.erase_texts(items=items, stamp=stamp)
                changed.append(committee)
            for application_id, items in by_application.items():
                application = self.load(SubsidyApplication, application_id, field_name="application")
                application.erase_texts(items=items, stamp=stamp)
                changed.append(application)
            return resident, changed

        def destroy() -> list[tuple[str, Sequence[Any]]]:
            keys = [resident_id, *cases, *texts]
            return [("UPDATE pii_keys SET wrapped = NULL, destroyed_at = now(), destroyed_by = %s,"
                     " legal_basis = %s WHERE key_id = ANY(%s) AND wrapped IS NOT NULL",
                     (stamp.actor.user_id, legal_basis, keys)),
                    (f"NOTIFY {PII_CHANNEL}", ())]

        with self.connection() as lock:
            lock.execute("SELECT pg_advisory_lock(%s)", (TEXTS_LOCK,))
            try:
                result = self._execute(decide, idempotency=idempotency, side_effects=destroy,
                                       details=lambda: {"cases_erased": len(cases), "texts_erased": len(texts)})
            finally:
                lock.execute("SELECT pg_advisory_unlock(%s)", (TEXTS_LOCK,))
        self.vault.forget([resident_id, *cases, *texts])
        for key_id in texts:
            self._folded_texts.pop(key_id, None)
        erased_cases = set(cases)  # their text is not kept, even folded
        for entry in [k for k in self._folded_cases if k[0] in erased_cases]:
            self._folded_cases.pop(entry, None)
        return result

    def _check_retention_due(self, resident: Resident, cases: list[UUID], cutoff: date) -> None:
        """A retention sweep's erasure, judged on the records as they stand, not on the views the
        sweep listed them from (found by a review: a resident who came back, or became a party
        to a dispute, while the sweep ran was erased): departed before ``cutoff`` and not a party
        to a case still open (the legal hold). A return or a new case racing it conflicts on the
        resident or waits for the erasure (the store), and it is decided again."""
        if resident.status != ResidenceStatus.DEPARTED or resident.since >= cutoff:
            raise RuleViolated(f"resident {resident.id} is not past retention", rule="retention_not_due")
        for case_id in cases:
            if self.load(DisputeCase, case_id, field_name="case").status != CaseStatus.CLOSED:
                raise RuleViolated(f"resident {resident.id} is a party to open case {case_id}", rule="legal_hold")

    def _cases_of(self, resident_id: UUID) -> list[UUID]:
        """The disputes whose key is linked to this resident (they are a party)."""
        with self.connection() as conn:
            rows = conn.execute("SELECT k.key_id FROM pii_key_subjects s JOIN pii_keys k USING (key_id)"
                                " WHERE s.resident_id = %s AND k.kind = 'case'", (resident_id,)).fetchall()
        return [row["key_id"] for row in rows]

    def _texts_about(self, resident_id: UUID) -> list[UUID]:
        """The text keys linked to this resident (their active member's liaison notes): erased with them."""
        with self.connection() as conn:
            rows = conn.execute("SELECT k.key_id FROM pii_key_subjects s JOIN pii_keys k USING (key_id)"
                                " WHERE s.resident_id = %s AND k.kind = 'text' AND k.wrapped IS NOT NULL",
                                (resident_id,)).fetchall()
        return [row["key_id"] for row in rows]

    def _texts_of(self, cases: list[UUID]) -> list[UUID]:
        """The text keys of these cases' own events (the committee decisions recorded on them)."""
        if not cases:
            return []
        with self.connection() as conn:
            rows = conn.execute("SELECT key_id FROM pii_texts WHERE originator_id = ANY(%s)", (cases,)).fetchall()
        return [row["key_id"] for row in rows]

    @functools.cached_property
    def _folded_texts(self) -> dict[UUID, FoldedText]:
        return {}

    @functools.cached_property
    def _folded_cases(self) -> dict[tuple[UUID, int], tuple[str, ...]]:
        return {}

    def _cases_naming(self, names: list[str]) -> list[UUID]:
        """The disputes, not yet erased, whose free text (description, party names, notes,
        mediations, reasons) spells out any of ``names``. As ``_texts_naming``: each event's
        text is opened once per process and kept folded until its case's key is destroyed."""
        wanted = needles(names)
        if not wanted:
            return []
        table = self._events_table()
        cache = self._folded_cases
        with self.connection() as conn:
            live = {(r["originator_id"], r["originator_version"]) for r in conn.execute(SQL(
                "SELECT e.originator_id, e.originator_version FROM pii_keys k JOIN {} e"
                " ON e.originator_id = k.key_id WHERE k.kind = 'case' AND k.wrapped IS NOT NULL"
                " AND e.topic = ANY(%s)").format(table), (CASE_TEXTS,))}
        for gone in cache.keys() - live:
            cache.pop(gone, None)
        missing = sorted(live - cache.keys())
        if missing:
            query = SQL("SELECT e.originator_id AS key_id, e.originator_version, e.state, k.wrapped FROM {} e"
                        " JOIN pii_keys k ON k.key_id = e.originator_id"
                        " JOIN unnest(%s::uuid[], %s::int[]) AS m(i, v) ON e.originator_id = m.i"
                        " AND e.originator_version = m.v WHERE k.wrapped IS NOT NULL").format(table)
            for row, _, opened in self._opened(query, ([i for i, _ in missing], [v for _, v in missing])):
                cache[(row["key_id"], row["originator_version"])] = tuple(folded(t) for t in opened)
        found = sorted({case for (case, version), texts in cache.items() if (case, version) in live
                        and any(n in t for t in texts for n in wanted)})
        if len(cache) > FOLDED_TEXTS_MAX:
            cache.clear()
        return found

    def _texts_naming(self, names: list[str]) -> list[FoldedText]:
        """The free-text events (a committee's agenda, minutes, actions; a decision on a case)
        that spell out any of ``names``: their keys are destroyed with the resident's. Each
        text is read and opened once per process (a sweep erases many residents), its folded
        form kept in memory, and dropped once its key is destroyed here or elsewhere."""
        wanted = needles(names)
        if not wanted:
            return []
        cache = self._folded_texts
        with self.connection() as conn:
            live = [r["key_id"] for r in conn.execute(
                "SELECT t.key_id FROM pii_texts t JOIN pii_keys k USING (key_id) WHERE k.wrapped IS NOT NULL")]
        for gone in cache.keys() - set(live):  # erased since: their text is not kept, even folded
            cache.pop(gone, None)
        missing = [k for k in live if k not in cache]
        if missing:
            query = SQL("SELECT t.key_id, k.wrapped, e.originator_id, e.topic, e.state FROM pii_texts t"
                        " JOIN pii_keys k USING (key_id) JOIN {} e"
                        " ON e.originator_id = t.originator_id AND e.originator_version = t.originator_version"
                        " WHERE t.key_id = ANY(%s) AND k.wrapped IS NOT NULL").format(self._events_table())
            for row, state, opened in self._opened(query, (missing,)):
                # What it is about: an action (which names its meeting too), a meeting, a member;
                # an approval by its approver (one approval each).
                ref = (state.get("action_id") or state.get("meeting_id") or state.get("member_id")
                       or (state.get("actor_id") if row["topic"] in APPLICATION_TEXTS else None) or "")
                if row["topic"].endswith(".AgendaItemsAdded"):  # which of the meeting's items it added
                    ref = f"{ref}:{','.join(str(i.get('item_id')) for i in state.get('items') or [])}"
                cache[row["key_id"]] = FoldedText(row["key_id"], row["originator_id"],
                                                  row["topic"].rsplit(".", 1)[-1], str(ref),
                                                  tuple(folded(t) for t in opened), row["topic"])
        found = [cache[k] for k in live if k in cache and any(n in t for t in cache[k].texts for n in wanted)]
        if len(cache) > FOLDED_TEXTS_MAX:  # more texts than memory should hold: read them each time
            cache.clear()
        return found

    def _events_table(self) -> Identifier:
        recorder = self.recorder
        assert isinstance(recorder, LiudongRecorder)
        return Identifier(recorder.datastore.schema, recorder.events_table_name)

    def _opened(self, query: SQL | Composed, params: Sequence[Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any],
                                                                                       list[str]]]:
        """The rows of ``query`` (each an event's ``state``, with the ``key_id`` and ``wrapped`` key
        that sealed its text), streamed, each with its state decoded and the texts that key opens."""
        with self.connection() as conn, conn.transaction(), conn.cursor(name="opened_texts") as cursor:
            cursor.itersize = 1000
            cursor.execute(query, params)
            for row in cursor:
                state = self.mapper.transcoder.decode(bytes(row["state"]))
                yield row, state, self.vault.texts_sealed_with(state, row["key_id"], bytes(row["wrapped"]))

    def _current_site(self, resident: Resident) -> HousingSite | None:
        if resident.site_id is None:
            return None
        return self.load(HousingSite, resident.site_id, field_name="site_id")

    def _seats_of(self, resident: Resident) -> list[ManagementCommittee]:
        """The committees the resident sits on: their departure and return change the
        seat in the same transaction (the quorum counts from the committee's own events)."""
        return [self.load(ManagementCommittee, UUID(committee_id), field_name="committee_id")
                for committee_id in resident.committee_seats]

    def move_resident_into_site(
        self, resident_id: UUID, site_id: UUID, effective_date: date, stamp: Stamp, *,
        expected_version: int | None = None, idempotency: IdempotencyClaim | None = None,
    ) -> CommandResult:
        def decide() -> tuple[Aggregate, Sequence[Aggregate | None]]:
            resident = self.load_current(Resident, resident_id, expected_version)
            site = self.load_in_scope(HousingSite, site_id, field_name="site_id")
            previous = self._current_site(resident)
            resident.move_into_site(site, effective_date, stamp, previous_site=previous)
            return resident, [resident, site, previous]

        return self._execute(decide, idempotency=idempotency)

    def move_resident_to_private_housing(
        self, resident_id: UUID, area: str, effective_date: date, stamp: Stamp, *,
        housing_kind: str = "other", address: str | None = None, landlord: str | None = None,
        expected_version: int | None = None, idempotency: IdempotencyClaim | None = None,
    ) -> CommandResult:
        code = self.place(area)

        def decide() -> tuple[Aggregate, Sequence[Aggregate | None]]:
            resident = self.load_current(Resident, resident_id, expected_version)
            previous = self._current_site(resident)
            resident.move_to_private_housing(
                area=code, effective_date=effective_date, stamp=stamp, previous_site=previous,
                housing_kind=housing_kind, address=address, landlord=landlord,
            )
            return resident, [resident, previous]

        return self._execute(decide, idempotency=idempotency)

    def record_departure(
        self, resident_id: UUID, effective_date: date, reason: str, stamp: Stamp, *,
        expected_version: int | None = None, idempotency: IdempotencyClaim | None = None,
    ) -> CommandResult:
        def decide() -> tuple[Aggregate, Sequence[Aggregate | None]]:
            resident = self.load_current(Resident, resident_id, expected_version)
            previous = self._current_site(resident)
            resident.depart(effective_date=effective_date, reason=reason, stamp=stamp, previous_site=previous)
            committees = self._seats_of(resident)
            for committee in committees:
                committee.vacate_seat(member_id=resident.committee_seats[str(committee.id)],
                                      vacated_on=effective_date, reason="departed the district", stamp=stamp)
            member = active_member_of(self, resident.id)  # an active member (骨干) is lost with the departure
            if member is not None:
                member.lose_by_departure(departed_on=effective_date, stamp=stamp)
            return resident, [resident, previous, *committees, member]

        return self._execute(decide, idempotency=idempotency)

    def record_return(
        self, resident_id: UUID, area: str, effective_date: date, stamp: Stamp, *,
        expected_version: int | None = None, idempotency: IdempotencyClaim | None = None,
    ) -> CommandResult:
        code = self.place(area)

        def decide() -> tuple[Aggregate, Sequence[Aggregate]]:
            resident = self.load_current(Resident, resident_id, expected_version)
            resident.return_to_district(area=code, effective_date=effective_date, stamp=stamp)
            committees = self._seats_of(resident)
            for committee in committees:
                committee.resume_seat(member_id=resident.committee_seats[str(committee.id)],
                                      resumed_on=effective_date, stamp=stamp)
            return resident, [resident, *committees]

        return self._execute(decide, idempotency=idempotency)

    def record_study(
        self, resident_id: UUID, school: str | None, effective_date: date, stamp: Stamp, *,
        expected_version: int | None = None, idempotency: IdempotencyClaim | None = None,
    ) -> CommandResult:
        def decide() -> tuple[Aggregate, Sequence[Aggregate]]:
            resident = self.load_current(Resident, resident_id, expected_version)
            resident.record_study(school=school, effective_date=effective_date, stamp=stamp)
            return resident, [resident]

        return self._execute(decide, idempotency=idempotency)

    def change_employer(
        self, resident_id: UUID, employer: str | None, effective_date: date, stamp: Stamp, *,
        expected_version: int | None = None, idempotency: IdempotencyClaim | None = None,
    ) -> CommandResult:
        def decide() -> tuple[Aggregate, Sequence[Aggregate]]:
            resident = self.load_current(Resident, resident_id, expected_version)
            resident.change_employer(employer=employer, effective_date=effective_date, stamp=stamp)
            return resident, [resident]

        return self._execute(decide, idempotency=idempotency)
