"""Tamper evidence: every stored event is chained, and the chain can be checked.

One sequential chainer follows the store in its global order (``read_stored``: never past
a position an earlier transaction could still commit below) and, for each event, keeps:

* ``digest``: SHA-256 over the event as stored (aggregate id, version, topic and the
  state's bytes, exactly as stored, so destroying a person's key later changes nothing);
* ``link``: SHA-256 over the previous link, the event's global position and its digest.

The position is in the link, not in the digest, so an event moved to another position is
recognised as the one chained there. Every so often the head of the chain is recorded as
a checkpoint (signed when the office has an audit signing key), so history up to a
checkpoint provably was not rewritten later, even by someone who recomputes every link.
Checkpoints are numbered 1, 2, 3... without gaps and each signs the hash of the one
before it, so one deleted, or all of them deleted and a fresh one written, shows; the
chainer refuses to go on over a chain shorter than, or different from, the latest
checkpoint (chain rows deleted to have history chained again and signed anew).

Only one chainer runs at a time (a session advisory lock); the others stand by. A rolled
back transaction leaves a position that never held an event: the chain has no row for
it, and ``verify`` knows it was never chained. An event deleted together with its chain row
leaves the same gap, but the link after it was made from the deleted row's link: ``verify``
tells the two apart by that.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from prometheus_client import Counter
from psycopg.rows import dict_row

from application.audit import CHAIN_TABLE, CHECKPOINTS_TABLE
from application.audit import SCHEMA as AUDIT_SCHEMA
from application.store import EVENTS_CHANNEL, EVENTS_TABLE, read_stored

log = logging.getLogger(__name__)

GENESIS = bytes(32)  # the link before the first event
DIGEST_DOMAIN = b"liudong-event-v1\x00"
# Advisory locks in two parts, the second the schema's, so that a store in another schema of
# the same database (a replay, a test's synthetic store) is chained independently.
CHAIN_LOCK = zlib.crc32(b"liudong-event-chainer") & 0x3FFFFFFF
IN_SCHEMA = "hashtext(current_schema())"
CHECKPOINT_LOCK = CHAIN_LOCK + 2  # numbering checkpoints (the chainer and `liudong audit checkpoint`)
CHECKPOINT_VERSION = 2  # 2: numbered, and linked to the checkpoint before

CHAIN_REFUSED = Counter("liudong_chain_refused", "times the chainer refused to chain on: the chain lost rows"
                        " or differs from its latest checkpoint")


# -- the hashes -------------------------------------------------------------------------------
def event_digest(originator_id: UUID, version: int, topic: str, state: bytes) -> bytes:
    """SHA-256 over an event as stored; each part is length-prefixed, so no two events
    share an encoding."""
    h = hashlib.sha256(DIGEST_DOMAIN)
    h.update(originator_id.bytes)
    h.update(int(version).to_bytes(8, "big", signed=True))
    encoded = topic.encode()
    h.update(len(encoded).to_bytes(4, "big"))
    h.update(encoded)
    h.update(len(state).to_bytes(8, "big"))
    h.update(state)
    return h.digest()


def next_link(previous: bytes, position: int, digest: bytes) -> bytes:
    return hashlib.sha256(previous + int(position).to_bytes(8, "big") + digest).digest()


def ensure_chain_schema(conn: psycopg.Connection[Any]) -> None:
    """The chain's tables (made with the store's; here for a store made before them)."""
    row = conn.execute("SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema()"
                       " AND table_name = %s AND column_name = 'previous'", (CHECKPOINTS_TABLE,)).fetchone()
    if row is not None:  # made, with the checkpoints' link (added later: a store made before it gains it)
        return
    with conn.transaction():
        conn.execute(f"SELECT pg_advisory_xact_lock(%s, {IN_SCHEMA})", (CHAIN_LOCK + 1,))
        for statement in AUDIT_SCHEMA:
            conn.execute(statement)


# -- signing ----------------------------------------------------------------------------------
def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def load_private_key(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 private key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(path.read_bytes())
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"{path} is not an Ed25519 public key")
    return key


def generate_keys(private_path: Path, public_path: Path) -> str:
    """A new Ed25519 key pair as PEM files (the private one readable by its owner only)."""
    key = Ed25519PrivateKey.generate()
    private_path.parent.mkdir(parents=True, exist_ok=True)
    public_path.parent.mkdir(parents=True, exist_ok=True)
    private_bytes = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())
    private_path.touch(mode=0o600, exist_ok=False)
    private_path.write_bytes(private_bytes)
    public_path.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                         serialization.PublicFormat.SubjectPublicKeyInfo))
    return key_id(key.public_key())


def checkpoint_message(position: int, link: bytes, events: int, at: datetime) -> bytes:
    """What a version 1 checkpoint's signature covers."""
    return f"liudong-checkpoint-v1|{position}|{link.hex()}|{events}|{at.astimezone(UTC).isoformat()}".encode()


