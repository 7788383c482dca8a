"""Every setting, read from ``LIUDONG_*`` environment variables (or a .env file)."""

from __future__ import annotations

import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from domain.disputes import ServiceLevel, SlaPolicy


class SettingsError(ValueError):
    """A setting names something unusable (a file missing or malformed): said in one line."""


def _reason(error: BaseException) -> str:
    return error.strerror if isinstance(error, OSError) and error.strerror else str(error).splitlines()[0]


LARGEST_PAGE = 10_000  # the most LIUDONG_MAX_PAGE_SIZE may be


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LIUDONG_", env_file=".env", extra="ignore")

    database_url: SecretStr | None = Field(
        default=None,
        description="postgresql://user:password@host:port/dbname; unset: an embedded PostgreSQL in data_dir",
    )
    data_dir: Path = Field(default=Path("var"), description="where the embedded PostgreSQL keeps its data")
    host: str = "127.0.0.1"
    port: int = 8000
    pool_size: int = Field(default=10, ge=1, le=200, description="database connections per process")
    group_commit: bool = Field(
        default=True, description="store commands that arrive together in one transaction, each in a savepoint")
    read_wait_timeout: float = Field(
        default=2.0, ge=0, le=30, description="how long a GET with ?after=POSITION waits for the projections"
    )
    max_waits_per_key: int = Field(default=20, ge=1, description="?after= waits one key may have at once")
    max_body_bytes: int = Field(
        default=1_048_576, ge=1024, description="largest request body; a larger one is refused (413) unread"
    )
    max_import_bytes: int = Field(
        default=64 * 1_048_576, ge=1024, description="largest CSV file POST /imports takes (text/csv)"
    )
    max_page_size: int = Field(default=500, ge=1, le=LARGEST_PAGE, description="the largest ?limit= of a list")
    rate_limit_per_minute: int = Field(
        default=6000, ge=0,
        description="requests per minute one key (or, without one, one client) may make; 0: no limit",
    )
    rate_limit_burst: int = Field(default=600, ge=1, description="requests a key may make at once before the limit")
    cors_origins: list[str] = Field(
        default_factory=list, description="origins a browser may call the API from (JSON list); none: CORS closed"
    )
    access_log: bool = Field(default=False, description="log one line per request (method, path, status, time)")
    idempotency_ttl_hours: int = Field(default=24, ge=1, description="how long an Idempotency-Key is remembered")
    run_projections: bool = Field(
        default=True,
        description="keep the views from this process (a child process follows the store); "
        "ignored when kafka_bootstrap_servers is set",
    )
    command_retries: int = Field(default=30, ge=1, description="attempts when a concurrent write conflicts")
    sla_file: Path | None = Field(
        default=None,
        description="TOML file of dispute service levels: [category] response_days = N, resolution_days = N",
    )
    sweep_interval_seconds: int = Field(
        default=3600, ge=0,
        description="how often the service runs its sweeps: dispute SLA breaches, lapsed permit endorsements, "
        "rewards in lieu past their deadline, committee seats of departed members, months without a committee "
        "meeting, active members who departed, retention (residents and former operator contacts) and expired "
        "Idempotency-Keys; 0: never",
    )
    subsidy_two_approvals_threshold: Decimal = Field(
        default=Decimal("500000.00"), gt=0, description="applications at or above this need two supervisors"
    )
    log_level: str = "INFO"

    # -- personal data -----------------------------------------------------------------------
    pii_master_key: SecretStr | None = Field(
        default=None,
        description="base64 of 32 random bytes: wraps the keys that encrypt personal data, and keys the "
        "hashes of identity numbers and names. Unset: read from pii_master_key_file (made on first start)",
    )
    pii_master_key_file: Path | None = Field(
        default=None,
        description="where the master key is kept when not given directly (default DATA_DIR/pii-master.key)",
    )

    community_facility_checklist: list[str] = Field(
        default=["kindergarten", "clinic", "police_post", "canteen", "activity_room"],
        description="the facilities a site needs before a community is prepared there (JSON list); a site "
        "assessment records what is missing against it",
    )
    community_min_headcount: int = Field(
        default=500, ge=0, description="the headcount a site needs before a community is prepared there",
    )

    retention_years_after_departure: int = Field(
        default=3, ge=0, le=100,
        description="erase a resident's personal data this many years after they departed (0: never); "
        "held while they are a party to an open dispute",
    )
    former_contact_retention_years: int = Field(
        default=3, ge=0, le=100,
        description="erase an operator's former contact person this many years after a new one replaced them "
        "(0: never); the current contact stays until an erasure is requested",
    )

    # -- bearer tokens (OAuth2, JWT) ---------------------------------------------------------
    jwt_issuer: str | None = Field(default=None, description="the identity provider's issuer (iss)")
    jwt_audience: str | None = Field(default=None, description="this API's audience (aud) in tokens")
    jwt_jwks_file: Path | None = Field(default=None, description="JWKS file with the provider's RS256 public keys")
    jwt_hs256_secret: SecretStr | None = Field(default=None, description="shared secret for HS256 tokens")

    def master_key(self) -> bytes:
        """The master key for personal data; made in the data directory on first use when
        no key is configured (every process of one installation must use the same)."""
        from application.privacy import load_master_key

        explicit = self.pii_master_key.get_secret_value() if self.pii_master_key else None
        path = self.pii_master_key_file or self.data_dir / "pii-master.key"
        return load_master_key(explicit, path, create=True)

    # -- audit: the event chain, checkpoints, signed exports -----------------------------------
    chain_events: bool = Field(
        default=True, description="chain every stored event (SHA-256) in a follower of the store; "
        "`liudong audit verify` checks the chain")
    checkpoint_every_events: int = Field(default=10_000, ge=1, le=10_000_000,
                                         description="record the chain's head after this many events")
    checkpoint_interval_seconds: float = Field(
        default=3600.0, ge=1.0, description="and at least this often while events are stored")
    audit_signing_key_file: Path | None = Field(
        default=None, description="Ed25519 private key (PEM, from `liudong audit keygen`): signs checkpoints "
        "and exports")

    def audit_signing_key(self) -> Any:
        """The office's audit signing key, or None when none is configured."""
        if self.audit_signing_key_file is None:
            return None
        from application.chain import load_private_key

        try:
            return load_private_key(self.audit_signing_key_file)
        except (OSError, ValueError, TypeError) as error:  # found by a review: a traceback, from every command
            raise SettingsError(f"LIUDONG_AUDIT_SIGNING_KEY_FILE={self.audit_signing_key_file}: not an Ed25519 "
                                f"private key from `liudong audit keygen` ({_reason(error)})") from None

    # -- the distributed mode: Kafka --------------------------------------------------------
    kafka_bootstrap_servers: str | None = Field(
        default=None,
        description="host:port[,host:port]; set: the API runs no projections, `liudong relay` publishes "
        "every stored event and `liudong worker` processes keep the views",
    )
    kafka_topic_prefix: str = Field(
        default="liudong", pattern=r"^[A-Za-z0-9._-]{1,100}$",
        description="topics are PREFIX.residents, PREFIX.sites, ...",
    )
    event_source: str = Field(
        default="urn:liudong:office", min_length=1, max_length=200,
        description="the CloudEvents source of every published event (a URI naming this office)",
    )
    kafka_partitions: int = Field(default=6, ge=1, le=1000, description="partitions of a topic the relay creates")
    kafka_replication_factor: int = Field(default=1, ge=1, le=10, description="replicas of a topic the relay creates")
    kafka_consumer_group: str = Field(
        default="liudong-projections", pattern=r"^[A-Za-z0-9._-]{1,200}$",
        description="consumer group of the projection workers (a worker with --projections adds the view names)",
    )
    kafka_session_timeout_ms: int = Field(default=10_000, ge=1000, description="consumer group session timeout")
    kafka_heartbeat_interval_ms: int = Field(default=3000, ge=100, description="consumer group heartbeat interval")
    kafka_max_poll_interval_ms: int = Field(
        default=300_000, ge=1000, description="longest pause between polls before a worker leaves the group"
    )
    kafka_metadata_max_age_ms: int = Field(
        default=30_000, ge=1000, description="how often clients refresh metadata (finds re-created topics)"
    )
    kafka_fetch_max_wait_ms: int = Field(
        default=50, ge=1, le=10_000,
        description="longest a worker's fetch waits on the broker for new messages (bounds the lag when idle)",
    )
    kafka_client_timeout_ms: int = Field(
        default=5_000, ge=500, le=120_000,
        description="longest a Kafka client waits to reach a broker before our own loops retry (also its longest"
        " reconnection backoff): short enough that a worker or relay stops promptly while the broker is down",
    )
    kafka_producer_config: dict[str, Any] = Field(
        default_factory=dict,
        description="extra kafka-python producer settings as JSON; one that would disable idempotence is refused",
    )
    relay_encoder_processes: int = Field(
        default=0, ge=0, le=8,
        description="processes that build the relay's CloudEvents while it sends (0: in the relay itself)",
    )
    relay_batch_size: int = Field(default=1000, ge=1, le=100_000, description="events the relay publishes per flush")
    worker_batch_size: int = Field(default=500, ge=1, le=100_000, description="events a worker applies per transaction")
    projection_batch_size: int = Field(
        default=500, ge=1, le=100_000, description="events the in-process projector applies per transaction"
    )
    projection_attempts: int = Field(
        default=3, ge=1, le=20, description="tries of an event that makes a view fail before it is a dead letter"
    )
    projection_retry_backoff: float = Field(
        default=0.2, ge=0, le=60, description="seconds before the first retry; doubles with each"
    )
    metrics_port: int | None = Field(
        default=None, ge=0, le=65535, description="relay and workers serve Prometheus /metrics on this port"
    )

    @property
    def distributed(self) -> bool:
        """Kafka is configured: projections run in `liudong worker` processes, not in the API."""
        return bool(self.kafka_bootstrap_servers)

    def sla_policy(self) -> SlaPolicy:
        """The built-in service levels, overridden per category by ``sla_file``."""
        policy = SlaPolicy()
        if self.sla_file is None:
            return policy
        try:
            with self.sla_file.open("rb") as f:
                overrides = tomllib.load(f)
            levels = dict(policy.levels)
            for category, level in overrides.items():
                if category not in levels:
                    raise ValueError(f"unknown dispute category {category!r}")
                levels[category] = ServiceLevel(
                    response_days=int(level.get("response_days", levels[category].response_days)),
                    resolution_days=int(level.get("resolution_days", levels[category].resolution_days)),
                )
        except (OSError, ValueError, TypeError, AttributeError) as error:  # a traceback from every command before
            raise SettingsError(f"LIUDONG_SLA_FILE={self.sla_file}: {_reason(error)}") from None
        return SlaPolicy(levels=levels)

    def masked(self) -> dict[str, Any]:
        """The effective settings with secrets masked, for ``liudong config``."""
        result: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if name == "database_url" and value is not None:
                value = mask_dsn(value.get_secret_value())
            elif isinstance(value, SecretStr):
                value = "**********"
            elif isinstance(value, Path | Decimal):
                value = str(value)
            result[f"LIUDONG_{name.upper()}"] = value
        return result


def mask_dsn(dsn: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(dsn)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":*****@")
        return urlunsplit(parts._replace(netloc=netloc))
    return dsn
