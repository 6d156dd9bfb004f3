"""Reading a results directory for the report, tolerating what is missing or broken.

The report must come out even from a partial results directory (a scan that
stopped half-way, a directory copied without its Parquet files): every file is
optional here, and each one that is missing or unreadable becomes a *problem*
line that the report prints, naming the file, record and field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ibis
import pyarrow.parquet as pq
from pydantic import ValidationError

from distillwatch.campaigns.model import Campaign

# Columns each table must have for the report to use it; extra columns are welcome.
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "accounts.parquet": ("account_id", "score", "verdict", "campaign_id"),
    "daily.parquet": ("day", "campaign_id", "exchanges", "accounts"),
    "edges.parquet": ("src", "dst", "kind", "weight"),
    "signals.parquet": ("account_id",),
    "quarantine.parquet": ("reason",),
}
JSON_FILES = ("campaigns.json", "population.json", "run.json")


@dataclass
class Results:
    """What could be read from one results directory."""

    directory: Path
    campaigns: list[Campaign] = field(default_factory=list)
    run: dict[str, Any] = field(default_factory=dict)
    population: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, ibis.Table] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    # One engine connection for every table, so they can be joined.
    con: ibis.BaseBackend = field(default_factory=lambda: _connect())

    def table(self, name: str) -> ibis.Table | None:
        return self.tables.get(name)

    def registrations(self) -> tuple[ibis.Table, str] | None:
        """The accounts input (``account_id``, ``created_at``) and where it was found, for the sign-up histogram.

        The results carry per-account registration times only if ``scan``
        added them; otherwise the accepted accounts staged by ingest
        (``DIR/ingest/accounts.parquet``) or the Parquet input named in
        run.json serve.  None when none of these is readable.
        """
        inputs = self.run.get("inputs") if isinstance(self.run.get("inputs"), dict) else {}
        candidates = [self.directory / "ingest" / "accounts.parquet"]
        if isinstance(inputs.get("accounts"), str):
            candidates.append(Path(inputs["accounts"]))
        for path in candidates:
            if not (path.is_file() and path.suffix == ".parquet") and not path.is_dir():
                continue
            try:
                t = self.con.read_parquet(path)
            except Exception:  # unreadable or not Parquet: try the next place
                continue
            if {"account_id", "created_at"} <= set(t.columns):
                return t.select("account_id", "created_at"), str(path)
        return None


def _connect() -> ibis.BaseBackend:
    con = ibis.duckdb.connect()
    con.raw_sql("SET enable_progress_bar = false")  # scan's own progress display owns the terminal
    return con


def load(directory: Path) -> Results:
    """Read every file of ``directory`` that the report uses; never raises for a bad or missing file."""
    res = Results(directory=directory)
    for name, required in REQUIRED_COLUMNS.items():
        path = directory / name
        if not path.exists():
            res.missing.append(name)
            continue
        try:
            columns = pq.read_schema(path).names
        except Exception as exc:  # any Arrow error: the file is not Parquet we can read
            res.problems.append(f"{name}: cannot be read as Parquet ({_short(exc)})")
            continue
        absent = [c for c in required if c not in columns]
        if absent:
            res.problems.append(f"{name}: missing column(s) {', '.join(absent)}; file not used")
            continue
        res.tables[name] = res.con.read_parquet(path, table_name=name.split(".")[0])

    raw: dict[str, Any] = {}
    for name in JSON_FILES:
        path = directory / name
        if not path.exists():
            res.missing.append(name)
            continue
        try:
            raw[name] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            res.problems.append(f"{name}: not valid JSON ({_short(exc)})")
    res.run = _as_dict(raw.get("run.json"), "run.json", res.problems)
    res.population = _as_dict(raw.get("population.json"), "population.json", res.problems)
    res.campaigns = _campaigns(raw.get("campaigns.json"), res.problems)
    return res


def _as_dict(value: Any, name: str, problems: list[str]) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.append(f"{name}: expected a JSON object, found {type(value).__name__}")
        return {}
    return value


def _campaigns(value: Any, problems: list[str]) -> list[Campaign]:
    """Valid campaign records; each invalid one is reported by record number and field, and skipped."""
    if value is None:
        return []
    if not isinstance(value, list):
        problems.append(f"campaigns.json: expected a list of campaigns, found {type(value).__name__}")
        return []
    out: list[Campaign] = []
    for i, record in enumerate(value):
        try:
            out.append(Campaign.model_validate(record))
        except ValidationError as exc:
            cid = record.get("campaign_id") if isinstance(record, dict) else None
            fields = "; ".join(
                f"field {'.'.join(str(p) for p in err['loc']) or '(record)'}: {err['msg']}"
                for err in exc.errors()[:5]
            )
            problems.append(f"campaigns.json: record {i} (campaign_id {str(cid)[:80]!r}) skipped: {fields}")
    return out


def _short(exc: Exception, limit: int = 200) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:limit]