def checkpoint_statement(mark: dict[str, Any]) -> bytes:
    """What a checkpoint states, and its signature covers: version 1, the head; version 2,
    also its number and the hash of the checkpoint before it (empty for the first)."""
    link, at = bytes(mark["link"]), mark["at"]
    if int(mark.get("version") or 1) < 2:
        return checkpoint_message(int(mark["position"]), link, int(mark["events"]), at)
    previous = bytes(mark["previous"]).hex() if mark.get("previous") is not None else ""
    return (f"liudong-checkpoint-v2|{mark['id']}|{mark['position']}|{link.hex()}|{mark['events']}"
            f"|{at.astimezone(UTC).isoformat()}|{previous}").encode()


def checkpoint_hash(mark: dict[str, Any]) -> bytes:
    """What the next checkpoint records as ``previous``."""
    return hashlib.sha256(checkpoint_statement(mark)).digest()


# -- the chainer ------------------------------------------------------------------------------
@dataclass
class Chainer:
    """Chains stored events in order. ``run`` follows the store until ``stopping``;
    ``catch_up`` chains what is there now (the CLI, tests)."""

    dsn: str
    batch_size: int = 2000
    checkpoint_every: int = 10_000  # events between checkpoints
    checkpoint_seconds: float = 3600.0  # at most this long between checkpoints, while events come
    signing_key: Ed25519PrivateKey | None = None
    stopping: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.chained = 0
        self._head_position = 0  # the head this chainer last saw or made: the chain never goes back
        self._since_checkpoint = 0
        self._last_checkpoint = time.monotonic()

    def run(self) -> None:
        pause = 1.0
        while not self.stopping.is_set():
            try:
                self._follow()
                return
            except ChainCut as refused:
                # Not retried: chaining on would sign a history that may have been rewritten.
                log.error("chainer stopped: %s", refused)
                return
            except (psycopg.OperationalError, psycopg.InterfaceError) as error:
                log.warning("chainer lost the database (%s); retrying in %.0f s", type(error).__name__, pause)
            self.stopping.wait(pause)
            pause = min(pause * 2, 30.0)

    def _follow(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True, row_factory=dict_row) as conn, \
                psycopg.connect(self.dsn, autocommit=True) as listener:
            ensure_chain_schema(conn)
            while not self.stopping.is_set():
                if _try_chain_lock(conn):
                    break
                self.stopping.wait(5.0)  # another process chains; stand by
            else:
                return
            listener.execute(f"LISTEN {EVENTS_CHANNEL}")
            self._resume(conn)
            while not self.stopping.is_set():
                if not self.step(conn):
                    for _ in listener.notifies(timeout=1.0, stop_after=1):
                        pass

    def catch_up(self, *, wait: bool = True) -> int | None:
        """Chain every event stored now. Another chainer holding the lock (a running
        service) is waited for, or, with ``wait=False``, left to it: None."""
        with psycopg.connect(self.dsn, autocommit=True, row_factory=dict_row) as conn:
            ensure_chain_schema(conn)
            if wait:
                conn.execute(f"SELECT pg_advisory_lock(%s, {IN_SCHEMA})", (CHAIN_LOCK,))
            else:
                if not _try_chain_lock(conn):
                    return None
            try:
                self._resume(conn)
                while self.step(conn):
                    pass
                if self._since_checkpoint:
                    self._periodic_checkpoint(conn)
            finally:
                conn.execute(f"SELECT pg_advisory_unlock(%s, {IN_SCHEMA})", (CHAIN_LOCK,))
        return self.chained

    def _resume(self, conn: psycopg.Connection[Any]) -> None:
        """Pick up after the chain's head, if it still reaches the latest checkpoint with the
        link recorded there. Found by a review: with chain rows deleted from some position on,
        the chainer chained the (rewritten) events again and signed a checkpoint over them."""
        row = conn.execute(f"SELECT id, position, link FROM {CHECKPOINTS_TABLE} ORDER BY id DESC LIMIT 1").fetchone()
        last = int(row["position"]) if row else 0
        head, _ = self.head(conn)
        if row is not None:
            there = conn.execute(f"SELECT link FROM {CHAIN_TABLE} WHERE position = %s", (last,)).fetchone()
            if head < last or there is None:
                self._refuse(f"the chain ends at position {head}, before checkpoint #{row['id']} at position {last}"
                             " (chain rows were deleted)")
            elif bytes(there["link"]) != bytes(row["link"]):
                self._refuse(f"the chain's link at position {last} differs from the one checkpoint #{row['id']}"
                             " recorded (chain rows were rewritten)")
        self._head_position = head
        counted = conn.execute(f"SELECT count(*) AS n FROM {CHAIN_TABLE} WHERE position > %s", (last,)).fetchone()
        self._since_checkpoint = int(counted["n"]) if counted else 0

    def _refuse(self, what: str) -> None:
        CHAIN_REFUSED.inc()
        raise ChainCut(f"{what}; not chaining on: run `liudong audit verify` and restore the chain from a backup")

    def head(self, conn: psycopg.Connection[Any]) -> tuple[int, bytes]:
        row = conn.execute(f"SELECT position, link FROM {CHAIN_TABLE} ORDER BY position DESC LIMIT 1").fetchone()
        if row is None:
            return 0, GENESIS
        return int(row["position"]), bytes(row["link"])

    def step(self, conn: psycopg.Connection[Any]) -> bool:
        """Chain the next batch; returns whether there was one."""
        position, link = self.head(conn)
        if position < self._head_position:
            self._refuse(f"the chain's head went back from position {self._head_position} to {position}"
                         " (chain rows were deleted)")
        rows = read_stored(conn, position, self.batch_size)
        if not rows:
            return False
        positions, digests, links = [], [], []
        for r in rows:
            digest = event_digest(r.originator_id, r.version, r.topic, r.state)
            link = next_link(link, r.position, digest)
            positions.append(r.position)
            digests.append(digest)
            links.append(link)
        with conn.transaction():
            conn.execute(f"INSERT INTO {CHAIN_TABLE} (position, digest, link)"
                         " SELECT * FROM unnest(%b::bigint[], %b::bytea[], %b::bytea[])", (positions, digests, links))
        self._head_position = positions[-1]
        self.chained += len(rows)
        self._since_checkpoint += len(rows)
        if self._since_checkpoint >= self.checkpoint_every or (
                time.monotonic() - self._last_checkpoint >= self.checkpoint_seconds):
            self._periodic_checkpoint(conn)
        return True

    def _periodic_checkpoint(self, conn: psycopg.Connection[Any]) -> None:
        try:
            self.checkpoint(conn)
        except UnsignedCheckpoint as refused:
            log.warning("%s; no checkpoint recorded", refused)
            self._since_checkpoint = 0
            self._last_checkpoint = time.monotonic()

    def checkpoint(self, conn: psycopg.Connection[Any]) -> dict[str, Any] | None:
        """Record the chain's head (signed, with a signing key)."""
        position, link = self.head(conn)
        if not position:
            return None
        events_row = conn.execute(f"SELECT count(*) AS n FROM {CHAIN_TABLE}").fetchone()
        events = int(events_row["n"]) if events_row else 0
        if self.signing_key is None and conn.execute(
                f"SELECT 1 FROM {CHECKPOINTS_TABLE} WHERE signature IS NOT NULL LIMIT 1").fetchone():
            # Once checkpoints are signed, an unsigned one would read as a stripped signature (found by
            # a review: a process started without the key wrote one, and verify failed for good).
            raise UnsignedCheckpoint("signed checkpoints exist: set LIUDONG_AUDIT_SIGNING_KEY_FILE to record another")
        with conn.transaction():
            conn.execute(f"SELECT pg_advisory_xact_lock(%s, {IN_SCHEMA})", (CHECKPOINT_LOCK,))
            before = conn.execute(f"SELECT {MARK_COLUMNS} FROM {CHECKPOINTS_TABLE} ORDER BY id DESC LIMIT 1").fetchone()
            mark: dict[str, Any] = {
                "id": _next_checkpoint_number(conn), "position": position, "link": link, "events": events,
                "at": conn.execute("SELECT date_trunc('milliseconds', now()) AS at").fetchone()["at"],  # type: ignore[index]
                "version": CHECKPOINT_VERSION, "previous": checkpoint_hash(before) if before else None,
                "key_id": None, "signature": None}
            if self.signing_key is not None:
                mark["signature"] = self.signing_key.sign(checkpoint_statement(mark))
                mark["key_id"] = key_id(self.signing_key.public_key())
            conn.execute(f"INSERT INTO {CHECKPOINTS_TABLE} ({MARK_COLUMNS}) VALUES"
                         " (%(id)s, %(position)s, %(link)s, %(events)s, %(at)s, %(key_id)s, %(signature)s,"
                         " %(version)s, %(previous)s)", mark)
        # The number is counted as given once its checkpoint is stored: setval is not undone by a
        # rollback, so set within the transaction a crash before the commit left a number given
        # and no checkpoint, which verify read as the newest deleted. A crash between the commit
        # and this leaves the count behind the table, which the next number takes into account.
        conn.execute("SELECT setval(s, greatest(coalesce(pg_sequence_last_value(s), 0), %s))"
                     " FROM (SELECT pg_get_serial_sequence(%s, 'id')::regclass AS s) AS q",
                     (mark["id"], CHECKPOINTS_TABLE))
        self._since_checkpoint = 0
        self._last_checkpoint = time.monotonic()
        log.info("checkpoint #%s at position %s (%s events)", mark["id"], position, events)
        return mark


