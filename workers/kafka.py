"""What the relay and the workers share about Kafka: client settings from ours, the
topics and their identities, and the check that the producer really is idempotent."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import KafkaConfigurationError, TopicAlreadyExistsError

from application.events import KINDS, UNKNOWN_KIND
from application.settings import Settings

log = logging.getLogger(__name__)

DEAD_LETTER_SUFFIX = "dead-letters"


class ProducerMisconfigured(RuntimeError):
    """A producer setting would lose or duplicate events silently."""


def event_topics(settings: Settings) -> list[str]:
    return [f"{settings.kafka_topic_prefix}.{kind}" for kind in (*KINDS, UNKNOWN_KIND)]


def dead_letter_topic(settings: Settings) -> str:
    return f"{settings.kafka_topic_prefix}.{DEAD_LETTER_SUFFIX}"


def client_timeouts(settings: Settings) -> dict[str, Any]:
    """How long a client waits for a broker that does not answer: kafka-python's 30 s would
    keep a worker or relay from stopping on SIGTERM that long while the broker is down; our
    own loops retry with backoff instead (LIUDONG_KAFKA_CLIENT_TIMEOUT_MS)."""
    return {"bootstrap_timeout_ms": settings.kafka_client_timeout_ms,
            "reconnect_backoff_max_ms": settings.kafka_client_timeout_ms}


def bootstrap(settings: Settings) -> list[str]:
    assert settings.kafka_bootstrap_servers, "LIUDONG_KAFKA_BOOTSTRAP_SERVERS is not set"
    return [s.strip() for s in settings.kafka_bootstrap_servers.split(",") if s.strip()]


def create_producer(settings: Settings, **overrides: Any) -> KafkaProducer:
    """One long-lived producer: every send acknowledged by all in-sync replicas,
    idempotence on, so a retry inside the client never writes a message twice."""
    config = producer_config(settings, **overrides)
    try:
        producer = KafkaProducer(**config)
    except KafkaConfigurationError as error:  # a setting kafka-python refuses: no retry mends it
        raise ProducerMisconfigured(f"refusing producer settings: {error}") from error
    except Exception as error:  # kafka-python refuses settings that contradict idempotence
        if "idempoten" in str(error).lower():
            raise ProducerMisconfigured(f"refusing producer settings: {error}") from error
        raise
    check_producer(producer)
    return producer


def producer_config(settings: Settings, **overrides: Any) -> dict[str, Any]:
    """The producer's settings: ours, then the configured ones over them."""
    config: dict[str, Any] = {
        "bootstrap_servers": bootstrap(settings),
        "acks": "all",
        "enable_idempotence": True,
        # Fuller produce requests: kafka-python's 16 KiB batches hold about twenty of our
        # messages, and every new batch wakes the sender thread, which competes with the relay
        # for one interpreter. 128 KiB and 10 ms took the relay from ~7,000 to ~11,000 events/s
        # on the 2-core bench machine (docs/adr/0008).
        "batch_size": 131_072,
        "linger_ms": 10,
        "allow_auto_create_topics": False,
        "metadata_max_age_ms": settings.kafka_metadata_max_age_ms,
        "request_timeout_ms": 10_000,
        "delivery_timeout_ms": 30_000,
        "max_block_ms": 10_000,
        "client_id": "liudong-relay",
        **client_timeouts(settings),
    }
    config.update(settings.kafka_producer_config)
    config.update(overrides)
    return config


def check_producer_settings(settings: Settings) -> None:
    """The configured settings, checked before the relay connects or waits on standby: a
    relay that would refuse them when it takes over says so at once."""
    problems = _problems({"retries": 1, **producer_config(settings)})
    if problems:
        raise ProducerMisconfigured("; ".join(problems))


def check_producer(producer: KafkaProducer) -> None:
    """The settings in effect after kafka-python resolved them (and the broker's
    version): refuse any that would give up idempotence or full acknowledgement."""
    problems = _problems(producer.config)
    if problems:
        producer.close(timeout=1)
        raise ProducerMisconfigured("; ".join(problems))


def _problems(config: dict[str, Any]) -> list[str]:
    problems = []
    if not config.get("enable_idempotence"):
        problems.append("enable_idempotence is off (a setting or the broker's version disabled it)")
    if config.get("acks") not in (-1, "all"):
        problems.append(f"acks is {config.get('acks')!r}, not 'all'")
    if not config.get("retries"):
        problems.append("retries is 0")
    if int(config.get("max_in_flight_requests_per_connection", 5)) > 5:
        problems.append("max_in_flight_requests_per_connection is over 5")
    if config.get("transactional_id"):
        problems.append("transactional_id is set (the relay is not transactional)")
    return problems


def admin_client(settings: Settings) -> KafkaAdminClient:
    return KafkaAdminClient(bootstrap_servers=bootstrap(settings), client_id="liudong-admin",
                            **client_timeouts(settings),
                            request_timeout_ms=10_000)


def ensure_topics(admin: KafkaAdminClient, settings: Settings, topics: Iterable[str]) -> dict[str, str]:
    """Create the missing topics with the configured partitions; returns each topic's
    identity (a new identity means the topic was deleted and made again: its messages
    are gone)."""
    wanted = list(topics)
    existing = set(admin.list_topics())
    missing = [t for t in wanted if t not in existing]
    if missing:
        try:
            admin.create_topics([NewTopic(t, settings.kafka_partitions, settings.kafka_replication_factor)
                                 for t in missing])
            log.info("created topics %s with %d partitions", ", ".join(missing), settings.kafka_partitions)
        except TopicAlreadyExistsError:
            pass
    described = admin.describe_topics(wanted)
    other = sorted(f"{d['name']} ({len(d.get('partitions') or [])})" for d in described
                   if not d.get("error_code") and len(d.get("partitions") or []) != settings.kafka_partitions)
    if other:  # made by someone else (a broker creating topics on a client's first request)
        log.warning("topics %s do not have the configured %d partitions; the partition count of an existing"
                    " topic is not changed here", ", ".join(other), settings.kafka_partitions)
    return _ids(described)


def topic_ids(admin: KafkaAdminClient, topics: Iterable[str]) -> dict[str, str]:
    return _ids(admin.describe_topics(list(topics)))


def _ids(described: list[dict[str, Any]]) -> dict[str, str]:
    return {d["name"]: str(d.get("topic_id") or "") for d in described if not d.get("error_code")}
