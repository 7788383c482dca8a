"""Exports for outside auditors: events with their chain links and a signed manifest, in a
JSON Lines file that verifies offline, with no database.

Each event line is canonical JSON (sorted keys, no spaces): position, aggregate id,
version, topic, the stored state (base64, the bytes exactly as stored: personal fields
stay sealed), its digest, the link before it and its own link. The last line is the
manifest: the range, counts, the first and last link, a SHA-256 over every event line,
the store's last position and how many stored events were not yet chained (so not
exported), and an Ed25519 signature over the rest of the manifest.

A range export (``--from``/``--to``) is a contiguous stretch of the chain, so each line's
``prev`` is the line before's ``link``; an export of one aggregate holds only its events,
each verifiable on its own and all covered by the signature.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from uuid import UUID

import psycopg
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from psycopg.rows import dict_row

from application.audit import CHAIN_TABLE
from application.chain import GENESIS, event_digest, key_id, next_link
from application.store import EVENTS_TABLE

FORMAT = "liudong-audit-export/1"
EVENT_FIELDS = ("digest", "link", "originator_id", "position", "prev", "state", "topic", "version")


def canonical(value: dict[str, Any]) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def recorded_time(state: bytes) -> datetime | None:
    """When an event was recorded, from its stored state (``recorded_at``, else the
    library's ``timestamp``), without opening any sealed field."""
    try:
        data = json.loads(state)
    except ValueError:
        return None
    for name in ("recorded_at", "timestamp"):
        value = data.get(name)
        if isinstance(value, dict) and isinstance(value.get("_data_"), str):
            value = value["_data_"]
        if isinstance(value, str):
            try:
                when = datetime.fromisoformat(value)
            except ValueError:
                continue
            return when if when.tzinfo else when.replace(tzinfo=UTC)
    return None


@dataclass
class ExportSummary:
    events: int = 0
    first_position: int | None = None
    last_position: int | None = None
    unchained: int = 0  # stored events after the chain's head: not in the bundle, whatever the range
    manifest: dict[str, Any] = field(default_factory=dict)


def _chained(conn: psycopg.Connection[Any], aggregate: UUID | None, first: int, last: int | None,
             batch: int = 5000) -> Iterator[dict[str, Any]]:
    clauses, params = ["c.position > %s"], [first - 1]
    if last is not None:
        clauses.append("c.position <= %s")
        params.append(last)
    if aggregate is not None:
        clauses.append("e.originator_id = %s")
        params.append(aggregate)  # type: ignore[arg-type]
    with conn.transaction(), conn.cursor(name="liudong_export", row_factory=dict_row) as cur:
        cur.itersize = batch
        cur.execute(
            f"SELECT c.position, c.digest, c.link, e.originator_id, e.originator_version, e.topic, e.state,"
            f" (SELECT p.link FROM {CHAIN_TABLE} p WHERE p.position < c.position ORDER BY p.position DESC LIMIT 1)"
            f" AS prev FROM {CHAIN_TABLE} c JOIN {EVENTS_TABLE} e ON e.notification_id = c.position"
            f" WHERE {' AND '.join(clauses)} ORDER BY c.position", params)
        yield from cur


def _bounds(conn: psycopg.Connection[Any], since: datetime | None, until: datetime | None) -> tuple[int, int | None]:
    """The chain positions of the first event recorded at or after ``since`` and the last
    recorded at or before ``until`` (a contiguous stretch between them)."""
    if since is None and until is None:
        return 1, None
    first, last = None, None
    with conn.transaction(), conn.cursor(name="liudong_export_bounds", row_factory=dict_row) as cur:
        cur.itersize = 5000
        cur.execute(f"SELECT c.position, e.state FROM {CHAIN_TABLE} c JOIN {EVENTS_TABLE} e"
                    f" ON e.notification_id = c.position ORDER BY c.position")
        for row in cur:
            when = recorded_time(bytes(row["state"]))
            if when is None:
                continue
            if first is None and (since is None or when >= since):
                first = int(row["position"])
            if until is None or when <= until:
                last = int(row["position"])
    if first is None or last is None:
        # Nothing recorded in the range. ``last`` None is not "no upper bound" here: no event was
        # recorded by ``until`` (found by a review: --to before every event exported the whole store,
        # under a signed manifest claiming the range asked for).
        return 1, 0
    return first, last


def export(conn: psycopg.Connection[Any], out: IO[bytes], *, signing_key: Ed25519PrivateKey,
           since: datetime | None = None, until: datetime | None = None, aggregate: UUID | None = None,
           exported_by: str = "") -> ExportSummary:
    """Write the bundle to ``out``; returns what was exported."""
    first, last = _bounds(conn, since, until)
    summary = ExportSummary()
    heads = conn.execute(f"SELECT (SELECT max(notification_id) FROM {EVENTS_TABLE}) AS stored,"
                         f" (SELECT max(position) FROM {CHAIN_TABLE}) AS chained").fetchone()
    store_head = int(heads["stored"] or 0) if heads else 0
    chain_head = int(heads["chained"] or 0) if heads else 0
    left_out = conn.execute(f"SELECT count(*) AS n FROM {EVENTS_TABLE} WHERE notification_id > %s",
                            (chain_head,)).fetchone()
    summary.unchained = int(left_out["n"]) if left_out else 0
    lines = hashlib.sha256()
    kinds: Counter[str] = Counter()
    aggregates: set[str] = set()
    first_prev = first_link = last_link = None
    for row in _chained(conn, aggregate, first, last):
        prev = bytes(row["prev"]) if row["prev"] is not None else GENESIS
        line = canonical({
            "position": int(row["position"]), "originator_id": str(row["originator_id"]),
            "version": int(row["originator_version"]), "topic": row["topic"],
            "state": base64.b64encode(bytes(row["state"])).decode(), "digest": bytes(row["digest"]).hex(),
            "prev": prev.hex(), "link": bytes(row["link"]).hex(),
        }) + b"\n"
        out.write(line)
        lines.update(line)
        summary.events += 1
        kinds[row["topic"]] += 1
        aggregates.add(str(row["originator_id"]))
        if summary.first_position is None:
            summary.first_position = int(row["position"])
            first_prev, first_link = prev.hex(), bytes(row["link"]).hex()
        summary.last_position = int(row["position"])
        last_link = bytes(row["link"]).hex()
    manifest: dict[str, Any] = {
        "type": "manifest", "format": FORMAT, "generated_at": datetime.now(UTC).isoformat(),
        "generated_by": exported_by,
        "range": {"from": since.isoformat() if since else None, "to": until.isoformat() if until else None,
                  "aggregate": str(aggregate) if aggregate else None,
                  "first_position": summary.first_position, "last_position": summary.last_position},
        "contiguous": aggregate is None, "events": summary.events, "aggregates": len(aggregates),
        "by_topic": dict(sorted(kinds.items())), "first_prev": first_prev, "first_link": first_link,
        "last_link": last_link, "lines_sha256": lines.hexdigest(), "key_id": key_id(signing_key.public_key()),
        "store_head": store_head, "chain_head": chain_head, "unchained": summary.unchained,
    }
    manifest["signature"] = base64.b64encode(signing_key.sign(canonical(manifest))).decode()
    out.write(canonical(manifest) + b"\n")
    summary.manifest = manifest
    return summary


# -- offline verification ---------------------------------------------------------------------
@dataclass
class ExportCheck:
    ok: bool
    events: int = 0
    problem: str | None = None
    line: int | None = None


def verify_export(path: Path, public_key: Ed25519PublicKey) -> ExportCheck:
    """Check a bundle with the office's public key alone: every line as exported, each
    event's digest and link, the chain from line to line (a range export), and the signed
    manifest (counts, first and last link, the hash of every event line)."""
    raw = path.read_bytes()
    if not raw.endswith(b"\n"):
        return ExportCheck(False, problem="the file does not end with a newline: it was cut short")
    rows = raw[:-1].split(b"\n")
    if not rows or not rows[-1]:
        return ExportCheck(False, problem="no manifest")
    lines = hashlib.sha256()
    previous: dict[str, Any] | None = None
    kinds: Counter[str] = Counter()
    aggregates: set[str] = set()
    first: dict[str, Any] | None = None
    manifest_number = len(rows)
    manifest = _parse(rows[-1])
    if manifest is None or manifest.get("type") != "manifest":
        return ExportCheck(False, problem="the last line is not the manifest (or not as exported)",
                           line=manifest_number)
    contiguous = bool(manifest.get("contiguous"))
    for number, line in enumerate(rows[:-1], start=1):
        event = _parse(line)
        if event is None:
            return ExportCheck(False, number - 1, "not an event line as exported (altered JSON)", number)
        problem = _check_event(event)
        if problem:
            return ExportCheck(False, number - 1, problem, number)
        if previous is not None and int(event["position"]) <= int(previous["position"]):
            return ExportCheck(False, number - 1, "positions are not in increasing order", number)
        if contiguous and previous is not None and event["prev"] != previous["link"]:
            return ExportCheck(False, number - 1, "does not follow the line before it in the chain", number)
        lines.update(line + b"\n")
        kinds[event["topic"]] += 1
        aggregates.add(event["originator_id"])
        first = first or event
        previous = event
    events = len(rows) - 1
    signature = manifest.pop("signature", None)
    if manifest.get("key_id") != key_id(public_key):
        return ExportCheck(False, events, f"signed with key {manifest.get('key_id')}, not {key_id(public_key)}",
                           manifest_number)
    try:
        public_key.verify(base64.b64decode(str(signature)), canonical(manifest))
    except (InvalidSignature, ValueError):
        return ExportCheck(False, events, "the manifest's signature does not verify", manifest_number)
    expected = {
        "events": events, "aggregates": len(aggregates), "by_topic": dict(sorted(kinds.items())),
        "lines_sha256": lines.hexdigest(),
        "first_prev": first["prev"] if first else None, "first_link": first["link"] if first else None,
        "last_link": previous["link"] if previous else None,
    }
    for name, value in expected.items():
        if manifest.get(name) != value:
            return ExportCheck(False, events, f"the manifest's {name} does not match the events", manifest_number)
    return ExportCheck(True, events)


def _parse(line: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(line)
    except ValueError:
        return None
    if not isinstance(value, dict) or canonical(value) != line:
        return None
    return value


def _check_event(event: dict[str, Any]) -> str | None:
    if sorted(event) != sorted(EVENT_FIELDS):
        return "not an event line as exported (its fields differ)"
    try:
        state = base64.b64decode(event["state"], validate=True)
        if base64.b64encode(state).decode() != event["state"]:  # other padding bits: same bytes, another line
            return "the event's state is not written as exported (altered base64)"
        digest = event_digest(UUID(event["originator_id"]), int(event["version"]), str(event["topic"]), state)
        prev = bytes.fromhex(event["prev"])
        link = bytes.fromhex(event["link"])
        position = int(event["position"])
        if next_link(prev, position, digest) != link:
            return "the event's link does not follow from the link before it (altered)"
    except (ValueError, TypeError, AttributeError, OverflowError):  # found by a review: a number for an id, or
        return "a field is not as exported (altered)"  # a position too big for 8 bytes, ended in a traceback
    if digest.hex() != event["digest"]:
        return "the event's bytes do not match its digest (altered)"
    return None