class UnsignedCheckpoint(Exception):
    """An unsigned checkpoint after signed ones: not recorded."""


class ChainCut(Exception):
    """The chain no longer reaches its latest checkpoint, or differs from it there: the
    chainer does not chain on (it would sign a history that may have been rewritten)."""


MARK_COLUMNS = "id, position, link, events, at, key_id, signature, version, previous"


def _next_checkpoint_number(conn: psycopg.Connection[Any]) -> int:
    """The next checkpoint's number: one more than the last ever given, so a deleted
    checkpoint, even the last or all of them, leaves a gap. The id's sequence keeps the
    count (a DELETE leaves it); it is advanced with setval, which is logged exactly, not
    with nextval, which after a crash of the server skips up to 32 numbers and would
    read as deleted checkpoints; the caller sets it once the checkpoint is stored. Called holding
    CHECKPOINT_LOCK."""
    row = conn.execute(
        "SELECT greatest(coalesce(pg_sequence_last_value(pg_get_serial_sequence(%s, 'id')::regclass), 0),"
        f" (SELECT coalesce(max(id), 0) FROM {CHECKPOINTS_TABLE})) + 1 AS n", (CHECKPOINTS_TABLE,)).fetchone()
    return int(row["n"])  # type: ignore[index]


def _try_chain_lock(conn: psycopg.Connection[Any]) -> bool:
    """Take the chainer's lock of this schema if nobody holds it (a session lock)."""
    row = conn.execute(f"SELECT pg_try_advisory_lock(%s, {IN_SCHEMA}) AS ok", (CHAIN_LOCK,)).fetchone()
    return bool(row is not None and row["ok"])


