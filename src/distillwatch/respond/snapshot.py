"""The decisions a gateway is served, held in memory and replaced whole when the store changes.

A ``Snapshot`` is immutable: the latest enforced decision run with the analysts' active
overrides applied, one pre-serialised JSON answer per account under action.  A
``SnapshotHolder`` swaps in a new snapshot (one reference assignment, so a request sees
either the old or the new one, never a mix) when the store's version marker changes.
The store is opened read-only and only for the moment of loading, so `distillwatch
decide` can write between loads.
"""

from __future__ import annotations

import ipaddress
import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa

from distillwatch.respond import records
from distillwatch.respond.decide import apply_overrides
from distillwatch.respond.policy import Policy
from distillwatch.respond.signup import SignupContext, load_context

REASON_CAMPAIGN_PREFIX = "CAMPAIGN-PREFIX"


@dataclass(frozen=True)
class Snapshot:
    version: str | None
    run_id: str | None
    loaded_at: datetime
    policy: Policy
    answers: dict[str, bytes]  # account_id -> JSON body of POST /v1/decision
    rows: pa.Table  # the served decisions (for GET /v1/accounts/{id})
    index: dict[str, int]  # account_id -> row in ``rows``
    campaign_prefixes: dict[str, str] = field(default_factory=dict)  # network prefix -> campaign_id
    unknown_answer: bytes = b""
    signup_context: SignupContext = field(default_factory=SignupContext.empty)

    def answer(self, account_id: str, ip: str | None = None) -> bytes:
        """The JSON answer for an account; an unknown account on a campaign's prefix is flagged."""
        found = self.answers.get(account_id)
        if found is not None:
            return found
        if ip is not None and self.campaign_prefixes:
            campaign = self.campaign_prefixes.get(network_prefix(ip))
            if campaign is not None:
                action = self.policy.service.campaign_prefix_action or "flag"
                return _answer_json(
                    action,
                    self.policy.service.allow_ttl_seconds,
                    self.run_id,
                    [REASON_CAMPAIGN_PREFIX],
                    campaign,
                )
        return self.unknown_answer

    def detail(self, account_id: str) -> dict | None:
        i = self.index.get(account_id)
        if i is None:
            return None
        row = self.rows.slice(i, 1).to_pylist()[0]
        return {k: v for k, v in row.items() if not k.startswith("evidence_") and k not in ("why_new",)}


def network_prefix(ip: str) -> str:
    """The /24 (IPv4) or /48 (IPv6) network of an address, as campaign indicators name it."""
    addr = ipaddress.ip_address(ip)
    bits = 24 if addr.version == 4 else 48
    return str(ipaddress.ip_network(f"{addr}/{bits}", strict=False))


def _answer_json(
    action: str, ttl: int, run_id: str | None, codes: list[str] | None = None, campaign_id: str | None = None
) -> bytes:
    """An answer computed at request time (no throttle or degrade parameters: those come from decide)."""
    return json.dumps(
        {
            "action": action,
            "reason_codes": codes or [],
            "campaign_id": campaign_id,
            "ttl_seconds": ttl,
            "throttle": None,
            "degrade": None,
            "decision_run_id": run_id,
        },
        separators=(",", ":"),
    ).encode()


_ANSWER_SQL = """
SELECT account_id, to_json(struct_pack(
    action := action,
    reason_codes := reason_codes,
    campaign_id := campaign_id,
    ttl_seconds := coalesce(ttl_seconds, CASE WHEN action = 'allow' THEN ? ELSE ? END),
    throttle := CASE WHEN throttle_rpm IS NOT NULL
                     THEN struct_pack(requests_per_minute := throttle_rpm, burst := throttle_burst) END,
    degrade := CASE WHEN withhold_reasoning IS NOT NULL
                    THEN struct_pack(withhold_reasoning := withhold_reasoning, max_output_tokens := max_output_tokens) END,
    decision_run_id := ?::VARCHAR
))::VARCHAR AS answer
FROM served
"""


