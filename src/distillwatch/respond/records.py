"""The respond stage's side of the store: decision runs, overrides, the audit trail.

DuckDB lets one process write a database file at a time, and the decision service runs
beside `distillwatch decide`.  So nothing here holds a connection open: every function
takes a connection the caller opens briefly (``short_connection`` retries while another
process holds the file), and every write ends by replacing a small *version marker* file
next to the database, which the service polls to know a new state is there to load.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from distillwatch import store

MARKER_SUFFIX = ".respond-version"
REASON_CLEARED = "ANALYST-CLEARED"
REASON_SET = "ANALYST-SET"
REASON_SUPERSEDED = "CLEAR-SUPERSEDED"
OVERRIDE_KINDS = ("clear", "set", "revoke")


class StoreBusy(RuntimeError):
    """Another process held the database for longer than we were willing to wait."""


def new_id(prefix: str) -> str:
    # Time-ordered, so ids sort by creation; the random tail keeps them unique.
    return f"{prefix}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%f')}-{uuid.uuid4().hex[:8]}"


def marker_path(db: str | Path) -> Path:
    return Path(str(db) + MARKER_SUFFIX)


def bump_marker(db: str | Path, version: str) -> None:
    """Atomically replace the version marker (write a temporary file, then rename)."""
    path = marker_path(db)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(version, encoding="utf-8")
    os.replace(tmp, path)


def read_marker(db: str | Path) -> str | None:
    try:
        return marker_path(db).read_text(encoding="utf-8")
    except OSError:
        return None


@contextmanager
def short_connection(
    db: str | Path, read_only: bool = False, timeout_s: float = 10.0
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the store briefly, retrying while another process holds its lock."""
    deadline = time.monotonic() + timeout_s
    delay = 0.01
    while True:
        try:
            if read_only and not Path(db).exists():
                raise FileNotFoundError(f"{db}: no store yet (run `distillwatch decide` first)")
            con = store.connect(db, read_only=read_only)
            break
        except duckdb.IOException as exc:
            # "Could not set lock on file": a writer (or, for writes, a reader) has it.
            if time.monotonic() >= deadline:
                raise StoreBusy(f"{db}: the store is busy (another process holds it): {exc}") from exc
            time.sleep(delay)
            delay = min(delay * 2, 0.2)
    try:
        yield con
    finally:
        con.close()