def start_chainer(dsn: str, *, checkpoint_every: int, checkpoint_seconds: float,
                  signing_key: Ed25519PrivateKey | None, stopping: threading.Event) -> threading.Thread:
    chainer = Chainer(dsn, checkpoint_every=checkpoint_every, checkpoint_seconds=checkpoint_seconds,
                      signing_key=signing_key, stopping=stopping)
    thread = threading.Thread(target=chainer.run, name="chainer", daemon=True)
    thread.start()
    return thread


def chain_state(conn: Any) -> dict[str, Any]:
    """How far the chain has come: the last position chained and when, and the store's last
    position (events stored after the chained one are not yet chained)."""
    chained = conn.execute(f"SELECT position, chained_at FROM {CHAIN_TABLE} ORDER BY position DESC LIMIT 1").fetchone()
    stored = conn.execute(f"SELECT max(notification_id) AS p FROM {EVENTS_TABLE}").fetchone()
    return {"chained": int(chained["position"]) if chained else 0,
            "chained_at": chained["chained_at"] if chained else None,
            "stored": int(stored["p"] or 0) if stored else 0}


def checkpoints(conn: Any, *, after_id: int = 0, limit: int = 100, newest_first: bool = False) -> list[dict[str, Any]]:
    """The recorded heads, oldest first after ``after_id``, or the latest ``newest_first``."""
    order = "DESC" if newest_first else "ASC"
    rows = conn.execute(f"SELECT {MARK_COLUMNS} FROM {CHECKPOINTS_TABLE}"
                        f" WHERE id > %s ORDER BY id {order} LIMIT %s", (after_id, limit)).fetchall()
    return [dict(r) for r in rows]


