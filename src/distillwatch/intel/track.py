"""Tracking campaigns across scans: a campaign that comes back keeps its id.

Each scan's campaigns are matched against the latest fingerprint of every
campaign in the store's history (`intel_campaign_runs`).  Pairs are taken
greedily, best first, one old campaign per new one; a pair counts only if its
overall similarity reaches `MATCH_THRESHOLD` *and* templates or infrastructure
(the operator-specific evidence) reach `STRONG_EVIDENCE`, because two unrelated
harvest campaigns look alike in timing and capability mix.

`track_results(results_dir, con)` is what `scan` calls at the end: it
fingerprints the campaigns, matches them, attributes them to known actors,
rewrites campaign ids consistently in campaigns.json, accounts.parquet and
daily.parquet, and writes fingerprints.json.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import ibis
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from distillwatch.campaigns.model import Campaign, CampaignHistory, read_campaigns, write_campaigns
from distillwatch.intel.attribution import DEFAULT_THRESHOLD, attribute_campaigns
from distillwatch.intel.fingerprint import Fingerprint, Similarity, compare, from_campaign
from distillwatch.intel.profile import campaign_indicators, enrich_fingerprints

MATCH_THRESHOLD = 0.5
STRONG_EVIDENCE = 0.3
MAX_LISTED = 20  # new prefixes/templates listed per campaign in its history
INDICATORS_FILE = "intel_indicators.parquet"


def _history(con: duckdb.DuckDBPyConnection, exclude_run: str) -> list[dict]:
    """Latest sighting of every tracked campaign, with its first sighting and scan count."""
    rows = con.execute(
        """
        SELECT campaign_id, run_id, fingerprint, accounts, exchanges,
               min(first_seen) OVER w AS first_seen_all,
               count(*) OVER w AS scans,
               first_value(run_id) OVER (PARTITION BY campaign_id ORDER BY recorded_at) AS first_run
        FROM intel_campaign_runs
        WHERE run_id <> ?
        WINDOW w AS (PARTITION BY campaign_id)
        QUALIFY row_number() OVER (PARTITION BY campaign_id ORDER BY recorded_at DESC) = 1
        ORDER BY campaign_id
        """,
        [exclude_run],
    ).fetchall()
    keys = (
        "campaign_id",
        "run_id",
        "fingerprint",
        "accounts",
        "exchanges",
        "first_seen",
        "scans",
        "first_run",
    )
    out = [dict(zip(keys, r, strict=True)) for r in rows]
    for h in out:
        h["fingerprint"] = Fingerprint.model_validate_json(h["fingerprint"])
    return out


def all_tracked_ids(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {r[0] for r in con.execute("SELECT DISTINCT campaign_id FROM intel_campaign_runs").fetchall()}


def _is_match(sim: Similarity, threshold: float) -> bool:
    strong = max((sim.by_type.get(k) or 0.0) for k in ("templates", "infrastructure"))
    return sim.overall >= threshold and strong >= STRONG_EVIDENCE


def _new_keys(now: dict[str, float], before: dict[str, float]) -> list[str]:
    fresh = [k for k in now if k not in before]
    return sorted(fresh, key=lambda k: (-now[k], k))[:MAX_LISTED]


def _unique_id(wanted: str, taken: set[str], run_id: str) -> str:
    if wanted not in taken:
        return wanted
    base = f"{wanted}-{run_id[:8]}"
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def _summary(c: Campaign, h: CampaignHistory) -> str:
    if h.status == "new":
        return f"First seen in this scan ({c.first_seen:%Y-%m-%d})."
    parts = [
        f"Returning campaign: first seen {h.first_seen:%Y-%m-%d}" if h.first_seen else "Returning campaign",
        f"seen in {h.scans} scans (fingerprint similarity to its last sighting {h.match_score:.2f})",
    ]
    if h.accounts_before:
        parts.append(f"accounts {h.accounts_before:,} -> {c.accounts:,} (x{h.account_growth:.2f})")
    moves = []
    if h.new_prefixes:
        moves.append(f"{len(h.new_prefixes)} new network prefixes")
    if h.new_asns:
        moves.append(f"new ASNs {', '.join('AS' + a for a in h.new_asns[:5])}")
    if h.new_templates:
        moves.append(f"{len(h.new_templates)} new prompt templates")
    if h.new_email_domains:
        moves.append(f"{len(h.new_email_domains)} new e-mail domains")
    parts.append("moved to " + ", ".join(moves) if moves else "same infrastructure and templates as before")
    return "; ".join(parts) + "."


def match_campaigns(
    con: duckdb.DuckDBPyConnection,
    campaigns: list[Campaign],
    run_id: str,
    fingerprints: dict[str, Fingerprint] | None = None,
    threshold: float = MATCH_THRESHOLD,
) -> list[Campaign]:
    """Give each campaign its tracked id and history, and record this run in the store.

    `fingerprints` are keyed by the scan's campaign ids (default: from the records
    alone).  Re-running the same `run_id` replaces that run's rows, so it is idempotent.
    The returned campaigns carry the tracked ids; their order is unchanged.
    """
    fps = fingerprints or {c.campaign_id: from_campaign(c) for c in campaigns}
    history = _history(con, run_id)
    pairs = []
    for i, c in enumerate(campaigns):
        for j, h in enumerate(history):
            sim = compare(fps[c.campaign_id], h["fingerprint"])
            if _is_match(sim, threshold):
                pairs.append((sim.overall, i, j))
    pairs.sort(key=lambda p: (-p[0], p[1], p[2]))
    matched: dict[int, tuple[int, float]] = {}
    used: set[int] = set()
    for score, i, j in pairs:
        if i not in matched and j not in used:
            matched[i] = (j, score)
            used.add(j)

    con.execute("DELETE FROM intel_campaign_runs WHERE run_id = ?", [run_id])
    taken = all_tracked_ids(con) | {history[j]["campaign_id"] for j, _ in matched.values()}
    now = datetime.now(UTC)
    out: list[Campaign] = []
    rows = []
    for i, c in enumerate(campaigns):
        fp = fps[c.campaign_id]
        if i in matched:
            j, score = matched[i]
            h = history[j]
            prev: Fingerprint = h["fingerprint"]
            new_id = h["campaign_id"]
            first = min(x for x in (h["first_seen"], c.first_seen) if x is not None)
            hist = CampaignHistory(
                status="returning",
                first_seen=first,
                first_run_id=h["first_run"],
                scans=h["scans"] + 1,
                previous_run_id=h["run_id"],
                match_score=round(score, 3),
                accounts_before=h["accounts"],
                exchanges_before=h["exchanges"],
                account_growth=round(c.accounts / h["accounts"], 3) if h["accounts"] else None,
                new_prefixes=_new_keys(fp.prefixes, prev.prefixes),
                new_asns=_new_keys(fp.asns, prev.asns),
                new_templates=_new_keys(fp.templates, prev.templates),
                new_email_domains=_new_keys(fp.email_domains, prev.email_domains),
            )
        else:
            new_id = _unique_id(c.campaign_id, taken, run_id)
            taken.add(new_id)
            score = None
            hist = CampaignHistory(status="new", first_seen=c.first_seen, first_run_id=run_id, scans=1)
        hist.summary = _summary(c, hist)
        tracked_fp = fp.model_copy(update={"campaign_id": new_id})
        out.append(c.model_copy(update={"campaign_id": new_id, "history": hist}))
        rows.append(
            [
                new_id,
                run_id,
                c.campaign_id,
                now,
                c.first_seen,
                c.last_seen,
                c.accounts,
                c.exchanges,
                score,
                tracked_fp.model_dump_json(),
            ]
        )
    if rows:
        con.executemany("INSERT INTO intel_campaign_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    return out


# --- rewriting a results directory ---------------------------------------------------------


def _remap(col: pa.ChunkedArray | pa.Array, mapping: dict[str, str]) -> pa.Array:
    """Vectorised old-id -> new-id replacement; ids not in the mapping stay as they are."""
    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    old = pa.array(list(mapping), pa.string())
    new = pa.array(list(mapping.values()), pa.string())
    idx = pc.index_in(pc.cast(col, pa.string()), value_set=old)
    return pc.if_else(pc.is_valid(idx), pc.take(new, idx), pc.cast(col, pa.string()))


def _remap_text(col: pa.ChunkedArray, mapping: dict[str, str]) -> pa.ChunkedArray:
    """Rewrite campaign ids quoted in reason strings, as whole words, in two passes so swaps cannot chain."""
    out = col
    for n, old in enumerate(mapping):
        out = pc.replace_substring_regex(out, pattern=rf"\b{re.escape(old)}\b", replacement=f"\x00{n}\x00")
    for n, new in enumerate(mapping.values()):
        out = pc.replace_substring(out, pattern=f"\x00{n}\x00", replacement=new.replace("\\", "\\\\"))
    return out


def _rewrite_parquet(path: Path, mapping: dict[str, str], text_cols: tuple[str, ...] = ()) -> None:
    if not path.exists():
        return
    table = pq.read_table(path)
    if "campaign_id" not in table.column_names:
        return
    table = table.set_column(
        table.schema.get_field_index("campaign_id"),
        table.schema.field("campaign_id"),
        _remap(table["campaign_id"], mapping),
    )
    for name in text_cols:
        if name in table.column_names:
            table = table.set_column(
                table.schema.get_field_index(name),
                table.schema.field(name),
                _remap_text(table[name], mapping),
            )
    tmp = path.with_suffix(".parquet.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def rewrite_campaign_ids(results_dir: Path, mapping: dict[str, str]) -> None:
    """Apply old -> new campaign ids to the Parquet files of a results directory."""
    changed = {k: v for k, v in mapping.items() if k != v}
    if not changed:
        return
    _rewrite_parquet(results_dir / "accounts.parquet", changed, text_cols=("reasons",))
    _rewrite_parquet(results_dir / "daily.parquet", changed)


def _run_id(results_dir: Path) -> str:
    run = results_dir / "run.json"
    if run.exists():
        rid = json.loads(run.read_text(encoding="utf-8")).get("run_id")
        if rid:
            return str(rid)
    # No run.json: a content hash keeps re-tracking the same results idempotent.
    return hashlib.sha256((results_dir / "campaigns.json").read_bytes()).hexdigest()[:16]


def _as_table(source: ibis.Table | str | Path | None) -> ibis.Table | None:
    if source is None or isinstance(source, ibis.Table):
        return source
    return ibis.duckdb.connect().read_parquet(str(source))


def track_results(
    results_dir: str | Path,
    con: duckdb.DuckDBPyConnection,
    run_id: str | None = None,
    exchanges: ibis.Table | str | Path | None = None,
    accounts: ibis.Table | str | Path | None = None,
    facts: ibis.Table | str | Path | None = None,
    match_threshold: float = MATCH_THRESHOLD,
    attribution_threshold: float = DEFAULT_THRESHOLD,
) -> dict[str, str]:
    """End-of-scan hook: track, attribute and re-id the campaigns of a results directory.

    `exchanges`/`accounts` (Ibis tables or Parquet paths in the contract's schema)
    are optional; with them the fingerprints gain the hour-of-day profile, the
    template sketch, sign-up hours and e-mail shapes.  With them (and `facts`, the
    sampled exchanges with `template_hash`) every value two or more accounts of a
    campaign carry is written to INDICATORS_FILE with how specific it is, which
    `intel export` shares (leaving out what honest customers also carry).  Returns {scan id: tracked id}.
    Call it before anything else stores the campaign ids (it rewrites them).
    """
    results_dir = Path(results_dir)
    campaigns = read_campaigns(results_dir / "campaigns.json")
    run_id = run_id or _run_id(results_dir)
    fps = {c.campaign_id: from_campaign(c) for c in campaigns}
    members = pq.read_table(results_dir / "accounts.parquet", columns=["account_id", "campaign_id"])
    ex_t, acc_t, facts_t = _as_table(exchanges), _as_table(accounts), _as_table(facts)
    specificity = None
    if campaigns and (ex_t is not None or acc_t is not None):
        enriched = enrich_fingerprints(fps.values(), members, ex_t, acc_t)
        fps = {fp.campaign_id: fp for fp in enriched}
        specificity = campaign_indicators(members, ex_t, facts_t, acc_t)
    tracked = match_campaigns(con, campaigns, run_id, fps, match_threshold)
    mapping = {c.campaign_id: t.campaign_id for c, t in zip(campaigns, tracked, strict=True)}
    tracked_fps = {mapping[k]: v.model_copy(update={"campaign_id": mapping[k]}) for k, v in fps.items()}
    tracked = attribute_campaigns(con, tracked, tracked_fps, attribution_threshold)
    rewrite_campaign_ids(results_dir, mapping)
    if specificity is not None:
        specificity = specificity.set_column(0, "campaign_id", _remap(specificity["campaign_id"], mapping))
        pq.write_table(specificity, results_dir / INDICATORS_FILE)
    write_campaigns(results_dir / "campaigns.json", tracked)
    write_fingerprints(results_dir / "fingerprints.json", list(tracked_fps.values()))
    return mapping


def write_fingerprints(path: Path, fps: list[Fingerprint]) -> None:
    path.write_text(json.dumps([fp.model_dump(mode="json") for fp in fps], indent=1), encoding="utf-8")


def read_fingerprints(results_dir: str | Path) -> dict[str, Fingerprint]:
    """fingerprints.json of a results directory, or fingerprints from campaigns.json when it is absent."""
    results_dir = Path(results_dir)
    path = results_dir / "fingerprints.json"
    if path.exists():
        fps = [Fingerprint.model_validate(x) for x in json.loads(path.read_text(encoding="utf-8"))]
        return {fp.campaign_id or "": fp for fp in fps}
    return {c.campaign_id: from_campaign(c) for c in read_campaigns(results_dir / "campaigns.json")}