def load_snapshot(db: str | Path, policy: Policy, now: datetime | None = None) -> Snapshot:
    """Read the latest enforced run and active overrides from the store (read-only, briefly)."""
    now = now or datetime.now(UTC)
    version = records.read_marker(db)
    with records.short_connection(db, read_only=True, timeout_s=2.0) as con:
        # One DuckDB thread: the load runs beside the thread answering requests; it may be slower, not them.
        con.execute("SET threads = 1")
        run = records.latest_run(con)
        run_id = run["run_id"] if run else None
        decisions = records.run_decisions(con, run_id)
        overrides = records.active_overrides(con, now)
        indicators = records.fetch_arrow(
            con,
            "SELECT value, campaign_id FROM respond_campaign_indicators WHERE run_id = ? "
            "AND kind IN ('ipv4-prefix', 'ipv6-prefix') AND confidence >= ?",
            [run_id, policy.service.campaign_prefix_min_confidence],
        )
        signup_context = load_context(con, now - timedelta(hours=policy.signup.window_hours))
    mem = duckdb.connect(config={"threads": 1})
    served = apply_overrides(mem, decisions.drop_columns(["run_id", "evidence_fp"]), overrides, policy)
    mem.register("served", served)
    answers_t = records.fetch_arrow(
        mem, _ANSWER_SQL, [policy.service.allow_ttl_seconds, policy.default_ttl_seconds, run_id]
    )
    ids = answers_t["account_id"].to_pylist()
    answers = dict(zip(ids, (a.encode() for a in answers_t["answer"].to_pylist()), strict=True))
    order = served["account_id"].to_pylist()
    prefixes = {}
    if policy.service.campaign_prefix_action:
        prefixes = dict(
            zip(indicators["value"].to_pylist(), indicators["campaign_id"].to_pylist(), strict=True)
        )
    unknown = _answer_json(policy.service.unknown_account_action, policy.service.allow_ttl_seconds, run_id)
    return Snapshot(
        version=version,
        run_id=run_id,
        loaded_at=now,
        policy=policy,
        answers=answers,
        rows=served,
        index={a: i for i, a in enumerate(order)},
        campaign_prefixes=prefixes,
        unknown_answer=unknown,
        signup_context=signup_context,
    )


def empty_snapshot(policy: Policy) -> Snapshot:
    return Snapshot(
        version=None,
        run_id=None,
        loaded_at=datetime.now(UTC),
        policy=policy,
        answers={},
        rows=pa.table({"account_id": pa.array([], pa.string())}),
        index={},
        unknown_answer=_answer_json(
            policy.service.unknown_account_action, policy.service.allow_ttl_seconds, None
        ),
    )


class SnapshotHolder:
    """Holds the current snapshot and reloads it when the store's version marker changes."""

    def __init__(self, db: str | Path, policy: Policy) -> None:
        self.db = Path(db)
        self.policy = policy
        self.current: Snapshot = empty_snapshot(policy)
        self.reloads = 0
        self.last_error: str | None = None
        self._lock = threading.Lock()  # one load at a time; readers never take it

    def refresh(self, force: bool = False) -> bool:
        """Load a new snapshot if the marker moved (or ``force``); True when swapped."""
        marker = records.read_marker(self.db)
        if not force and marker == self.current.version and self.reloads:
            return False
        if not self.db.exists():
            return False
        with self._lock:
            if not force and marker == self.current.version and self.reloads:
                return False
            try:
                snap = load_snapshot(self.db, self.policy)
            except (records.StoreBusy, duckdb.Error, OSError) as exc:
                # Keep serving the previous snapshot; the next poll tries again.
                self.last_error = f"{type(exc).__name__}: {exc}"[:500]
                return False
            self.current = snap  # the atomic swap
            self.reloads += 1
            self.last_error = None
            return True

    def poll_forever(self, interval_s: float, stop: threading.Event) -> None:
        while not stop.wait(interval_s):
            self.refresh()