def count_checkpoints(conn: Any) -> int:
    row = conn.execute(f"SELECT count(*) AS n FROM {CHECKPOINTS_TABLE}").fetchone()
    return int(row["n"]) if row else 0


# -- verification -----------------------------------------------------------------------------
@dataclass
class Break:
    """The first place the chain does not hold."""

    position: int
    kind: str  # altered, missing, inserted, reordered, link, checkpoint, expected
    detail: str
    # For a checkpoint that does not hold: the position after the last one that did. History
    # rewritten and chained again reads consistent up to the checkpoint, so the change lies
    # somewhere from here to ``position`` (compare with an export or the Kafka topics).
    since: int | None = None


@dataclass
class Verification:
    events: int = 0
    head_position: int = 0
    head: bytes = GENESIS
    unchained: int = 0  # events stored after the chain's head (not yet chained)
    checkpoints: int = 0
    seconds: float = 0.0
    broken: Break | None = None

    @property
    def ok(self) -> bool:
        return self.broken is None


def _merged(conn: psycopg.Connection[Any], upto: int, batch: int) -> Iterator[dict[str, Any]]:
    """Events and chain rows side by side by position, up to the chain's head (a server-side
    cursor, so memory stays flat however long the store)."""
    with conn.transaction(), conn.cursor(name="liudong_verify", row_factory=dict_row) as cur:
        cur.itersize = batch
        cur.execute(
            f"SELECT coalesce(e.notification_id, c.position) AS at, e.notification_id, e.originator_id,"
            f" e.originator_version, e.topic, e.state, c.position, c.digest, c.link"
            f" FROM {EVENTS_TABLE} e FULL OUTER JOIN {CHAIN_TABLE} c ON c.position = e.notification_id"
            f" WHERE coalesce(e.notification_id, c.position) <= %s ORDER BY 1", (upto,))
        yield from cur


