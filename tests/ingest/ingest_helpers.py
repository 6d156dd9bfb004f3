"""Shared helpers for the ingest tests (a uniquely named module: `conftest` is taken by other folders)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq

from distillwatch.ingest import IngestOptions, IngestResult

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ingest"

# Fixed bounds so results never depend on today's date.
FIXED = {"min_ts": datetime(2000, 1, 1, tzinfo=UTC), "max_ts": datetime(2030, 1, 1, tzinfo=UTC)}


def options(**kw: object) -> IngestOptions:
    return IngestOptions(**{**FIXED, **kw})


def quarantine_rows(result: IngestResult) -> list[dict]:
    return pq.read_table(result.quarantine_path).to_pylist()


def accepted(result: IngestResult, table: str = "exchanges") -> list[dict]:
    path = result.exchanges_path if table == "exchanges" else result.accounts_path
    return pq.read_table(path).to_pylist()


def assert_adds_up(result: IngestResult) -> None:
    """The accounting invariant, checked against the files actually written."""
    q = quarantine_rows(result)
    for table, c in result.counts.items():
        assert c["read"] == c["accepted"] + c["quarantined"], (table, c)
        assert sum(c["by_reason"].values()) == c["quarantined"]
        in_file = [r for r in q if r["table"] == table]
        assert len(in_file) == c["quarantined"]
        for reason, n in c["by_reason"].items():
            assert sum(r["reason"] == reason for r in in_file) == n
        path = result.exchanges_path if table == "exchanges" else result.accounts_path
        assert pq.read_metadata(path).num_rows == c["accepted"]
