"""Reading what `scan` wrote (the results directory) and the optional accounts table.

Everything here checks its input and fails with a message naming the file, the field
and, where it applies, the first bad row, because a policy acting on a misread column
would block the wrong customers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from distillwatch.campaigns.model import Campaign, read_campaigns
from distillwatch.contract import TS, VERDICTS


class ResultsError(ValueError):
    """The results directory or the accounts table cannot be used; the message says why and where."""


@dataclass
class Results:
    directory: Path
    accounts: pa.Table  # account_id, score, verdict, campaign_id, reasons (+ any extras scan added)
    campaigns: list[Campaign]
    run: dict[str, Any] = field(default_factory=dict)
    signals: pa.Table | None = None

    @property
    def scan_run_id(self) -> str | None:
        value = self.run.get("run_id") or self.run.get("id")
        return str(value) if value is not None else None


def _first_bad_row(mask: pa.ChunkedArray | pa.Array) -> int:
    """Index of the first True in ``mask`` (nulls count as False)."""
    return int(pc.index(pc.fill_null(mask, False), True).as_py())


def _require(table: pa.Table, path: Path, name: str, kinds: tuple[str, ...]) -> None:
    if name not in table.column_names:
        raise ResultsError(f"{path}: missing field `{name}` (has: {', '.join(table.column_names[:20])})")
    typ = table.schema.field(name).type
    ok = {
        "string": pa.types.is_string(typ) or pa.types.is_large_string(typ) or pa.types.is_null(typ),
        "number": pa.types.is_integer(typ) or pa.types.is_floating(typ),
    }
    if not any(ok[k] for k in kinds):
        raise ResultsError(f"{path}: field `{name}` has type {typ}, expected {' or '.join(kinds)}")


def read_results(directory: str | Path) -> Results:
    """Load accounts.parquet, campaigns.json, run.json and (if present) signals.parquet."""
    d = Path(directory)
    if not d.is_dir():
        raise ResultsError(f"{d}: not a results directory (run `distillwatch scan ... --out {d}` first)")
    path = d / "accounts.parquet"
    try:
        accounts = pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise ResultsError(f"{path}: cannot read: {exc}") from exc
    for name in ("account_id", "verdict", "reasons"):
        _require(accounts, path, name, ("string",))
    _require(accounts, path, "score", ("number",))
    if "campaign_id" not in accounts.column_names:
        accounts = accounts.append_column("campaign_id", pa.nulls(accounts.num_rows, pa.string()))
    _require(accounts, path, "campaign_id", ("string",))
    accounts = accounts.set_column(
        accounts.schema.get_field_index("score"), "score", pc.cast(accounts["score"], pa.float64())
    )
    if accounts.num_rows:
        checks = [
            ("account_id", pc.is_null(accounts["account_id"]), "is empty"),
            (
                "verdict",
                pc.invert(pc.is_in(accounts["verdict"], value_set=pa.array(VERDICTS))),
                "is not one of attack, suspect, benign",
            ),
            (
                "score",
                pc.invert(
                    pc.and_(pc.greater_equal(accounts["score"], 0.0), pc.less_equal(accounts["score"], 1.0))
                ),
                "is not between 0 and 1",
            ),
        ]
        for name, bad, what in checks:
            bad = pc.fill_null(bad, True)
            if pc.any(bad).as_py():
                row = _first_bad_row(bad)
                raise ResultsError(
                    f"{path}: row {row}: field `{name}` {what} (value {accounts[name][row].as_py()!r:.80})"
                )
        if pc.count_distinct(accounts["account_id"]).as_py() != accounts.num_rows:
            raise ResultsError(f"{path}: field `account_id` repeats; every account must appear exactly once")

    campaigns: list[Campaign] = []
    cpath = d / "campaigns.json"
    if cpath.exists():
        try:
            campaigns = read_campaigns(cpath)
        except (OSError, ValueError) as exc:
            raise ResultsError(f"{cpath}: invalid campaign record: {str(exc)[:500]}") from exc
    run: dict[str, Any] = {}
    rpath = d / "run.json"
    if rpath.exists():
        try:
            loaded = json.loads(rpath.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ResultsError(f"{rpath}: cannot read: {exc}") from exc
        run = loaded if isinstance(loaded, dict) else {}
    signals = None
    spath = d / "signals.parquet"
    if spath.exists():
        try:
            signals = pq.read_table(spath)
        except (OSError, pa.ArrowInvalid) as exc:
            raise ResultsError(f"{spath}: cannot read: {exc}") from exc
        if "account_id" not in signals.column_names:
            raise ResultsError(f"{spath}: missing field `account_id`")
    return Results(directory=d, accounts=accounts, campaigns=campaigns, run=run, signals=signals)


def read_table(path: str | Path) -> pa.Table:
    """Read a Parquet file or directory, JSON Lines (optionally .gz) or CSV into Arrow."""
    p = Path(path)
    name = p.name.lower()
    try:
        if p.is_dir() or name.endswith(".parquet"):
            return pq.read_table(p)
        if name.endswith((".jsonl", ".jsonl.gz", ".json", ".ndjson")):
            with pa.input_stream(str(p), compression="detect") as stream:
                return pajson.read_json(stream)
        if name.endswith((".csv", ".csv.gz")):
            return pacsv.read_csv(p)
    except (OSError, pa.ArrowInvalid) as exc:
        raise ResultsError(f"{p}: cannot read: {exc}") from exc
    raise ResultsError(f"{p}: unknown format; expected .parquet, a Parquet directory, .jsonl[.gz] or .csv")


def _as_timestamp(col: pa.ChunkedArray, path: Path, name: str) -> pa.ChunkedArray:
    if pa.types.is_timestamp(col.type):
        return pc.cast(col, TS) if col.type.tz is not None else pc.assume_timezone(col, "UTC")
    if pa.types.is_null(col.type):
        return pa.chunked_array([pa.nulls(len(col), TS)])
    try:
        parsed = pc.cast(col, pa.timestamp("us", tz="UTC"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise ResultsError(f"{path}: field `{name}` is not an ISO 8601 timestamp: {exc}") from exc
    return parsed


ATTRIBUTE_FIELDS = ("tier", "org_id", "created_at", "email", "signup_ip", "payment_fingerprint")


def read_account_attributes(path: str | Path) -> pa.Table:
    """The accounts table reduced to what policies and sign-up scoring use, types normalised."""
    p = Path(path)
    table = read_table(p)
    if "account_id" not in table.column_names:
        raise ResultsError(f"{p}: missing field `account_id`")
    columns: dict[str, pa.ChunkedArray | pa.Array] = {"account_id": pc.cast(table["account_id"], pa.string())}
    for name in ATTRIBUTE_FIELDS:
        if name not in table.column_names:
            columns[name] = pa.nulls(table.num_rows, TS if name == "created_at" else pa.string())
        elif name == "created_at":
            columns[name] = _as_timestamp(table[name], p, name)
        else:
            columns[name] = pc.cast(table[name], pa.string())
    return pa.table(columns)