def verify(conn: psycopg.Connection[Any], *, public_key: Ed25519PublicKey | None = None,
           progress: Callable[[int, int], None] | None = None, batch: int = 5000,
           expect: tuple[int, bytes] | None = None) -> Verification:
    """Recompute the chain from the stored events and compare: every link, every digest,
    no event missing or added below the head, and every checkpoint (its signature too,
    with the office's public key), numbered without gaps and each linked to the one
    before. ``expect``: a head kept outside the database (a published checkpoint, an
    export's last line) the chain must still hold at its position."""
    started = time.monotonic()
    result = Verification()
    head_row = _one(conn, f"SELECT max(position) AS p, count(*) AS n FROM {CHAIN_TABLE}")
    upto = int(head_row["p"] or 0)
    total = int(head_row["n"] or 0)
    with conn.cursor(row_factory=dict_row) as cur:
        listed = cur.execute(f"SELECT {MARK_COLUMNS} FROM {CHECKPOINTS_TABLE} ORDER BY id").fetchall()
    # Every checkpoint of a position (two recorded with no event between share one): each is checked
    # (found by a review: only the last of a position was, so a forged signature on the first passed).
    marks: dict[int, list[dict[str, Any]]] = {}
    for r in listed:
        marks.setdefault(int(r["position"]), []).append(r)
    # Checkpoints recorded before the first signed one (before the office made its key) need no signature.
    first_signed = min((int(r["position"]) for r in listed if r["signature"] is not None), default=upto + 1)
    link = GENESIS
    seen = 0
    last = 0  # the position of the last event that held
    held = 0  # the position of the last checkpoint that held
    for row in _merged(conn, upto, batch):
        at = int(row["at"])
        if row["position"] is None:
            result.broken = Break(at, "inserted", f"an event at position {at} was never chained"
                                  " (added after the chain passed it)")
            break
        if row["notification_id"] is None:
            result.broken = Break(at, "missing", f"the event chained at position {at} is no longer stored (deleted)")
            break
        digest = event_digest(row["originator_id"], row["originator_version"], row["topic"], bytes(row["state"]))
        if digest != bytes(row["digest"]):
            moved = _one(conn, f"SELECT min(position) AS p FROM {CHAIN_TABLE} WHERE digest = %s AND position <> %s",
                         (digest, at))["p"]
            if moved is not None:
                result.broken = Break(at, "reordered", f"the event at position {at} is the one chained at position"
                                      f" {moved} (events were moved or swapped)")
            else:
                result.broken = Break(at, "altered", f"the event at position {at} ({row['topic']}, aggregate"
                                      f" {row['originator_id']} v{row['originator_version']}) differs from what was"
                                      " chained (its stored bytes were changed)")
            break
        link = next_link(link, at, digest)
        if link != bytes(row["link"]):
            result.broken = _link_break(conn, at, last, bytes(row["link"]), marks)
            break
        seen += 1
        last = at
        if expect is not None and at == expect[0]:
            if link != expect[1]:
                result.broken = Break(at, "expected", f"the chain's head at position {at} is {link.hex()}, not the"
                                      f" {expect[1].hex()} expected: history up to it was rewritten")
                break
            expect = None
        problem = None
        for mark in marks.pop(at, []):
            problem = _check_mark(mark, link, seen, public_key, unsigned_allowed=at < first_signed)
            if problem:
                result.broken = Break(at, "checkpoint", f"{problem}; the change lies between positions {held + 1}"
                                      f" and {at} (the last checkpoint before held)", since=held + 1)
                break
            if public_key is not None and mark["signature"] is not None:  # unsigned ones can be rewritten too
                held = at
            result.checkpoints += 1
        if problem:
            break
        if progress is not None and seen % batch == 0:
            progress(seen, total)
    if result.broken is None and marks:
        first = min(marks)
        result.broken = Break(first, "checkpoint", f"checkpoint #{marks[first][0]['id']} names position {first},"
                              " which the chain does not reach now (history after it was cut or rewritten;"
                              f" the last checkpoint that held is at position {held})", since=held + 1)
    if result.broken is None and expect is not None:
        result.broken = Break(expect[0], "expected", f"the chain does not reach position {expect[0]}, where a head"
                              f" was expected (it ends at {last}: history after it was cut, or rewritten)",
                              since=last + 1)
    if result.broken is None:
        result.broken = _check_sequence(listed, public_key, upto)
    if result.broken is None:
        result.broken = _newest_gone(conn, listed)
    result.events = seen
    result.head_position = upto if result.broken is None else 0
    result.head = link
    result.unchained = int(_one(conn, f"SELECT count(*) AS n FROM {EVENTS_TABLE} WHERE notification_id > %s",
                                (upto,))["n"])
    result.seconds = time.monotonic() - started
    if progress is not None:
        progress(seen, total)
    return result


