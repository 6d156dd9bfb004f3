"""What ingest needs to know about each contract table, derived from contract.py."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from distillwatch import contract
from distillwatch.ingest import errors as E
from distillwatch.ingest.errors import UnreadableInputError

ROW = "__row"  # 1-based row/line number carried next to the data until validation


@dataclass(frozen=True)
class TableSpec:
    name: str
    fields: tuple[contract.Field, ...]
    schema: pa.Schema
    key: str  # unique per record; later duplicates are quarantined
    duplicate_reason: str
    ip_fields: tuple[str, ...]
    country_fields: tuple[str, ...]

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.fields]

    def field(self, name: str) -> contract.Field:
        return next(f for f in self.fields if f.name == name)

    @property
    def required(self) -> list[str]:
        return [f.name for f in self.fields if f.required]

    @property
    def json_schema(self) -> pa.Schema:
        """Types the JSON fast path asks pyarrow for: timestamps stay text (parsed by validation)."""
        return pa.schema(
            [(f.name, pa.string() if pa.types.is_timestamp(f.type) else f.type) for f in self.fields]
        )

    def check_columns(self, path: str | Path, present: set[str]) -> None:
        """A columnar file without a required column cannot hold one valid record."""
        missing = [n for n in self.required if n not in present]
        if missing:
            shown = ", ".join(sorted(present)[:20])
            raise UnreadableInputError(
                path, f"no column {', '.join(missing)} (required for {self.name}); columns found: {shown}"
            )


EXCHANGES = TableSpec(
    name="exchanges",
    fields=contract.EXCHANGE_FIELDS,
    schema=contract.EXCHANGES_SCHEMA,
    key="request_id",
    duplicate_reason=E.DUPLICATE_REQUEST_ID,
    ip_fields=("ip",),
    country_fields=("country",),
)

ACCOUNTS = TableSpec(
    name="accounts",
    fields=contract.ACCOUNT_FIELDS,
    schema=contract.ACCOUNTS_SCHEMA,
    key="account_id",
    duplicate_reason=E.DUPLICATE_ACCOUNT_ID,
    ip_fields=("signup_ip",),
    country_fields=("country",),
)
