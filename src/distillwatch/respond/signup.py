"""Scoring a registration before the account sends anything (`signup-risk`, `POST /v1/signup`).

Facts per sign-up (all computed over the whole batch at once):

- ``disposable_email``: the e-mail domain is on a disposable/patterned-domain list
  (``enrich.email.EmailLists``: shipped CC0/MIT lists plus the user's own);
- ``local_part_burst``: earlier sign-ups in the window at the same domain whose local part
  has the same shape (``john.smith83`` and ``mary.jones12`` are both ``a.a9``);
- ``network``: the sign-up address is datacenter / VPN / Tor (``enrich.network.NetworkLists``);
- ``shared_address`` / ``shared_prefix``: earlier sign-ups in the window from the same
  address / the same /24 (IPv4) or /48 (IPv6);
- ``burst``: sign-ups from the same prefix within the burst window, this one included;
- ``payment_shared_with_flagged``: the payment fingerprint belongs to an account that the
  latest enforced decision run put under action;
- ``shared_payment``: earlier sign-ups in the window with the same payment fingerprint;
- ``campaign_indicator``: the prefix or e-mail domain is an indicator of a campaign in the
  latest decision run, or one a partner shared (``intel_partner_indicators``).

"Earlier" is deliberate: a registration scored in real time can only see the past, so the
batch command scores each sign-up against those before it in the same way.  Then the
``signup`` rules of the policy give allow / verify / deny, most severe matching rule wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from distillwatch.contract import TS
from distillwatch.enrich import email as email_facts
from distillwatch.enrich.network import NetworkLists
from distillwatch.respond import records
from distillwatch.respond.engine import lists_from_mask
from distillwatch.respond.policy import SIGNUP_ACTIONS, Policy, SignupWhen

HISTORY_COLUMNS = pa.schema(
    [
        ("created_at", TS),
        ("signup_ip", pa.string()),
        ("ip_prefix", pa.string()),
        ("email_domain", pa.string()),
        ("local_pattern", pa.string()),
        ("payment_fingerprint", pa.string()),
    ]
)


@dataclass(frozen=True)
class SignupContext:
    """What a sign-up is compared with, beyond its own batch."""

    history: pa.Table  # earlier sign-ups (HISTORY_COLUMNS)
    flagged_payments: frozenset[str]
    indicator_prefixes: frozenset[str]
    indicator_domains: frozenset[str]

    @staticmethod
    def empty() -> SignupContext:
        return SignupContext(HISTORY_COLUMNS.empty_table(), frozenset(), frozenset(), frozenset())


def load_context(con: duckdb.DuckDBPyConnection, since: datetime) -> SignupContext:
    """Earlier sign-ups since ``since``, flagged payments and indicators, from the store."""
    run = records.latest_run(con)
    run_id = run["run_id"] if run else None
    history = records.fetch_arrow(
        con,
        "SELECT created_at, signup_ip, ip_prefix, email_domain, local_pattern, payment_fingerprint FROM respond_signups "
        "WHERE coalesce(created_at, scored_at) >= ?",
        [since],
    )
    pays = records.fetch_arrow(
        con, "SELECT DISTINCT payment_fingerprint FROM respond_flagged_payments WHERE run_id = ?", [run_id]
    )
    ind = records.fetch_arrow(
        con,
        "SELECT kind, lower(value) AS value FROM respond_campaign_indicators WHERE run_id = ? "
        "UNION SELECT kind, lower(value) FROM intel_partner_indicators "
        "WHERE valid_until IS NULL OR valid_until > now()",
        [run_id],
    )
    kinds = ind["kind"].to_pylist()
    values = ind["value"].to_pylist()
    return SignupContext(
        history=history.cast(HISTORY_COLUMNS),
        flagged_payments=frozenset(pc.drop_null(pays["payment_fingerprint"]).to_pylist()),
        indicator_prefixes=frozenset(v for k, v in zip(kinds, values, strict=True) if k.endswith("-prefix")),
        indicator_domains=frozenset(v for k, v in zip(kinds, values, strict=True) if k == "email-domain"),
    )


_FACTS_SQL = """
WITH cur AS (SELECT * FROM cur_in),
pool AS (
    SELECT row_number() OVER () AS pid, NULL::BIGINT AS src, * FROM hist_in
    UNION ALL
    SELECT 1000000000000 + i, i, ts, signup_ip, ip_prefix, email_domain, local_pattern, payment_fingerprint FROM cur_in
),
pay_m AS (
    SELECT c.i, count(*) AS n FROM cur c JOIN pool p ON p.payment_fingerprint = c.payment_fingerprint
    WHERE p.ts <= c.ts AND p.ts > c.ts - to_microseconds(?::BIGINT) AND p.src IS DISTINCT FROM c.i GROUP BY c.i
),
ip_m AS (
    SELECT c.i, count(*) AS n FROM cur c JOIN pool p ON p.signup_ip = c.signup_ip
    WHERE p.ts <= c.ts AND p.ts > c.ts - to_microseconds(?::BIGINT) AND p.src IS DISTINCT FROM c.i GROUP BY c.i
),
prefix_m AS (
    SELECT c.i, count(*) AS n,
           count(*) FILTER (WHERE p.ts > c.ts - to_microseconds(?::BIGINT)) AS burst
    FROM cur c JOIN pool p ON p.ip_prefix = c.ip_prefix
    WHERE p.ts <= c.ts AND p.ts > c.ts - to_microseconds(?::BIGINT) AND p.src IS DISTINCT FROM c.i GROUP BY c.i
),
pattern_m AS (
    SELECT c.i, count(*) AS n FROM cur c JOIN pool p
      ON p.email_domain = c.email_domain AND p.local_pattern = c.local_pattern
    WHERE p.ts <= c.ts AND p.ts > c.ts - to_microseconds(?::BIGINT) AND p.src IS DISTINCT FROM c.i GROUP BY c.i
)
SELECT c.i,
       coalesce(ip_m.n, 0)::INTEGER AS shared_address,
       coalesce(prefix_m.n, 0)::INTEGER AS shared_prefix,
       (coalesce(prefix_m.burst, 0) + CASE WHEN c.ip_prefix IS NULL THEN 0 ELSE 1 END)::INTEGER AS burst,
       coalesce(pattern_m.n, 0)::INTEGER AS local_part_burst,
       coalesce(pay_m.n, 0)::INTEGER AS shared_payment