def _link_break(conn: psycopg.Connection[Any], at: int, last: int, stored: bytes,
                marks: dict[int, list[dict[str, Any]]]) -> Break:
    """A link that does not follow from the one before: rewritten, or made from an event that
    is gone with its chain row. Positions between ``last`` and ``at`` that hold neither may
    never have held an event (a rolled-back transaction: the chainer links over it), so the
    gap alone proves nothing. But if the chain after ``at`` was made from the link stored at
    ``at`` (or a checkpoint recorded it), that link is the chainer's own, and it was made from
    a link that is no longer there: an event chained in the gap was deleted, chain row and all."""
    if at - last > 1 and _continues_from(conn, at, stored, marks):
        first, end = last + 1, at - 1
        if first == end:
            return Break(first, "missing", f"the event chained at position {first} is no longer stored and its chain"
                         f" row is gone too (deleted; the link at position {at} was made from it)")
        return Break(first, "missing", f"an event chained between positions {first} and {end} is no longer stored"
                     f" and its chain row is gone too (deleted; the link at position {at} was made from it); the"
                     " chain does not tell which of these positions held it (the others never held an event)")
    return Break(at, "link", f"the chain's link at position {at} was rewritten")


def _continues_from(conn: psycopg.Connection[Any], at: int, link: bytes,
                    marks: dict[int, list[dict[str, Any]]]) -> bool:
    """Whether the link stored at ``at`` is the one the chain went on from: the next chain
    row's link was made from it, or a checkpoint recorded it as the head."""
    if any(bytes(mark["link"]) == link for mark in marks.get(at, [])):
        return True
    with conn.cursor(row_factory=dict_row) as cur:
        after = cur.execute(f"SELECT position, digest, link FROM {CHAIN_TABLE} WHERE position > %s"
                            " ORDER BY position LIMIT 1", (at,)).fetchone()
    return after is not None and next_link(link, int(after["position"]), bytes(after["digest"])) == bytes(after["link"])


def _check_mark(mark: dict[str, Any], link: bytes, events: int, public_key: Ed25519PublicKey | None,
                unsigned_allowed: bool = False) -> str | None:
    number = mark["id"]
    if bytes(mark["link"]) != link:
        return (f"checkpoint #{number} recorded a different head at position {mark['position']}:"
                " history up to it was rewritten after the checkpoint")
    if int(mark["events"]) != events:
        return f"checkpoint #{number} counted {mark['events']} events up to it; the chain has {events}"
    signature = mark["signature"]
    if public_key is not None:
        if signature is None and unsigned_allowed:
            return None  # recorded before the office had a signing key: its link is checked, no more
        if signature is None:
            return (f"checkpoint #{number} is not signed, although checkpoints before it are (its signature was"
                    " removed, or it was written without the key)")
        if mark["key_id"] != key_id(public_key):
            return f"checkpoint #{number} was signed with key {mark['key_id']}, not {key_id(public_key)}"
        try:
            public_key.verify(bytes(signature), checkpoint_statement(mark))
        except InvalidSignature:
            return f"checkpoint #{number}'s signature does not verify"
    return None


