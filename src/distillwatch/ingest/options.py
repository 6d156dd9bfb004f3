"""Options of one ingest run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Adapter = Literal["auto", "contract", "chat", "otel"]


def _default_max_ts() -> datetime:
    # Clocks drift and batch jobs lag, but a request from more than two days in the
    # future is a bug or a forgery, not traffic.
    return datetime.now(UTC) + timedelta(days=2)


class IngestOptions(BaseModel):
    """How ingest reads and bounds its input.  Every field has a safe default."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_text_chars: int = Field(
        100_000, ge=1, description="longer strings are truncated (counted, not quarantined)"
    )
    batch_rows: int = Field(65_536, ge=1, le=10_000_000, description="rows per Arrow record batch")
    json_block_bytes: int = Field(
        8 << 20, ge=1 << 10, description="JSON Lines are parsed in blocks of about this size"
    )
    min_ts: datetime = Field(
        datetime(2000, 1, 1, tzinfo=UTC), description="earlier timestamps are quarantined (catches epoch 0)"
    )
    max_ts: datetime = Field(default_factory=_default_max_ts, description="later timestamps are quarantined")
    adapter: Adapter = "auto"
    raw_max_chars: int = Field(4096, ge=64, description="bound on the `raw` copy kept in the quarantine")

    @model_validator(mode="after")
    def _check_bounds(self) -> IngestOptions:
        for name in ("min_ts", "max_ts"):
            if getattr(self, name).tzinfo is None:
                raise ValueError(f"{name} must be timezone-aware (UTC)")
        if self.min_ts >= self.max_ts:
            raise ValueError("min_ts must be earlier than max_ts")
        return self
