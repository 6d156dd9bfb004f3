"""`distillwatch decide`: turn a results directory into actions, remember them, say what changed.

Steps: read the results; join each account's campaign confidence, attributes and evidence
(DuckDB over Arrow); apply the policy (``engine.apply_policy``); apply analyst overrides
(a clearing holds while the evidence is the same, and ends, with the reason, when there is
new evidence); compare with the last enforced run (new / changed / expired); write
``DIR/actions.parquet``; record the run, its decisions and the audit rows in the store.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from distillwatch.campaigns.model import Campaign
from distillwatch.respond import records
from distillwatch.respond.engine import apply_policy, lists_from_mask
from distillwatch.respond.policy import Policy
from distillwatch.respond.results import Results, read_account_attributes

# A campaign's evidence is its indicators; bounded so a huge campaign stays a small record.
MAX_CAMPAIGN_EVIDENCE = 50
# Two campaign evidence sets overlapping less than this are "a different campaign".
SAME_CAMPAIGN_JACCARD = 0.5
# A signal value (0..1 in signals.parquet) at or above this counts as the signal firing: the
# same floor detection uses to put a signal's reason into an account's `reasons`.
SIGNAL_FIRES_AT = 0.5


@dataclass
class DecideOutcome:
    run_id: str
    dry_run: bool
    actions_path: Path
    actions: pa.Table  # what was written to actions.parquet
    changes: pa.Table  # account_id, previous_action, action, change (new | changed | expired)
    superseded: pa.Table  # clearings ended by new evidence: account_id, why
    counts: dict[str, int] = field(default_factory=dict)


def campaign_table(campaigns: list[Campaign]) -> pa.Table:
    """One row per campaign: its confidence and its evidence (sorted indicator strings)."""
    ids, conf, evidence = [], [], []
    for c in campaigns:  # campaigns are few (tens), not accounts
        items = sorted(
            {f"{i.type}:{i.value}" for i in c.indicators}
            | {f"template-hash:{t.value}" for t in c.template_hashes}
        )
        ids.append(c.campaign_id)
        conf.append(c.confidence)
        evidence.append(items[:MAX_CAMPAIGN_EVIDENCE])
    return pa.table(
        {
            "campaign_id": pa.array(ids, pa.string()),
            "campaign_confidence": pa.array(conf, pa.float64()),
            "evidence_campaign": pa.array(evidence, pa.list_(pa.string())),
        }
    )


def signal_lists(results: Results) -> pa.Table:
    """account_id -> the ids of the signals behind its verdict.

    Taken from an optional ``signals`` column of accounts.parquet (a list, or ids separated
    by commas) when scan writes one; otherwise from signals.parquet, where a signal counts
    when its value is true or at least ``SIGNAL_FIRES_AT``.
    """
    acc = results.accounts
    if "signals" in acc.column_names:
        col = acc["signals"]
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            con = duckdb.connect()
            con.register("s_in", acc.select(["account_id", "signals"]))
            return records.fetch_arrow(
                con,
                "SELECT account_id, list_filter(string_split_regex(trim(coalesce(signals, '')), '\\s*,\\s*'), "
                "lambda x: x <> '') AS evidence_signals FROM s_in",
            )
        return pa.table(
            {"account_id": acc["account_id"], "evidence_signals": pc.cast(col, pa.list_(pa.string()))}
        )
    sig = results.signals
    if sig is None:
        return pa.table(
            {
                "account_id": acc["account_id"],
                "evidence_signals": pa.nulls(acc.num_rows, pa.list_(pa.string())),
            }
        )
    names, masks = [], []
    for name in sig.column_names:
        if name == "account_id":
            continue
        typ = sig.schema.field(name).type
        if pa.types.is_boolean(typ):
            masks.append(pc.fill_null(sig[name], False).to_numpy(zero_copy_only=False))
        elif pa.types.is_integer(typ) or pa.types.is_floating(typ):
            masks.append(
                pc.fill_null(pc.greater_equal(sig[name], SIGNAL_FIRES_AT), False).to_numpy(
                    zero_copy_only=False
                )
            )
        else:
            continue
        names.append(name)
    matrix = np.stack(masks, axis=1) if masks else np.zeros((sig.num_rows, 0), dtype=bool)
    return pa.table(
        {
            "account_id": pc.cast(sig["account_id"], pa.string()),
            "evidence_signals": lists_from_mask(matrix, names),
        }
    )


def _subjects(
    con: duckdb.DuckDBPyConnection, results: Results, attributes: pa.Table | None, bands: list[float]
) -> pa.Table:
    con.register("acc_in", results.accounts.select(["account_id", "score", "verdict", "campaign_id"]))
    con.register("camp_in", campaign_table(results.campaigns))
    con.register("sig_in", signal_lists(results))
    attrs = (
        attributes
        if attributes is not None
        else pa.table(
            {
                "account_id": pa.array([], pa.string()),
                "tier": pa.array([], pa.string()),
                "org_id": pa.array([], pa.string()),
                "created_at": pa.array([], pa.timestamp("us", tz="UTC")),
            }
        )
    )
    con.register("attr_in", attrs.select(["account_id", "tier", "org_id", "created_at"]))
    con.register("bands_in", pa.table({"edge": pa.array(bands, pa.float64())}))
    # The score band is the number of band edges at or below the score (0 = lowest band).
    return records.fetch_arrow(
        con,
        """
        SELECT a.account_id, a.score, a.verdict, a.campaign_id, c.campaign_confidence,
               t.tier, t.org_id, t.created_at,
               (SELECT count(*) FROM bands_in WHERE edge <= a.score)::INTEGER AS evidence_band,
               list_sort(coalesce(s.evidence_signals, []::VARCHAR[])) AS evidence_signals,
               coalesce(c.evidence_campaign, []::VARCHAR[]) AS evidence_campaign
        FROM acc_in a
        LEFT JOIN camp_in c ON c.campaign_id = a.campaign_id
        LEFT JOIN (SELECT DISTINCT ON (account_id) * FROM attr_in) t ON t.account_id = a.account_id
        LEFT JOIN sig_in s ON s.account_id = a.account_id
        """,
    )


# Overrides on top of the policy's decision.  `why_new` is empty while a clearing's
# evidence still covers the current evidence, else it says what is new.
_OVERRIDE_SQL = """
WITH o AS (SELECT * FROM ovr_in),
joined AS (
    SELECT coalesce(d.account_id, o.account_id) AS account_id, d.* EXCLUDE (account_id),
           o.kind AS o_kind, o.action AS o_action, o.override_id,
           CASE WHEN o.kind = 'clear' THEN concat_ws('; ',
                CASE WHEN coalesce(d.evidence_band, 0) > coalesce(o.evidence_band, 0)
                     THEN 'score band rose from ' || coalesce(o.evidence_band, 0) || ' to ' || d.evidence_band END,
                CASE WHEN NOT list_has_all(coalesce(o.evidence_signals, []), coalesce(d.evidence_signals, []))
                     THEN 'new signals: ' || array_to_string(list_filter(d.evidence_signals,
                          lambda x: NOT list_contains(coalesce(o.evidence_signals, []), x)), ', ') END,
                CASE WHEN len(coalesce(d.evidence_campaign, [])) > 0 AND
                          len(list_intersect(coalesce(o.evidence_campaign, []), d.evidence_campaign))
                          < ? * len(list_distinct(list_concat(coalesce(o.evidence_campaign, []), d.evidence_campaign)))
                     THEN 'joined a different campaign (' || coalesce(d.campaign_id, '?') || ')' END)
           END AS why_new
    FROM dec_in d
    FULL OUTER JOIN o ON o.account_id = d.account_id
    WHERE d.account_id IS NOT NULL OR o.kind = 'set'
)
SELECT *,
       CASE WHEN o_kind = 'set' THEN o_action
            WHEN o_kind = 'clear' AND why_new = '' THEN 'allow'
            ELSE coalesce(action, 'allow') END AS final_action,
       CASE WHEN o_kind = 'set' THEN list_append(coalesce(reason_codes, []), ?)
            WHEN o_kind = 'clear' AND why_new = '' THEN list_append(reason_codes, ?)
            WHEN o_kind = 'clear' THEN list_append(reason_codes, ?)
            ELSE reason_codes END AS final_codes
