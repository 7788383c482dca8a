"""Prometheus metrics every process can serve: what this process did (counters and
histograms registered where they are measured) and, read from PostgreSQL when scraped,
how far the relay and each view are behind the store and how many dead letters wait."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from application.services import Services

COMMAND_SECONDS = Histogram(
    "liudong_command_seconds", "time to decide and store a command, by route and outcome", ["route", "outcome"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)


class StoreCollector(Collector):
    """Lags and dead letters as the database knows them, read at scrape time."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def collect(self) -> Iterator[Any]:
        services = self.services
        head = services.head()
        stored = GaugeMetricFamily("liudong_store_head_position", "global position of the last stored event")
        stored.add_metric([], head)
        yield stored
        lag = GaugeMetricFamily("liudong_view_behind_events", "events stored that a view has not dealt with",
                                labels=["view"])
        for name, position in services.positions().items():
            lag.add_metric([name], max(head - position, 0))
        yield lag
        dead = GaugeMetricFamily("liudong_dead_letters_open", "dead letters not yet retried", labels=["view"])
        relay = GaugeMetricFamily("liudong_relay_behind_events", "events stored but not yet published to Kafka")
        with services.pool.connection() as conn:
            for row in conn.execute(
                "SELECT view, count(*) AS n FROM projection_dead_letters WHERE resolved_at IS NULL GROUP BY view"
            ).fetchall():
                dead.add_metric([row["view"]], row["n"])
            if services.settings.distributed:
                exists = conn.execute("SELECT to_regclass('relay_state') IS NOT NULL AS e").fetchone()
                row = conn.execute("SELECT position FROM relay_state WHERE name = %s",
                                   (f"relay:{services.settings.kafka_topic_prefix}",)).fetchone() if (
                    exists and exists["e"]) else None
                relay.add_metric([], max(head - (int(row["position"]) if row else 0), 0))
        yield dead
        if services.settings.distributed:
            yield relay
        group = getattr(services.app.recorder, "group_commit", None)
        if group is not None:
            transactions = CounterMetricFamily("liudong_group_commit_transactions", "transactions the group commit "
                                               "stored commands in")
            transactions.add_metric([], group.transactions)
            yield transactions
            commands = CounterMetricFamily("liudong_group_commit_commands", "commands stored by the group commit")
            commands.add_metric([], group.commands)
            yield commands
            split = CounterMetricFamily("liudong_group_commit_split", "group transactions stored write by write "
                                        "because one of their writes was refused")
            split.add_metric([], group.split)
            yield split
