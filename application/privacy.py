"""Personal data in an immutable log: crypto-shredding.

Each resident's personal fields (name, identity number, phone) are encrypted in their
events with a key of that resident's own; a dispute's free text (description, notes,
mediations, party names) with a key of the case, linked to the residents who are its
parties. Keys are AES-256-GCM data keys, kept wrapped by the office's master key in
``pii_keys``, a table outside the event log. Erasure destroys the keys: the events stay
byte for byte as they were (so the tamper-evident chain holds), and every reader (the
application, replays, exports, Kafka consumers, views) then sees ``[erased]``.

A sealed value is the string ``pii:v1:<key id>:<base64 of nonce and ciphertext>``; values
without that prefix (events stored before this version) are read as they are.

The identity number's claim and the name search use keyed hashes (HMAC-SHA-256 with a key
derived from the master key), so nobody without it can enumerate numbers or names.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from uuid import UUID, uuid5

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from eventsourcing.domain import Snapshot
from eventsourcing.persistence import Mapper, StoredEvent, Transcoder
from eventsourcing.utils import get_topic

from domain.common import ERASED, folded

SNAPSHOT_TOPIC = get_topic(Snapshot)

PREFIX = "pii:v1:"
SCHEMA = [
    "CREATE TABLE IF NOT EXISTS pii_keys ("
    " key_id uuid PRIMARY KEY, kind text NOT NULL, wrapped bytea, created_at timestamptz NOT NULL DEFAULT now(),"
    " destroyed_at timestamptz, destroyed_by text, legal_basis text)",
    "CREATE TABLE IF NOT EXISTS pii_key_subjects ("
    " key_id uuid NOT NULL, resident_id uuid NOT NULL, PRIMARY KEY (key_id, resident_id))",
    "CREATE INDEX IF NOT EXISTS pii_key_subjects_resident_idx ON pii_key_subjects (resident_id)",
    # Which master key this database's keys are wrapped with (a keyed hash of a constant):
    # a process with another key refuses to start rather than make keys nobody can read.
    "CREATE TABLE IF NOT EXISTS pii_master (fingerprint text PRIMARY KEY, created_at timestamptz DEFAULT now())",
    # Free text that is about no one resident (a committee's agenda, decisions, actions) is
    # sealed under a key of its own per event: erasing a resident destroys the keys of the
    # texts that spell out their name or number. Which event each such key sealed:
    "CREATE TABLE IF NOT EXISTS pii_texts ("
    " key_id uuid PRIMARY KEY, originator_id uuid NOT NULL, originator_version integer NOT NULL)",
]
TEXTS_LOCK = 0x6C6474  # advisory lock: writers of free text share it, an erasure's scan holds it alone
TEXT_KEYS = UUID("6f1d3c52-9a57-4c1e-8b0e-3f3e8f4f2a10")  # namespace of the per-event text keys
NOTIFY_CHANNEL = "liudong_pii"
ID_SUFFIXES = (4, 5, 6)  # an identity number is searchable by its last 4, 5 or 6 characters
NAME_PREFIXES = 12  # a name is searchable by each of its first twelve characters


class MasterKeyMissing(RuntimeError):
    pass


def load_master_key(explicit: str | None, path: Path, *, create: bool) -> bytes:
    """The master key: given in settings (base64), or read from ``path``, made there on
    first use when ``create`` (the embedded default)."""
    if explicit or path.exists():
        try:
            key = base64.b64decode(explicit or path.read_text().strip(), validate=True)
        except (ValueError, OSError):  # found by a review: a mistyped key ended in a traceback
            raise MasterKeyMissing("the master key for personal data is not readable base64 (LIUDONG_PII_MASTER_KEY"
                                   " or LIUDONG_PII_MASTER_KEY_FILE)") from None
    elif create:
        path.parent.mkdir(parents=True, exist_ok=True)
        key = AESGCM.generate_key(bit_length=256)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(base64.b64encode(key).decode() + "\n")
    else:
        raise MasterKeyMissing(f"no master key for personal data: set LIUDONG_PII_MASTER_KEY or create {path}")
    if len(key) != 32:
        raise MasterKeyMissing("the master key for personal data must be 32 bytes (base64 encoded)")
    return key


def _derive(master: bytes, purpose: str) -> bytes:
    return HKDF(algorithm=SHA256(), length=32, salt=None, info=f"liudong:{purpose}".encode()).derive(master)


def normalise_name(name: str) -> str:
    return folded(name)


# -- where keys live ------------------------------------------------------------------------
@dataclass(frozen=True)
class NewKey:
    key_id: UUID
    kind: str
    wrapped: bytes
    subjects: tuple[UUID, ...]
    origin: tuple[UUID, int] | None = None  # a text key: the event it seals


def _sealed_key_ids(value: Any, into: set[UUID]) -> None:
    """The ids of the keys that sealed the strings in ``value`` (any JSON-like structure)."""
    found = {sealed_value[len(PREFIX):].split(":", 1)[0] for sealed_value in _sealed_in(value)}
    for key_hex in found:  # a record's fields share a key: each id is made once
        try:
            into.add(UUID(hex=key_hex))
        except ValueError:
            pass


def _sealed_in(value: Any, depth: int = 0) -> Iterator[str]:
    """The sealed strings in ``value`` (any JSON-like structure, six levels deep at most)."""
    if isinstance(value, str):
        if value.startswith(PREFIX):
            yield value
    elif depth < 6 and isinstance(value, dict):
        for item in value.values():
            yield from _sealed_in(item, depth + 1)
    elif depth < 6 and isinstance(value, list | tuple | set):
        for item in value:
            yield from _sealed_in(item, depth + 1)


class KeyStore(Protocol):
    def fetch(self, key_ids: list[UUID]) -> dict[UUID, bytes | None]:
        """The wrapped keys (None: destroyed); ids absent from the result have no key."""


class PgKeyStore:
    """Reads keys through a connection factory (the recorder's pool)."""

    def __init__(self, connect: Callable[[], Any]) -> None:
        self.connect = connect

    def fetch(self, key_ids: list[UUID]) -> dict[UUID, bytes | None]:
        with self.connect() as conn:
            rows = conn.execute("SELECT key_id, wrapped FROM pii_keys WHERE key_id = ANY(%s)", (key_ids,)).fetchall()
        result: dict[UUID, bytes | None] = {}
        for row in rows:
            key_id, wrapped = (row["key_id"], row["wrapped"]) if isinstance(row, dict) else (row[0], row[1])
            result[key_id] = bytes(wrapped) if wrapped is not None else None
        return result


@dataclass
class MemoryKeyStore:
    rows: dict[UUID, bytes | None] = field(default_factory=dict)

    def fetch(self, key_ids: list[UUID]) -> dict[UUID, bytes | None]:
        return {k: self.rows[k] for k in key_ids if k in self.rows}


# -- the vault ------------------------------------------------------------------------------
class Vault:
    """Seals and opens personal fields; makes keys (committed with the events that first
    use them) and keyed hashes. Thread-safe; unwrapped keys are cached briefly."""

    def __init__(self, master_key: bytes, store: KeyStore, *, cache_seconds: float = 10.0) -> None:
        self._kek = AESGCM(_derive(master_key, "key-encryption"))
        self._index_key = _derive(master_key, "blind-index")
        self.store = store
        self.cache_seconds = cache_seconds
        self._cache: dict[UUID, tuple[bytes | None, float]] = {}
        self._pending: dict[UUID, tuple[NewKey, bytes]] = {}
        self._lock = threading.Lock()

    def fingerprint(self) -> str:
        return hmac.new(self._index_key, b"liudong master key fingerprint", hashlib.sha256).hexdigest()[:32]

    def check_master_key(self, conn: Any) -> None:
        """Refuse a master key other than the one this database's keys are wrapped with."""
        # ON CONFLICT: processes started together (`liudong up`) race to record it (found by a review:
        # a worker died of the unique violation on a fresh database).
        conn.execute("INSERT INTO pii_master (fingerprint) SELECT %s WHERE NOT EXISTS (SELECT 1 FROM pii_master)"
                     " ON CONFLICT DO NOTHING", (self.fingerprint(),))
        rows = conn.execute("SELECT fingerprint FROM pii_master").fetchall()
        known = {(r["fingerprint"] if isinstance(r, dict) else r[0]) for r in rows}
        if self.fingerprint() not in known:
            raise MasterKeyMissing("this database's personal data is sealed with another master key: set "
                                   "LIUDONG_PII_MASTER_KEY (or LIUDONG_PII_MASTER_KEY_FILE) to the installation's key")

    # keyed hashes ------------------------------------------------------------------------
    def blind(self, purpose: str, text: str) -> bytes:
        return hmac.new(self._index_key, f"{purpose}:{text}".encode(), hashlib.sha256).digest()

    def claim_id(self, id_number: str) -> UUID:
        """The identity-number claim's id: a keyed hash of the normalised number."""
        return UUID(bytes=self.blind("identity-number", id_number.strip().upper())[:16], version=4)

    def permit_claim_id(self, number: str) -> UUID:
        """The residence-permit number's claim id: a keyed hash of the number, spaces dropped."""
        return UUID(bytes=self.blind("permit-number", "".join(number.split()).upper())[:16], version=4)

    def name_tokens(self, name: str) -> list[str]:
        """Search tokens: each prefix of a name up to NAME_PREFIXES characters, and the
        whole name (a longer query finds the names it spells out in full)."""
        normal = normalise_name(name)
        prefixes = {normal[:n] for n in range(1, min(len(normal), NAME_PREFIXES) + 1)} | {normal}
        return sorted(self._token(p) for p in prefixes if p)

    def name_token(self, query: str) -> str:
        """The token a search for names starting with ``query`` looks for."""
        return self._token(normalise_name(query))

    def id_suffix_tokens(self, id_number: str) -> list[str]:
        """Search tokens for the last 4, 5 and 6 characters of an identity number (how a
        caseworker finds someone by the end of their number, without the view holding it)."""
        number = id_number.strip().upper()
        return sorted(self.id_suffix_token(number[-n:]) for n in ID_SUFFIXES if len(number) >= n)

    def id_suffix_token(self, suffix: str) -> str:
        return base64.urlsafe_b64encode(self.blind("id-suffix", suffix.strip().upper())[:12]).decode()

    def _token(self, normal: str) -> str:
        return base64.urlsafe_b64encode(self.blind("name-prefix", normal)[:12]).decode()

    # keys --------------------------------------------------------------------------------
    def _wrap(self, key_id: UUID, key: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._kek.encrypt(nonce, key, key_id.bytes)

    def _unwrap(self, key_id: UUID, wrapped: bytes) -> bytes:
        return self._kek.decrypt(wrapped[:12], wrapped[12:], key_id.bytes)

    def key(self, key_id: UUID, *, kind: str = "resident", subjects: tuple[UUID, ...] = (),
            create: bool = False, new: bool = False, origin: tuple[UUID, int] | None = None) -> bytes | None:
        """The data key (None: destroyed, or none and not ``create``). ``new``: the record is
        being created, so no key can be stored for it yet (one stored anyway makes the
        key's insert, and so the command, fail rather than seal with a second key)."""
        now = time.monotonic()
        with self._lock:
            pending = self._pending.get(key_id)
            if pending is not None:
                return pending[1]
            cached = self._cache.get(key_id)
            if cached is not None and cached[1] > now:
                return cached[0]
        fetched = {} if new and create else self.store.fetch([key_id])
        if key_id in fetched:
            wrapped = fetched[key_id]
            key = self._unwrap(key_id, wrapped) if wrapped is not None else None
            with self._lock:
                self._cache[key_id] = (key, now + self.cache_seconds)
            return key
        if not create:
            return None
        key = AESGCM.generate_key(bit_length=256)
        with self._lock:
            existing = self._pending.get(key_id)
            if existing is not None:
                return existing[1]
            self._pending[key_id] = (NewKey(key_id, kind, self._wrap(key_id, key), subjects, origin), key)
        return key

    def take_new_keys(self, key_ids: set[UUID]) -> list[NewKey]:
        """The keys made for these ids and not yet stored: the recorder inserts them in the
        transaction that stores the events sealed with them."""
        with self._lock:
            return [self._pending[k][0] for k in key_ids if k in self._pending]

    def stored(self, keys: list[NewKey]) -> None:
        """Those keys committed: cache them like any other."""
        now = time.monotonic()
        with self._lock:
            for new in keys:
                entry = self._pending.pop(new.key_id, None)
                if entry is not None:
                    self._cache[new.key_id] = (entry[1], now + self.cache_seconds)

    def discard(self, keys: list[NewKey]) -> None:
        """Those keys were not stored (the save lost a race): forget them."""
        with self._lock:
            for new in keys:
                self._pending.pop(new.key_id, None)

    def forget(self, key_ids: list[UUID] | None = None) -> None:
        with self._lock:
            if key_ids is None:
                self._cache.clear()
            for key_id in key_ids or []:
                self._cache.pop(key_id, None)

    def prefetch(self, values: Any) -> None:
        """Fetch, in one read, the keys of the sealed values found in ``values`` that are
        not cached: a batch of events then opens its values without a read per resident."""
        wanted: set[UUID] = set()
        _sealed_key_ids(values, wanted)
        now = time.monotonic()
        with self._lock:
            missing = [k for k in wanted if k not in self._pending
                       and (k not in self._cache or self._cache[k][1] <= now)]
        if not missing:
            return
        fetched = self.store.fetch(missing)
        unwrapped = {k: (self._unwrap(k, w) if w is not None else None) for k, w in fetched.items()}
        with self._lock:
            for key_id, key in unwrapped.items():
                self._cache[key_id] = (key, now + self.cache_seconds)

    # values ------------------------------------------------------------------------------
    def seal(self, key_id: UUID, value: str, key: bytes) -> str:
        nonce = os.urandom(12)
        sealed = AESGCM(key).encrypt(nonce, value.encode(), key_id.bytes)
        return f"{PREFIX}{key_id.hex}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def open(self, value: Any) -> Any:
        """A sealed string's plaintext, ``[erased]`` if its key is gone; anything else as is."""
        if not isinstance(value, str) or not value.startswith(PREFIX):
            return value
        try:
            key_hex, blob = value[len(PREFIX):].split(":", 1)
            key_id = UUID(hex=key_hex)
            data = base64.urlsafe_b64decode(blob)
        except ValueError:
            return ERASED
        key = self.key(key_id)
        if key is None:
            return ERASED
        try:
            return AESGCM(key).decrypt(data[:12], data[12:], key_id.bytes).decode()
        except Exception:  # a value sealed with another key, or altered: unreadable
            return ERASED

    def open_all(self, value: Any, *, keep_names: bool = False) -> Any:
        """``open`` applied throughout a JSON-like structure. With ``keep_names`` the name of
        a person in a list (a committee member, a candidate, a dispute's party) stays sealed:
        the aggregates keep it so (``PrivateMapper``), and readers open it."""
        if isinstance(value, str):
            return self.open(value)
        if isinstance(value, list):
            return [self.open_all(v, keep_names=keep_names) for v in value]
        if isinstance(value, dict):
            keep = keep_names and sealed(value.get("name"))
            return {k: v if keep and k == "name" else self.open_all(v, keep_names=keep_names)
                    for k, v in value.items()}
        return value


    def texts_sealed_with(self, value: Any, key_id: UUID, wrapped: bytes) -> list[str]:
        """The plaintexts of the strings in ``value`` sealed with the given key (an erasure
        reads each free-text event once, its key given with it: no read per key)."""
        key = AESGCM(self._unwrap(key_id, wrapped))
        head = f"{PREFIX}{key_id.hex}:"
        found = {v[len(head):] for v in _sealed_in(value) if v.startswith(head)}
        texts = []
        for blob in found:
            with contextlib.suppress(Exception):  # altered: nothing readable to erase
                data = base64.urlsafe_b64decode(blob)
                texts.append(key.decrypt(data[:12], data[12:], key_id.bytes).decode())
        return texts


def sealed(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


# -- which fields are personal -------------------------------------------------------------
@dataclass(frozen=True)
class Sealing:
    """How one event class's personal fields are sealed."""

    fields: tuple[str, ...] = ()  # top-level string (or list of strings) fields
    nested_names: tuple[str, ...] = ()  # list-of-dict fields whose "name" is sealed
    single_nested: tuple[str, ...] = ()  # dict fields whose "name" is sealed
    key: str = "originator"  # whose key: "originator" (its own) or "member" (the resident the entry names)
    # or "resident": the resident the event's resident_id names (a record about them kept elsewhere)
    kind: str = "resident"
    # With key "field": the event names its own key (a new one) in this field.
    key_field: str = ""
    # With key "text" (a key per event): list-of-dict fields and the text in each entry.
    nested_texts: tuple[tuple[str, str], ...] = ()
    # With key "text": the field naming the resident the record is about; their erasure destroys
    # the event's key too (the text is about them, whether or not it spells them out).
    text_subject: str = ""


def text_key_id(originator_id: UUID, originator_version: int) -> UUID:
    """The key that seals one event's free text."""
    return uuid5(TEXT_KEYS, f"{originator_id}:{originator_version}")


def _policies() -> dict[str, Sealing]:
    return {
        "domain.residents:Resident.Registered": Sealing(fields=("name", "id_number", "phone", "household_relation")),
        "domain.residents:Resident.MovedToPrivateHousing": Sealing(fields=("address", "landlord")),
        "domain.disputes:DisputeCase.Logged": Sealing(fields=("description",), nested_names=("parties",),
                                                      kind="case"),
        "domain.disputes:DisputeCase.NoteAdded": Sealing(fields=("text",), kind="case"),
        "domain.disputes:DisputeCase.MediationHeld": Sealing(fields=("participants", "outcome"), kind="case"),
        "domain.disputes:DisputeCase.Escalated": Sealing(fields=("reason",), kind="case"),
        "domain.disputes:DisputeCase.Reopened": Sealing(fields=("reason",), kind="case"),
        "domain.committees:ManagementCommittee.Established": Sealing(nested_names=("members",), key="member"),
        "domain.committees:ManagementCommittee.MemberAdded": Sealing(single_nested=("member",), key="member"),
        "domain.sites:HousingSite.CommunityCommitteeEstablished": Sealing(nested_names=("members",), key="member"),
        "domain.operators:Operator.Registered": Sealing(fields=("contact",), kind="operator"),
        "domain.operators:Operator.ContactChanged": Sealing(fields=("contact",), kind="operator", key="field",
                                                            key_field="contact_key_id"),
        "domain.residents:Resident.DependantRecorded": Sealing(fields=("name",)),
        # A key of the note's own, linked to the member's resident (erased with them) and destroyed
        # too when another resident it spells out is erased (found by a review: under the member's
        # key, a note naming a colleague outlived the colleague's erasure). Notes written before
        # 2026-11-29 stay under the member's key.
        "domain.active_members:ActiveMember.EmployerLiaisonAgreed": Sealing(fields=("note",), key="text", kind="text",
                                                                           text_subject="resident_id"),
        "domain.sites:HousingSite.PreparationApproved": Sealing(nested_names=("group",), fields=("note",),
                                                                key="member"),
        # A site's own free text may name residents (a complaint in an assessment's note, why a site
        # closed): a key per event, destroyed when a resident it names is erased (found by a review:
        # kept in plain text, it outlived the erasure and api consumers read it in the history).
        "domain.sites:HousingSite.SiteAssessed": Sealing(fields=("note",), key="text", kind="text"),
        "domain.sites:HousingSite.Closed": Sealing(fields=("reason",), key="text", kind="text"),
        "domain.operators:Operator.SiteReleased": Sealing(fields=("reason",), key="text", kind="text"),
        # why a yearly report was corrected may name the person who misreported (found by a review)
        "domain.operators:Operator.YearlyReportCorrected": Sealing(fields=("reason",), key="text", kind="text"),
        "domain.cobuilding:Pairing.Ended": Sealing(fields=("reason",), key="text", kind="text"),
        "domain.sites:HousingSite.ElectionHeld": Sealing(nested_names=("candidates", "elected"), key="member"),
        "domain.sites:HousingSite.CommunityMembersChanged": Sealing(nested_names=("joined",), fields=("reason",),
                                                                    key="member"),
        "domain.residents:Resident.DepartedDistrict": Sealing(fields=("reason",)),
        # Why a school refused a child: about the family, under the resident's key (found by a review).
        "domain.residents:Resident.SchoolPlacementRefused": Sealing(fields=("reason",)),
        # The claim of an identity number names its holder under the holder's key: erasing
        # them unlinks the number from the record (and frees it for a new registration).
        "domain.residents:IdentityNumberClaim.Claimed": Sealing(fields=("resident_id",), key="resident"),
        "domain.residents:IdentityNumberClaim.Reclaimed": Sealing(fields=("resident_id",), key="resident"),
        # A residence permit's number names its holder (found by a review: it outlived an erasure,
        # in the log and on the record); its claim names them under their key, as above.
        "domain.residents:Resident.PermitIssued": Sealing(fields=("number",)),
        "domain.residents:PermitNumberClaim.Claimed": Sealing(fields=("resident_id",), key="resident"),
        "domain.residents:PermitNumberClaim.Reclaimed": Sealing(fields=("resident_id",), key="resident"),
        # A committee's decision copied onto a case: a text key of its own (it may name someone
        # who is no party), destroyed too when a party of the case is erased.
        "domain.disputes:DisputeCase.CommitteeDecisionRecorded": Sealing(fields=("decision",), key="text",
                                                                        kind="text"),
        # A committee's free text is about no one resident: a key per event, destroyed when a
        # resident it names is erased.
        "domain.committees:ManagementCommittee.MeetingScheduled": Sealing(
            nested_texts=(("agenda", "title"),), key="text", kind="text"),
        "domain.committees:ManagementCommittee.AgendaItemsAdded": Sealing(
            nested_texts=(("items", "title"),), key="text", kind="text"),
        "domain.committees:ManagementCommittee.MinutesRecorded": Sealing(
            nested_texts=(("decisions", "title"), ("decisions", "decision")), key="text", kind="text"),
        "domain.committees:ManagementCommittee.ActionAssigned": Sealing(fields=("description",), key="text",
                                                                        kind="text"),
        "domain.committees:ManagementCommittee.ActionCompleted": Sealing(fields=("note",), key="text", kind="text"),
        "domain.committees:ManagementCommittee.MemberRemoved": Sealing(fields=("reason",), key="text", kind="text"),
        "domain.committees:ManagementCommittee.SeatVacated": Sealing(fields=("reason",), key="text", kind="text"),
        # Why a site's operator should get money: free text that may name residents (a family
        # whose house is repaired), sealed as a committee's text is.
        "domain.subsidies:SubsidyApplication.Submitted": Sealing(fields=("justification",), key="text",
                                                                 kind="text"),
        # The notes and reasons of its decisions, likewise (a family named in why it was revoked).
        "domain.subsidies:SubsidyApplication.ApprovalGiven": Sealing(fields=("note",), key="text", kind="text"),
        "domain.subsidies:SubsidyApplication.Rejected": Sealing(fields=("reason",), key="text", kind="text"),
        "domain.subsidies:SubsidyApplication.OutcomeVerified": Sealing(fields=("note",), key="text", kind="text"),
        "domain.subsidies:SubsidyApplication.Revoked": Sealing(fields=("reason",), key="text", kind="text"),
    }


def text_topics() -> list[str]:
    """The events whose free text is sealed under a key per event."""
    return [topic for topic, policy in _policies().items() if policy.key == "text"]


def sealed_fields() -> dict[str, frozenset[str]]:
    """Per event (``Aggregate.Event``), its top-level fields that are personal data: readers
    without the right to personal data see them hidden, though a decoded event holds them open."""
    return {topic.split(":", 1)[1]: frozenset(policy.fields) for topic, policy in _policies().items()}


class PrivateMapper(Mapper[UUID]):
    """eventsourcing's mapper, sealing personal fields on the way to the store and opening
    them on the way back."""

    def __init__(self, transcoder: Transcoder, vault: Vault) -> None:
        super().__init__(transcoder=transcoder)
        self.vault = vault
        self.policies = _policies()

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        topic = get_topic(type(domain_event))
        if topic == SNAPSHOT_TOPIC:
            return super().to_stored_event(self._seal_snapshot(domain_event))
        policy = self.policies.get(topic)
        if policy is None:
            return super().to_stored_event(domain_event)
        state = dict(vars(domain_event))
        originator_id = state.pop("originator_id")
        originator_version = state.pop("originator_version")
        class_version = getattr(type(domain_event), "class_version", 1)
        if class_version > 1:
            state["class_version"] = class_version
        self._seal(policy, originator_id, state, created=originator_version == 1, version=originator_version)
        return StoredEvent(originator_id=originator_id, originator_version=originator_version, topic=topic,
                           state=self.transcoder.encode(state))

    def _seal(self, policy: Sealing, originator_id: UUID, state: dict[str, Any], *, created: bool = False,
              version: int = 0) -> None:
        if policy.key == "text":  # a key of its own, made for this event
            if not any(state.get(name) for name in policy.fields) and not any(
                    isinstance(e, dict) and e.get(f) for name, f in policy.nested_texts for e in state.get(name) or []):
                return  # no text (an approval without a note): no key to make, nothing to seal
            text_id = text_key_id(originator_id, version)
            about = state.get(policy.text_subject) if policy.text_subject else None
            text_key = self.vault.key(text_id, kind=policy.kind, create=True, new=True,
                                      origin=(originator_id, version),
                                      subjects=(UUID(str(about)),) if about else ())
            assert text_key is not None
            for name in policy.fields:
                state[name] = self._seal_value(text_id, text_key, state.get(name))
            for name, entry_field in policy.nested_texts:
                state[name] = [{**entry, entry_field: self._seal_value(text_id, text_key, entry.get(entry_field))}
                               if isinstance(entry, dict) else entry for entry in state.get(name) or []]
            return
        if policy.key == "originator":
            subjects: tuple[UUID, ...] = (originator_id,) if policy.kind == "resident" else tuple(
                UUID(str(p["resident_id"])) for p in state.get("parties", []) if p.get("resident_id"))
            # The event that creates a record (version 1) is the first to need its key: no read for it.
            key = self.vault.key(originator_id, kind=policy.kind, subjects=subjects, create=True, new=created)
            if key is None:  # a record whose key was destroyed (an erased resident who departs, a case
                # of theirs): new personal text about it stays erased (found by a review: an erased
                # resident's departure answered 500, and they held their bed for good)
                for name in policy.fields:
                    state[name] = _erase(state.get(name))
                for name in policy.nested_names:
                    state[name] = [{**p, "name": ERASED} if p.get("name") is not None else p
                                   for p in state.get(name, [])]
                return
            for name in policy.fields:
                state[name] = self._seal_value(originator_id, key, state.get(name))
            for name in policy.nested_names:
                state[name] = [{**p, "name": self._seal_value(originator_id, key, p.get("name"))}
                               if p.get("name") is not None else p for p in state.get(name, [])]
            return
        if policy.key == "field":  # under a key of its own, made for this event
            own_id = UUID(str(state[policy.key_field]))
            own_key = self.vault.key(own_id, kind=policy.kind, create=True, new=True)
            assert own_key is not None
            for name in policy.fields:
                state[name] = self._seal_value(own_id, own_key, state.get(name))
            return
        if policy.key == "resident":  # under the key of the resident the event names
            resident_id = UUID(str(state["resident_id"]))
            resident_key = self.vault.key(resident_id, kind="resident", subjects=(resident_id,), create=True)
            for name in policy.fields:
                state[name] = (self._seal_value(resident_id, resident_key, state.get(name)) if resident_key
                               else _erase(state.get(name)))
            return
        # A committee member who is a resident: their name under their own key. One who is not
        # (a group member, a candidate known by name only): under a key of this event's, which
        # an erasure destroys when the name is the erased resident's; the aggregate keeps it
        # sealed (a cached copy or a snapshot then reads it erased) and readers open it.
        made: list[bytes] = []  # the event's text key, made when a name needs it
        names_id = text_key_id(originator_id, version)

        def names_key() -> bytes:
            if not made:
                key = self.vault.key(names_id, kind="text", create=True, new=True, origin=(originator_id, version))
                assert key is not None
                made.append(key)
            return made[0]

        def seal(member: Any) -> Any:
            if not isinstance(member, dict):
                return member
            if member.get("resident_id"):
                return self._seal_member(member)
            name = member.get("name")
            if not isinstance(name, str) or name == ERASED or sealed(name):
                return member
            return {**member, "name": self.vault.seal(names_id, name, names_key())}

        for name in policy.nested_names:
            state[name] = [seal(m) for m in state.get(name, [])]
        for name in policy.single_nested:
            if isinstance(state.get(name), dict):
                state[name] = seal(state[name])
        for name in policy.fields:  # free text of the event (why members changed): under the event's key
            value = state.get(name)
            if isinstance(value, str) and value and value != ERASED and not sealed(value):
                state[name] = self.vault.seal(names_id, value, names_key())

    def _seal_member(self, member: dict[str, Any], *, create: bool = True) -> dict[str, Any]:
        """A member who is a resident: the name sealed under the resident's key (made if
        missing, unless ``create`` is false: a snapshot stores no new keys)."""
        resident = member.get("resident_id")
        if not resident or member.get("name") is None:
            return member
        resident_id = UUID(str(resident))
        key = self.vault.key(resident_id, kind="resident", subjects=(resident_id,), create=create)
        if key is None:
            return {**member, "name": ERASED}
        return {**member, "name": self.vault.seal(resident_id, str(member["name"]), key)}

    def _seal_value(self, key_id: UUID, key: bytes, value: Any) -> Any:
        if isinstance(value, UUID):  # a reference that is personal (whose number a claim holds)
            value = str(value)
        if isinstance(value, str):
            return self.vault.seal(key_id, value, key) if value != ERASED else value
        if isinstance(value, list):
            return [self._seal_value(key_id, key, v) for v in value]
        return value

    def _seal_snapshot(self, snapshot: Snapshot) -> Snapshot:
        """A snapshot holds an aggregate's state as read, names opened: the names of
        committee members who are residents are sealed again under their keys, as in the
        events they came from (a housing site's community committee)."""
        state = _seal_members_in(dict(snapshot.state), lambda m: self._seal_member(m, create=False))
        return type(snapshot)(originator_id=snapshot.originator_id,
                              originator_version=snapshot.originator_version, timestamp=snapshot.timestamp,
                              topic=snapshot.topic, state=state)

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        event: Any = super().to_domain_event(stored_event)
        if stored_event.topic == SNAPSHOT_TOPIC:
            state = event.state
            for name, value in list(state.items()):
                if isinstance(value, list | dict):
                    state[name] = self._open(value)
            return event
        if stored_event.topic in self.policies:
            state = vars(event)
            for name, value in list(state.items()):
                if isinstance(value, str | list | dict):
                    state[name] = self._open(value)
        return event

    def _open(self, value: Any) -> Any:
        """A person named in a list (a committee member, resident or known by name only; a
        candidate; a dispute's party) keeps their name sealed: readers open it through the
        presenter, and once an erasure destroyed its key every copy of the aggregate, cached
        or snapshotted, in every process reads it erased (found by a review: a committee
        cached before its member's erasure went on showing the name)."""
        return self.vault.open_all(value, keep_names=True)

    def sealed_keys(self, stored_events: list[StoredEvent]) -> set[UUID]:
        """The keys the given events may have been sealed with (for the new ones among them)."""
        ids: set[UUID] = set()
        for stored in stored_events:
            policy = self.policies.get(stored.topic)
            if policy is None:
                continue
            ids.add(UUID(str(stored.originator_id)))
            if policy.key == "resident":
                ids.update(UUID(hex=k) for k in _key_ids_in(stored.state))
            if policy.key == "text":
                ids.add(text_key_id(UUID(str(stored.originator_id)), stored.originator_version))
            if policy.key in ("member", "field"):
                ids.update(UUID(hex=k) for k in _key_ids_in(stored.state))
        return ids


def _seal_members_in(value: Any, seal: Callable[[dict[str, Any]], dict[str, Any]], depth: int = 0) -> Any:
    """``value`` with every dict that names a resident (``name`` and ``resident_id``) sealed."""
    if depth > 6:
        return value
    if isinstance(value, dict):
        if (value.get("resident_id") and isinstance(value.get("name"), str) and value["name"] != ERASED
                and not sealed(value["name"])):
            return seal(value)
        return {k: _seal_members_in(v, seal, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_seal_members_in(v, seal, depth + 1) for v in value]
    return value


def _erase(value: Any) -> Any:
    if isinstance(value, str):
        return ERASED
    if isinstance(value, list):
        return [ERASED for _ in value]
    return value


def _key_ids_in(state: bytes) -> Iterator[str]:
    text = state.decode("utf-8", "replace")
    start = 0
    while (at := text.find(PREFIX, start)) >= 0:
        key_hex = text[at + len(PREFIX): at + len(PREFIX) + 32]
        if len(key_hex) == 32:
            yield key_hex
        start = at + 1