FROM cur c
LEFT JOIN ip_m ON ip_m.i = c.i
LEFT JOIN prefix_m ON prefix_m.i = c.i
LEFT JOIN pattern_m ON pattern_m.i = c.i
LEFT JOIN pay_m ON pay_m.i = c.i
ORDER BY c.i
"""


def _col(t: pa.Table, name: str, typ: pa.DataType) -> pa.ChunkedArray | pa.Array:
    return pc.cast(t[name], typ) if name in t.column_names else pa.nulls(t.num_rows, typ)


def signup_facts(
    signups: pa.Table,
    policy: Policy,
    context: SignupContext,
    net: NetworkLists,
    mail: email_facts.EmailLists,
    now: datetime,
) -> pa.Table:
    """One row per sign-up with every fact the ``signup`` rules can test."""
    n = signups.num_rows
    emails = _col(signups, "email", pa.string())
    created = _col(signups, "created_at", TS)
    ts = pc.fill_null(created, pa.scalar(now, TS))
    ips = _col(signups, "signup_ip", pa.string())
    nets = net.classify(ips)
    domain = mail.domain(emails)
    pattern = email_facts.local_part_pattern(emails)
    payment = _col(signups, "payment_fingerprint", pa.string())
    cur = pa.table(
        {
            "i": pa.array(np.arange(n, dtype=np.int64)),
            "ts": ts,
            "signup_ip": nets["ip"],
            "ip_prefix": nets["prefix"],
            "email_domain": domain,
            "local_pattern": pattern,
            "payment_fingerprint": payment,
        }
    )
    con = duckdb.connect()
    con.register("cur_in", cur)
    con.register(
        "hist_in",
        context.history.rename_columns(["ts", *HISTORY_COLUMNS.names[1:]]),
    )
    window_us = int(policy.signup.window_hours * 3600e6)
    burst_us = int(policy.signup.burst_window_minutes * 60e6)
    counts = records.fetch_arrow(con, _FACTS_SQL, [window_us, window_us, burst_us, window_us, window_us])
    con.close()

    def member(values, pool: frozenset[str]) -> pa.Array:
        return pc.fill_null(pc.is_in(values, value_set=pa.array(sorted(pool), pa.string())), False)

    campaign = pc.or_(
        member(pc.utf8_lower(nets["prefix"]), context.indicator_prefixes),
        member(domain, context.indicator_domains),
    )
    return pa.table(
        {
            "account_id": _col(signups, "account_id", pa.string()),
            "created_at": created,
            "email_domain": domain,
            "local_pattern": pattern,
            "signup_ip": nets["ip"],
            "ip_prefix": nets["prefix"],
            "disposable_email": pc.fill_null(mail.is_disposable(emails), False),
            "is_datacenter": pc.fill_null(nets["is_datacenter"], False),
            "is_vpn": pc.fill_null(nets["is_vpn"], False),
            "is_tor": pc.fill_null(nets["is_tor"], False),
            "shared_address": counts["shared_address"],
            "shared_prefix": counts["shared_prefix"],
            "burst": counts["burst"],
            "local_part_burst": counts["local_part_burst"],
            "payment_fingerprint": payment,
            "shared_payment": counts["shared_payment"],
            "payment_shared_with_flagged": member(payment, context.flagged_payments),
            "campaign_indicator": campaign,
        }
    )


def _np(a) -> np.ndarray:
    return np.asarray(pc.fill_null(a, False).to_numpy(zero_copy_only=False), dtype=bool)


def _signup_mask(when: SignupWhen, f: pa.Table) -> np.ndarray:
    m = np.ones(f.num_rows, dtype=bool)
    for name in ("disposable_email", "payment_shared_with_flagged", "campaign_indicator"):
        want = getattr(when, name)
        if want is not None:
            m &= _np(f[name]) == want
    for cond, col in (
        ("min_local_part_burst", "local_part_burst"),
        ("min_shared_address", "shared_address"),
        ("min_shared_prefix", "shared_prefix"),
        ("min_burst", "burst"),
        ("min_shared_payment", "shared_payment"),
    ):
        threshold = getattr(when, cond)
        if threshold is not None:
            m &= f[col].to_numpy(zero_copy_only=False) >= threshold
    if when.network is not None:
        any_net = np.zeros(f.num_rows, dtype=bool)
        for kind in when.network:
            any_net |= _np(f[f"is_{kind}"])
        m &= any_net
    return m


def decide_signups(policy: Policy, facts: pa.Table) -> pa.Table:
    """allow / verify / deny and the reason codes of every matching rule, per sign-up."""
    rules = policy.signup.rules
    n = facts.num_rows
    matrix = np.zeros((n, len(rules)), dtype=bool)
    for j, rule in enumerate(rules):
        matrix[:, j] = _signup_mask(rule.when, facts)
    sev = np.array([SIGNUP_ACTIONS.index(r.action) for r in rules], dtype=np.int16)
    level = np.where(matrix, sev[None, :], 0).max(axis=1) if rules else np.zeros(n, dtype=np.int16)
    actions = np.asarray(SIGNUP_ACTIONS, dtype=object)[level]
    out = facts.add_column(1, "action", pa.array(actions, pa.string()))
    return out.add_column(2, "reason_codes", lists_from_mask(matrix, [r.reason_code for r in rules]))


def score_signups(
    signups: pa.Table,
    policy: Policy,
    context: SignupContext,
    net: NetworkLists,
    mail: email_facts.EmailLists,
    now: datetime | None = None,
) -> pa.Table:
    now = now or datetime.now(UTC)
    return decide_signups(policy, signup_facts(signups, policy, context, net, mail, now))


def record_signups(db: str | Path, scored: pa.Table, actor: str, now: datetime | None = None) -> None:
    """Remember scored sign-ups (later ones are compared with them) and audit every verify/deny."""
    now = now or datetime.now(UTC)
    rows = scored.select(
        [
            "account_id",
            "created_at",
            "email_domain",
            "local_pattern",
            "signup_ip",
            "ip_prefix",
            "payment_fingerprint",
            "action",
            "reason_codes",
        ]
    )
    rows = rows.append_column("scored_at", pa.array([now] * rows.num_rows, TS))
    acted = scored.filter(pc.not_equal(scored["action"], "allow"))
    audit = pa.table(
        {
            "audit_id": pa.array(
                np.char.add(f"{records.new_id('s')}-", np.arange(acted.num_rows).astype(str)), pa.string()
            ),
            "at_time": pa.array([now] * acted.num_rows, TS),
            "kind": pa.array(["signup"] * acted.num_rows, pa.string()),
            "actor": pa.array([actor] * acted.num_rows, pa.string()),
            "account_id": acted["account_id"],
            "action": acted["action"],
            "reason_codes": acted["reason_codes"],
            "why": pa.array(["sign-up risk"] * acted.num_rows, pa.string()),
        }
    )
    with records.short_connection(db) as con:
        con.execute("BEGIN TRANSACTION")
        records.insert_arrow(con, "respond_signups", rows)
        records.insert_arrow(con, "respond_audit", audit)
        con.execute("COMMIT")
    # The service compares its sign-ups with these too: tell it the store changed.
    records.bump_marker(db, records.new_id("signups"))