def fetch_one(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> tuple | None:
    """The first row of a query, or None; reads the result to its end (DuckDB 2 requires that)."""
    rows = con.execute(sql, params or []).fetchall()
    return rows[0] if rows else None


def latest_run(con: duckdb.DuckDBPyConnection, enforced_only: bool = True) -> dict | None:
    row = fetch_one(
        con,
        "SELECT run_id, decided_at, policy_name, dry_run FROM respond_runs "
        "WHERE (NOT ? OR NOT dry_run) ORDER BY decided_at DESC, run_id DESC LIMIT 1",
        [enforced_only],
    )
    if row is None:
        return None
    return {"run_id": row[0], "decided_at": row[1], "policy_name": row[2], "dry_run": row[3]}


def fetch_arrow(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> pa.Table:
    """Run a parameterised query and return an Arrow table ."""
    rel = con.sql(sql, params=params or None)
    if rel is None:  # not a query
        raise ValueError("fetch_arrow needs a SELECT")
    # DuckDB 2 renamed Relation.arrow() to to_arrow_table(); accept both.
    fetch = getattr(rel, "to_arrow_table", None) or rel.arrow
    return fetch()


def run_decisions(con: duckdb.DuckDBPyConnection, run_id: str | None) -> pa.Table:
    """The stored decisions of one run (no rows, but the right columns, when run_id is None)."""
    return fetch_arrow(con, "SELECT * FROM respond_decisions WHERE run_id = ? ORDER BY account_id", [run_id])


def active_overrides(con: duckdb.DuckDBPyConnection, now: datetime) -> pa.Table:
    return fetch_arrow(
        con,
        "SELECT * FROM respond_overrides WHERE active AND kind <> 'revoke' "
        "AND (expires_at IS NULL OR expires_at > ?) ORDER BY created_at",
        [now],
    )


def insert_arrow(con: duckdb.DuckDBPyConnection, table_name: str, rows: pa.Table) -> None:
    """Insert an Arrow table by column name (the table name is one of ours, never user input)."""
    if rows.num_rows == 0:
        return
    view = f"_dw_insert_{uuid.uuid4().hex[:8]}"
    con.register(view, rows)
    try:
        cols = ", ".join(f'"{c}"' for c in rows.column_names)
        con.execute(f"INSERT INTO {table_name} ({cols}) SELECT {cols} FROM {view}")  # noqa: S608 - names are ours
    finally:
        con.unregister(view)


def audit(
    con: duckdb.DuckDBPyConnection,
    kind: str,
    actor: str,
    *,
    account_id: str | None = None,
    action: str | None = None,
    previous_action: str | None = None,
    change: str | None = None,
    reason_codes: list[str] | None = None,
    why: str | None = None,
    run_id: str | None = None,
    dry_run: bool | None = None,
    at: datetime | None = None,
) -> str:
    audit_id = new_id("a")
    con.execute(
        "INSERT INTO respond_audit (audit_id, at_time, kind, actor, account_id, action, previous_action, change, "
        "reason_codes, why, run_id, dry_run) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            audit_id,
            at or datetime.now(UTC),
            kind,
            actor,
            account_id,
            action,
            previous_action,
            change,
            reason_codes,
            why,
            run_id,
            dry_run,
        ],
    )
    return audit_id


def add_override(
    db: str | Path,
    account_id: str,
    kind: str,
    analyst: str,
    note: str,
    action: str | None = None,
    expires_at: datetime | None = None,
    now: datetime | None = None,
) -> dict:
    """Record an analyst override, end the account's earlier ones, audit it, bump the marker.

    A ``clear`` stores the evidence the account is cleared on (its latest decision's
    evidence), so a later ``decide`` can tell the same evidence from new evidence.
    """
    from distillwatch.respond.policy import ACTIONS

    if kind not in OVERRIDE_KINDS:
        raise ValueError(f"override kind must be one of {OVERRIDE_KINDS}, got {kind!r}")
    if kind == "set" and action not in ACTIONS:
        raise ValueError(f"a `set` override needs an action, one of {ACTIONS}")
    if not analyst.strip() or not note.strip():
        raise ValueError("an override needs the analyst's name and a note saying why")
    now = now or datetime.now(UTC)
    override_id = new_id("o")
    with short_connection(db) as con:
        con.execute("BEGIN TRANSACTION")
        evidence = (None, None, None, None)
        previous = None
        run = latest_run(con)
        if run is not None:
            row = fetch_one(
                con,
                "SELECT evidence_band, evidence_signals, evidence_campaign, evidence_fp, action "
                "FROM respond_decisions WHERE run_id = ? AND account_id = ?",
                [run["run_id"], account_id],
            )
            if row is not None:
                evidence, previous = row[:4], row[4]
        if kind == "clear" and evidence[0] is None:
            evidence = (0, [], [], None)
        con.execute(
            "UPDATE respond_overrides SET active = false, ended_at = ?, ended_reason = ? "
            "WHERE account_id = ? AND active",
            [now, f"replaced by {override_id}", account_id],
        )
        con.execute(
            "INSERT INTO respond_overrides VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, ?, ?, ?, ?)",
            [
                override_id,
                account_id,
                kind,
                action if kind == "set" else ("allow" if kind == "clear" else None),
                analyst,
                note,
                now,
                expires_at,
                kind != "revoke",
                *evidence,
            ],
        )
        served = {"clear": "allow", "set": action, "revoke": None}[kind]
        audit(
            con,
            "override",
            analyst,
            account_id=account_id,
            action=served,
            previous_action=previous,
            change=kind,
            why=note,
            run_id=run["run_id"] if run else None,
            at=now,
            reason_codes=[{"clear": REASON_CLEARED, "set": REASON_SET, "revoke": "OVERRIDE-REVOKED"}[kind]],
        )
        con.execute("COMMIT")
    bump_marker(db, override_id)
    return {
        "override_id": override_id,
        "account_id": account_id,
        "kind": kind,
        "action": served,
        "previous_action": previous,
        "created_at": now.isoformat(),
    }


def query_audit(
    con: duckdb.DuckDBPyConnection,
    account: str | None = None,
    actor: str | None = None,
    since: datetime | None = None,
    kind: str | None = None,
    limit: int = 100,
) -> pa.Table:
    """Audit rows, newest first, filtered by the given fields (all bound as parameters)."""
    return fetch_arrow(
        con,
        "SELECT at_time, kind, actor, account_id, action, previous_action, change, reason_codes, why, run_id, dry_run "
        "FROM respond_audit WHERE (? IS NULL OR account_id = ?) AND (? IS NULL OR actor = ?) "
        "AND (? IS NULL OR at_time >= ?) AND (? IS NULL OR kind = ?) "
        "ORDER BY at_time DESC, audit_id DESC LIMIT ?",
        [account, account, actor, actor, since, since, kind, kind, limit],
    )