def _newest_gone(conn: psycopg.Connection[Any], marks: list[dict[str, Any]]) -> Break | None:
    """The newest checkpoints deleted: the numbers given out (the id's sequence, which a DELETE
    leaves) go beyond the last checkpoint kept (found by a review: with the newest deleted and the
    history after the last kept one rewritten, verify said ok until the next checkpoint)."""
    row = _one(conn, "SELECT pg_sequence_last_value(pg_get_serial_sequence(%s, 'id')::regclass) AS n",
               (CHECKPOINTS_TABLE,))
    given = int(row["n"] or 0)
    kept = int(marks[-1]["id"]) if marks else 0
    if given <= kept:
        return None
    since = int(marks[-1]["position"]) + 1 if marks else 1
    gone = f"#{given} is" if given == kept + 1 else f"#{kept + 1} to #{given} are"
    return Break(since, "checkpoint", f"checkpoint {gone} gone (deleted): the newest kept is "
                 + (f"#{kept}" if kept else "none") + f"; history after position {since - 1} may have been"
                 " rewritten", since=since)


def _check_sequence(marks: list[dict[str, Any]], public_key: Ed25519PublicKey | None, head: int) -> Break | None:
    """The checkpoints as a whole: numbered 1, 2, 3... (a gap is a deleted checkpoint: the
    numbers never skip), each of version 2 linked to the one before it, never an older
    version after a newer, never back in position; and, with the office's key, at least
    one signed over a chain with events, and none unsigned after a signed one. Found by a
    review: with every checkpoint deleted (or their signatures), history rewritten and
    chained again verified as ok."""
    before: dict[str, Any] | None = None
    signed = False
    for mark in marks:
        number, position = int(mark["id"]), int(mark["position"])
        since = int(before["position"]) + 1 if before else 1
        expected = int(before["id"]) + 1 if before else 1
        after = f"checkpoint #{before['id']}" if before else "none"
        if number != expected:
            gone = f"#{expected} is" if number == expected + 1 else f"#{expected} to #{number - 1} are"
            return Break(position, "checkpoint", f"checkpoint {gone} gone (deleted): checkpoint #{number} follows"
                         f" {after}; history after position {since - 1} may have been rewritten and chained again",
                         since=since)
        version = int(mark["version"] or 1)
        if before is not None and version < int(before["version"] or 1):
            return Break(position, "checkpoint", f"checkpoint #{number} is of version {version}, after one of version"
                         f" {before['version']} (rewritten in the old form, which links to nothing)", since=since)
        if version >= 2:
            previous = bytes(mark["previous"]) if mark["previous"] is not None else None
            if previous != (checkpoint_hash(before) if before else None):
                return Break(position, "checkpoint", f"checkpoint #{number} does not link to the one before it"
                             f" ({after}): one of them was rewritten or replaced", since=since)
        if before is not None and position < int(before["position"]):
            return Break(position, "checkpoint", f"checkpoint #{number} names position {position}, before"
                         f" {after}'s {before['position']} (the chain was cut and made again)", since=position)
        if public_key is not None and signed and mark["signature"] is None:
            return Break(position, "checkpoint", f"checkpoint #{number} is not signed, although checkpoints before"
                         " it are (its signature was removed, or it was written without the key)", since=since)
        signed = signed or mark["signature"] is not None
        before = mark
    if public_key is not None and head and not signed:
        return Break(head, "checkpoint", "no checkpoint is signed: nothing proves the history was not rewritten"
                     " (were the checkpoints or their signatures removed? If the office has only just made its key,"
                     " record one with `liudong audit checkpoint`)", since=1)
    return None


def _one(conn: psycopg.Connection[Any], query: str, params: Any = None) -> dict[str, Any]:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(query, params).fetchone()
    assert row is not None
    return row


def b64(value: bytes | None) -> str | None:
    return base64.b64encode(value).decode() if value is not None else None
