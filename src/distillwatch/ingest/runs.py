"""Recording ingest runs in the store (tables in store/schema/010_ingest.sql)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import duckdb


def record_start(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    command: str,
    started_at: datetime,
    inputs: dict[str, Any],
    options: dict[str, Any],
) -> None:
    con.execute(
        "INSERT INTO runs (run_id, command, started_at, status, inputs, options) VALUES (?, ?, ?, 'running', ?, ?)",
        [run_id, command, started_at, json.dumps(inputs), json.dumps(options, default=str)],
    )


def record_finish(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    finished_at: datetime,
    counts: dict[str, Any],
    outputs: dict[str, Any],
    sources: list[dict[str, Any]],
) -> None:
    ex = counts.get("exchanges", {})
    ac = counts.get("accounts", {})
    con.execute(
        """UPDATE runs SET finished_at = ?, status = 'ok', outputs = ?,
               exchanges_read = ?, exchanges_accepted = ?, exchanges_quarantined = ?,
               accounts_read = ?, accounts_accepted = ?, accounts_quarantined = ?,
               by_reason = ?, counts = ?
           WHERE run_id = ?""",
        [
            finished_at,
            json.dumps(outputs),
            ex.get("read"),
            ex.get("accepted"),
            ex.get("quarantined"),
            ac.get("read"),
            ac.get("accepted"),
            ac.get("quarantined"),
            json.dumps({"exchanges": ex.get("by_reason", {}), "accounts": ac.get("by_reason", {})}),
            json.dumps(counts),
            run_id,
        ],
    )
    if sources:
        con.executemany(
            "INSERT INTO ingest_sources VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                [run_id, s["table"], s["source"], s["format"], s["adapter"], s["bytes"], s["rows_read"]]
                for s in sources
            ],
        )


def record_failure(con: duckdb.DuckDBPyConnection, run_id: str, finished_at: datetime, error: str) -> None:
    con.execute(
        "UPDATE runs SET finished_at = ?, status = 'failed', error = ? WHERE run_id = ?",
        [finished_at, error[:2000], run_id],
    )
