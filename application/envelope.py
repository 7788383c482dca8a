"""Stored events as CloudEvents 1.0 (structured mode, JSON), the form in which they leave
the office on Kafka, and back.

One message per stored event. Key: the aggregate id (all of an aggregate's events land on
one partition, in order). Value::

    {"specversion": "1.0", "id": "<aggregate id>:<version>", "source": "urn:liudong:office",
     "type": "liudong.Resident.Registered", "subject": "<aggregate id>",
     "time": "<recorded at>", "datacontenttype": "application/json",
     "position": 42, "previousposition": 41, "aggregateversion": 1,
     "actor": "li.wei", "actorrole": "caseworker", "effectivedate": "2026-03-01",
     "data": {...the event's fields as plain JSON...}}

``id`` is the same every time an event is published again, so consumers drop duplicates
by it. ``previousposition`` is the stored event before this one, which lets a consumer of
several partitions tell when it has seen every event up to a position.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from cloudevents.core.bindings.kafka import KafkaMessage, from_structured, to_structured
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from application.events import WITHHELD_ON_KAFKA, EventCatalogue, UndecodableEvent, public_state
from application.store import StoredRow
from projections.engine import Delivery

TYPE_PREFIX = "liudong."
FORMAT = JSONFormat()


@dataclass(frozen=True)
class OutgoingMessage:
    topic: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]
    event_id: str
    position: int


def event_id(originator_id: UUID | str, version: int) -> str:
    return f"{originator_id}:{version}"


def to_message(row: StoredRow, previous: int, catalogue: EventCatalogue, *, source: str,
               topic_prefix: str) -> OutgoingMessage:
    """The Kafka message of one stored event."""
    event_type = catalogue.for_topic(row.topic)
    state = public_state(row.state)
    for name in WITHHELD_ON_KAFKA & state.keys():  # the topic still says who got which key, and when
        state[name] = None
    recorded = state.get("recorded_at") or state.get("timestamp")
    attributes: dict[str, Any] = {
        "id": event_id(row.originator_id, row.version),
        "source": source,
        "type": TYPE_PREFIX + (event_type.name if event_type is not None else row.topic),
        "subject": str(row.originator_id),
        "time": datetime.fromisoformat(recorded) if isinstance(recorded, str) else datetime.now(UTC),
        "datacontenttype": "application/json",
        "position": row.position,
        "previousposition": previous,
        "aggregateversion": row.version,
    }
    if state.get("actor_id"):
        attributes["actor"] = str(state["actor_id"])
    if state.get("actor_role"):
        attributes["actorrole"] = str(state["actor_role"])
    effective = event_type.effective_date(state) if event_type is not None else None
    if effective:
        attributes["effectivedate"] = effective
    message: KafkaMessage = to_structured(CloudEvent(attributes, data=state), FORMAT,
                                          key_mapper=lambda e: e.get_subject())
    kind = catalogue.kind_of_topic(row.topic)
    key = message.key.encode() if isinstance(message.key, str) else (message.key or b"")
    return OutgoingMessage(
        topic=f"{topic_prefix}.{kind}",
        key=key,
        value=message.value,
        headers=list(message.headers.items()),
        event_id=attributes["id"],
        position=row.position,
    )


def from_message(value: bytes, catalogue: EventCatalogue, *, key: bytes | None = None,
                 headers: dict[str, bytes] | None = None) -> tuple[dict[str, Any], Any]:
    """The CloudEvent's attributes and the domain event it carries. Raises
    ``UndecodableEvent`` with what could be read in ``attributes``."""
    try:
        cloud_event = from_structured(
            KafkaMessage(headers=headers or {"content-type": b"application/cloudevents+json"}, key=key,
                         value=value),
            FORMAT,
        )
    except Exception as error:  # anything the SDK rejects: not a CloudEvent of ours
        raise UndecodableEvent(f"not a CloudEvent: {type(error).__name__}: {error}"[:500]) from error
    attributes = cloud_event.get_attributes()
    data = cloud_event.get_data()
    type_name = str(attributes.get("type", ""))
    if not type_name.startswith(TYPE_PREFIX):
        raise UndecodableEvent(f"unknown event type {type_name!r}")
    if not isinstance(data, dict):
        raise UndecodableEvent("the CloudEvent's data is not a JSON object")
    try:
        version = int(attributes["aggregateversion"])
        subject = UUID(str(attributes["subject"]))
    except (KeyError, ValueError) as error:
        raise UndecodableEvent(f"missing or malformed subject or aggregateversion: {error}") from error
    event = catalogue.decode(type_name[len(TYPE_PREFIX):], subject, version, data)
    return attributes, event


def delivery_from_message(value: bytes | None, catalogue: EventCatalogue, *, stream: str, offset: int,
                          key: bytes | None = None) -> Delivery:
    """A Kafka message as the engine takes it: decoded, or a delivery without an event
    carrying what could be read of it (a dead letter)."""
    raw = value or b""
    try:
        attributes, event = from_message(raw, catalogue, key=key)
    except UndecodableEvent as error:
        salvaged = _salvage(raw)
        return Delivery(
            position=salvaged.get("position"), originator_id=salvaged.get("subject"),
            version=salvaged.get("aggregateversion"), event_type=str(salvaged.get("type") or "unknown")[:200],
            event=None, error=str(error), previous=salvaged.get("previousposition"), stream=stream,
            offset=offset, payload=raw,
        )
    return Delivery(
        position=_int(attributes.get("position")), originator_id=event.originator_id,
        version=event.originator_version, event_type=str(attributes["type"]), event=event,
        previous=_int(attributes.get("previousposition")), stream=stream, offset=offset, payload=None,
    )


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _salvage(raw: bytes) -> dict[str, Any]:
    """What can be read of a message that did not decode: its position and aggregate, if
    they are there, so the low-water mark and the aggregate's order are kept."""
    import json

    try:
        document = json.loads(raw)
    except ValueError:
        return {}
    if not isinstance(document, dict):
        return {}
    result: dict[str, Any] = {"type": document.get("type")}
    for name in ("position", "previousposition", "aggregateversion"):
        result[name] = _int(document.get(name))
    try:
        result["subject"] = UUID(str(document.get("subject")))
    except ValueError:
        result["subject"] = None
    if result["subject"] is None or result["aggregateversion"] is None:
        result["subject"] = result["aggregateversion"] = None
    return result
