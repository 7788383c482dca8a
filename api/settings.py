"""Every setting, read from ``LIUDONG_*`` environment variables (or a .env file)."""

from __future__ import annotations

import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from domain.disputes import ServiceLevel, SlaPolicy


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
    read_wait_timeout: float = Field(
        default=2.0, ge=0, le=30, description="how long a GET with ?after=POSITION waits for the projections"
    )
    idempotency_ttl_hours: int = Field(default=24, ge=1, description="how long an Idempotency-Key is remembered")
    run_projections: bool = Field(default=True, description="run the projections inside the API process")
    command_retries: int = Field(default=30, ge=1, description="attempts when a concurrent write conflicts")
    sla_file: Path | None = Field(
        default=None,
        description="TOML file of dispute service levels: [category] response_days = N, resolution_days = N",
    )
    sweep_interval_seconds: int = Field(
        default=3600, ge=0, description="how often the service runs the SLA and permit sweeps; 0: never"
    )
    subsidy_two_approvals_threshold: Decimal = Field(
        default=Decimal("500000.00"), gt=0, description="applications at or above this need two supervisors"
    )
    log_level: str = "INFO"

    def sla_policy(self) -> SlaPolicy:
        """The built-in service levels, overridden per category by ``sla_file``."""
        policy = SlaPolicy()
        if self.sla_file is None:
            return policy
        with self.sla_file.open("rb") as f:
            overrides = tomllib.load(f)
        levels = dict(policy.levels)
        for category, level in overrides.items():
            if category not in levels:
                raise ValueError(f"{self.sla_file}: unknown dispute category {category!r}")
            levels[category] = ServiceLevel(
                response_days=int(level.get("response_days", levels[category].response_days)),
                resolution_days=int(level.get("resolution_days", levels[category].resolution_days)),
            )
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