FROM joined
"""


def apply_overrides(
    con: duckdb.DuckDBPyConnection, decided: pa.Table, overrides: pa.Table, policy: Policy
) -> pa.Table:
    """``decided`` with analyst overrides applied; adds columns ``why_new`` and ``override_id``."""
    con.register("dec_in", decided)
    con.register(
        "ovr_in",
        overrides.select(
            [
                "override_id",
                "account_id",
                "kind",
                "action",
                "evidence_band",
                "evidence_signals",
                "evidence_campaign",
            ]
        ),
    )
    t = records.fetch_arrow(
        con,
        _OVERRIDE_SQL,
        [SAME_CAMPAIGN_JACCARD, records.REASON_SET, records.REASON_CLEARED, records.REASON_SUPERSEDED],
    )
    final = t["final_action"]
    # A forced throttle / degrade has no rule behind it: the policy's defaults supply its parameters.
    forced = pc.equal(pc.fill_null(t["o_kind"], ""), "set")
    is_throttle = pc.and_(forced, pc.equal(final, "throttle"))
    is_degrade = pc.and_(forced, pc.equal(final, "degrade"))
    cleared = pc.and_(
        pc.equal(pc.fill_null(t["o_kind"], ""), "clear"), pc.equal(pc.fill_null(t["why_new"], ""), "")
    )
    out = {
        "account_id": t["account_id"],
        "action": final,
        "policy_action": pc.fill_null(t["policy_action"], "allow"),
        "reason_codes": pc.fill_null(t["final_codes"], pa.scalar([], pa.list_(pa.string()))),
        "campaign_id": t["campaign_id"],
        "score": t["score"],
        "verdict": t["verdict"],
        "ttl_seconds": pc.if_else(cleared, pa.scalar(None, pa.int32()), t["ttl_seconds"]),
        "throttle_rpm": pc.if_else(
            is_throttle, policy.default_throttle.requests_per_minute, t["throttle_rpm"]
        ),
        "throttle_burst": pc.if_else(
            is_throttle, pa.scalar(policy.default_throttle.burst, pa.int32()), t["throttle_burst"]
        ),
        "withhold_reasoning": pc.if_else(
            is_degrade, policy.default_degrade.withhold_reasoning, t["withhold_reasoning"]
        ),
        "max_output_tokens": pc.if_else(
            is_degrade,
            pa.scalar(policy.default_degrade.max_output_tokens, pa.int32()),
            t["max_output_tokens"],
        ),
        "evidence_band": t["evidence_band"],
        "evidence_signals": t["evidence_signals"],
        "evidence_campaign": t["evidence_campaign"],
        "override_id": t["override_id"],
        "why_new": t["why_new"],
    }
    return pa.table(out)


def _diff(con: duckdb.DuckDBPyConnection, current: pa.Table, previous: pa.Table) -> pa.Table:
    con.register("cur_in", current.select(["account_id", "action", "reason_codes"]))
    con.register("prev_in", previous.select(["account_id", "action"]))
    return records.fetch_arrow(
        con,
        """
        SELECT coalesce(c.account_id, p.account_id) AS account_id, p.action AS previous_action,
               c.action AS action, c.reason_codes,
               CASE WHEN coalesce(p.action, 'allow') = 'allow' AND coalesce(c.action, 'allow') <> 'allow' THEN 'new'
                    WHEN coalesce(p.action, 'allow') <> 'allow' AND coalesce(c.action, 'allow') = 'allow' THEN 'expired'
                    WHEN p.action <> c.action THEN 'changed' END AS change
        FROM cur_in c FULL OUTER JOIN prev_in p ON p.account_id = c.account_id
        WHERE change IS NOT NULL
        ORDER BY change, account_id
        """,
    )


def decide(
    results: Results,
    policy: Policy,
    db: str | Path,
    *,
    accounts_path: str | Path | None = None,
    dry_run: bool | None = None,
    actor: str = "distillwatch decide",
    now: datetime | None = None,
) -> DecideOutcome:
    """Decide every account of ``results`` under ``policy`` and record the run in the store ``db``."""
    now = now or datetime.now(UTC)
    dry = policy.dry_run if dry_run is None else (dry_run or policy.dry_run)
    attributes = read_account_attributes(accounts_path) if accounts_path is not None else None
    mem = duckdb.connect()
    subjects = _subjects(mem, results, attributes, policy.score_bands)
    decided = apply_policy(policy, subjects, now)
    decided = decided.append_column("campaign_id", subjects["campaign_id"]).append_column(
        "score", subjects["score"]
    )
    for name in ("verdict", "evidence_band", "evidence_signals", "evidence_campaign"):
        decided = decided.append_column(name, subjects[name])

    run_id = records.new_id("d")
    with records.short_connection(db) as con:
        overrides = records.active_overrides(con, now)
        prev_run = records.latest_run(con)
        previous = records.run_decisions(con, prev_run["run_id"] if prev_run else None)
    final = apply_overrides(mem, decided, overrides, policy)
    superseded_mask = pc.not_equal(pc.fill_null(final["why_new"], ""), "")
    superseded = final.filter(superseded_mask).select(["account_id", "override_id", "why_new"])
    # Keep accounts with an action, and those an allowlist, exemption or clearing lowered.
    keep = pc.or_(pc.not_equal(final["action"], "allow"), pc.not_equal(final["policy_action"], "allow"))
    keep = pc.or_(keep, pc.is_valid(final["override_id"]))
    acted = final.filter(keep).drop_columns(["override_id", "why_new"])
    mem.register("acted_in", acted)
    acted = records.fetch_arrow(
        mem,
        "SELECT *, md5(concat_ws('|', evidence_band, array_to_string(evidence_signals, ','), "
        "array_to_string(evidence_campaign, ','))) AS evidence_fp FROM acted_in ORDER BY account_id",
    )
    changes = _diff(mem, acted, previous)
    counts = {
        "accounts": results.accounts.num_rows,
        **{
            f"action_{a}": int(v)
            for a, v in zip(
                *np.unique(acted["action"].to_numpy(zero_copy_only=False), return_counts=True), strict=True
            )
        },
        **{
            c: int(pc.sum(pc.equal(changes["change"], c)).as_py() or 0) for c in ("new", "changed", "expired")
        },
        "clearings_superseded": superseded.num_rows,
    }

    actions_path = results.directory / "actions.parquet"
    written = acted.append_column("enforced", pa.array(np.full(acted.num_rows, not dry), pa.bool_()))
    written = written.append_column("decision_run_id", pa.array([run_id] * acted.num_rows, pa.string()))
    pq.write_table(written, actions_path)

    counts_json = json.dumps({k: v for k, v in counts.items() if k.startswith("action_")})
    with records.short_connection(db) as con:
        con.execute("BEGIN TRANSACTION")
        con.execute(
            "INSERT INTO respond_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                run_id,
                now,
                actor,
                str(results.directory),
                results.scan_run_id,
                policy.name,
                policy.digest(),
                dry,
                results.accounts.num_rows,
                counts_json,
            ],
        )
        stored = acted.select([c for c in acted.column_names])
        stored = stored.append_column("run_id", pa.array([run_id] * acted.num_rows, pa.string()))
        records.insert_arrow(con, "respond_decisions", stored)
        audit_rows = pa.table(
            {
                "audit_id": pa.array([f"{run_id}-{i}" for i in range(changes.num_rows)], pa.string()),
                "at_time": pa.array([now] * changes.num_rows, pa.timestamp("us", tz="UTC")),
                "kind": pa.array(["decision"] * changes.num_rows, pa.string()),
                "actor": pa.array([actor] * changes.num_rows, pa.string()),
                "account_id": changes["account_id"],
                "action": pc.fill_null(changes["action"], "allow"),
                "previous_action": changes["previous_action"],
                "change": changes["change"],
                "reason_codes": changes["reason_codes"],
                "why": pa.array(
                    [f"policy {policy.name} ({policy.digest()})"] * changes.num_rows, pa.string()
                ),
                "run_id": pa.array([run_id] * changes.num_rows, pa.string()),
                "dry_run": pa.array([dry] * changes.num_rows, pa.bool_()),
            }
        )
        records.insert_arrow(con, "respond_audit", audit_rows)
        if not dry:
            _end_superseded(con, superseded, now, actor, run_id)
            _record_signup_context(con, run_id, acted, attributes, results.campaigns)
        records.audit(
            con,
            "decide-run",
            actor,
            why=_run_summary(results.directory, counts, policy),
            run_id=run_id,
            dry_run=dry,
            at=now,
        )
        con.execute("COMMIT")
    if not dry:
        records.bump_marker(db, run_id)
    return DecideOutcome(
        run_id=run_id,
        dry_run=dry,
        actions_path=actions_path,
        actions=written,
        changes=changes,
        superseded=superseded,
        counts=counts,
    )


def _run_summary(directory: Path, counts: dict[str, int], policy: Policy) -> str:
    """One line for the audit trail: what was decided, under which policy, what changed."""
    actions = ", ".join(
        f"{k.removeprefix('action_')} {v}" for k, v in counts.items() if k.startswith("action_")
    )
    return (
        f"{directory}: {counts['accounts']} accounts; {actions or 'no actions'}; {counts['new']} new, "
        f"{counts['changed']} changed, {counts['expired']} expired; policy {policy.name} ({policy.digest()})"
    )


def _end_superseded(
    con: duckdb.DuckDBPyConnection, superseded: pa.Table, now: datetime, actor: str, run_id: str
) -> None:
    """Clearings whose evidence was overtaken end here, each with what was new, audited."""
    if superseded.num_rows == 0:
        return
    con.register("sup_in", superseded)
    con.execute(
        "UPDATE respond_overrides SET active = false, ended_at = ?, ended_reason = 'new evidence: ' || s.why_new "
        "FROM sup_in s WHERE respond_overrides.override_id = s.override_id",
        [now],
    )
    con.execute(
        "INSERT INTO respond_audit (audit_id, at_time, kind, actor, account_id, change, why, run_id, dry_run) "
        "SELECT ? || '-sup-' || row_number() OVER (), ?, 'clear-superseded', ?, account_id, 'superseded', why_new, ?, false "
        "FROM sup_in",
        [run_id, now, actor, run_id],
    )
    con.unregister("sup_in")


def _record_signup_context(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    acted: pa.Table,
    attributes: pa.Table | None,
    campaigns: list[Campaign],
) -> None:
    """Keep what sign-up scoring needs: flagged accounts' payment fingerprints, campaign indicators."""
    if attributes is not None:
        con.register("acted_pay", acted.select(["account_id", "action"]))
        con.register("attr_pay", attributes.select(["account_id", "payment_fingerprint"]))
        con.execute(
            "INSERT INTO respond_flagged_payments SELECT ?, t.payment_fingerprint, count(*) FROM acted_pay a "
            "JOIN attr_pay t ON t.account_id = a.account_id WHERE a.action <> 'allow' "
            "AND t.payment_fingerprint IS NOT NULL GROUP BY t.payment_fingerprint",
            [run_id],
        )
    rows = [(c.campaign_id, i.type, i.value, c.confidence) for c in campaigns for i in c.indicators]
    if rows:
        ids, kinds, values, conf = zip(*rows, strict=True)
        records.insert_arrow(
            con,
            "respond_campaign_indicators",
            pa.table(
                {
                    "run_id": pa.array([run_id] * len(rows), pa.string()),
                    "campaign_id": pa.array(ids, pa.string()),
                    "kind": pa.array(kinds, pa.string()),
                    "value": pa.array(values, pa.string()),
                    "confidence": pa.array(conf, pa.float64()),
                }
            ),
        )
