"""One increment: ingest a partition, store its partial aggregates, merge, detect, update the state.

    run_increment("logs/2026-04-22.parquet", db="dw.duckdb", out="results/2026-04-22")

The per-row work (validation, address facts, per-account aggregation, per-text
facts of the rows entering the content sample) happens here once per partition.
What is recomputed per increment is account-level: features merged from the
stored partials (``incremental.merge``), then signals -> link -> score ->
campaigns -> results exactly as the batch scan (``pipeline.detect``).
DuckDB only: the state lives in the DuckDB store.  See docs/incremental.md.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import ibis
import pyarrow.parquet as pq

from distillwatch import engine as engines
from distillwatch import store as store_mod
from distillwatch.features import FeatureOptions
from distillwatch.features import enrichment as enrich_bridge
from distillwatch.features.build import enrich_addresses
from distillwatch.features.content import text_fact_arrays
from distillwatch.incremental import merge, partials
from distillwatch.incremental.compact import compact
from distillwatch.signals import load_config
from distillwatch.signals.config import DetectionConfig

# Columns of the retained partitions: the validated exchanges with their address facts and time columns,
# without the response text (no later stage reads it).
DROP_FROM_RETAINED = ("response",)


class IncrementError(ValueError):
    """The increment cannot run as asked (overlapping slice, bad bounds)."""


@dataclass
class IncrementResult:
    part_id: int
    run_id: str | None
    out: Path
    counts: dict[str, Any]
    verdicts: dict[str, int]
    campaigns: int
    timings: dict[str, float] = field(default_factory=dict)
    merge: merge.MergeReport = field(default_factory=merge.MergeReport)
    scan: Any = None  # the pipeline.ScanResult


def state_dir_for(db: str | Path) -> Path:
    """Where the retained partitions of the store ``db`` live: ``<db>.parts/`` beside it."""
    db = Path(db)
    return db.with_name(db.name + ".parts")


def file_identity(path: Path) -> dict[str, Any]:
    """Path, size, mtime and sha256 of a file (how `watch` knows it has processed it)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    st = path.stat()
    return {
        "source": str(path.resolve()),
        "size_bytes": st.st_size,
        "mtime": st.st_mtime,
        "content_hash": digest.hexdigest(),
    }


def _sql(store, sql: str, params: list | None = None) -> list[tuple]:
    """Run one statement on the store and fetch its result (the connection is shared with Ibis, which
    refuses to run while a result is pending)."""
    return store.execute(sql, params or []).fetchall()


def _utc(t: datetime | None) -> datetime | None:
    if t is None:
        return None
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def _overlapping(store, since: datetime, until: datetime) -> list[int]:
    rows = _sql(
        store,
        "SELECT part_id FROM inc_partitions WHERE since IS NOT NULL AND since < ? AND until > ? "
        "UNION SELECT part_id FROM inc_partitions WHERE since IS NULL AND min_ts < ? AND max_ts >= ? ORDER BY 1",
        [until, since, until, since],
    )
    return [r[0] for r in rows]


PART_TABLES = ("inc_account_part", "inc_account_hour", "inc_account_value", "inc_sample", "inc_request_ids")


def drop_partitions(store, part_ids: list[int]) -> list[Path]:
    """Forget partitions (for --reprocess): their partial rows and request ids; returns their retained files,
    for the caller to delete once the transaction has committed.

    The content sample of an affected account may then hold fewer than k rows until its next
    exchanges arrive (evicted rows are not kept); docs/incremental.md says so.
    """
    files = []
    for pid in part_ids:
        rows = _sql(store, "SELECT retained_path FROM inc_partitions WHERE part_id = ?", [pid])
        for table in PART_TABLES:
            _sql(store, f"DELETE FROM {table} WHERE part_id = ?", [pid])  # noqa: S608 - constant table names
        _sql(store, "DELETE FROM inc_partitions WHERE part_id = ?", [pid])
        if rows and rows[0][0]:
            files.append(Path(rows[0][0]))
    return files


def run_increment(
    exchanges: str | Path,
    db: str | Path,
    out: str | Path,
    accounts: str | Path | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    reprocess: bool = False,
    config: DetectionConfig | str | Path | None = None,
    target_fpr: float | None = None,
    lists: enrich_bridge.Lists | None = None,
    window_days: float | None = None,
    on_stage: Callable[[str], None] | None = None,
    identity: dict[str, Any] | None = None,
    track: bool = True,
    report: bool = True,
    detect: bool = True,
    compact_days: float | None = None,
) -> IncrementResult:
    """Process ``exchanges`` (or its slice ``[since, until)``) as one increment on top of the store ``db``.

    ``detect=False`` stores the partition's partials without running detection (a backfill: only the
    last of a series of partitions needs the account-level stages).  ``compact_days``: first fold the
    partitions that ended more than that many days before this one's end into one (``compact``).
    """
    from distillwatch import pipeline

    since, until = _utc(since), _utc(until)
    if (since is None) != (until is None):
        raise IncrementError("give both --since and --until, or neither")
    if since is not None and since >= until:
        raise IncrementError(f"--since {since.isoformat()} must be before --until {until.isoformat()}")
    cfg = config if isinstance(config, DetectionConfig) else load_config(config)
    if target_fpr is not None:
        cfg = cfg.model_copy(update={"score": cfg.score.model_copy(update={"target_fpr": target_fpr})})
    lists = lists or enrich_bridge.Lists()
    exchanges, out = Path(exchanges), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    parts_dir = state_dir_for(db)
    parts_dir.mkdir(parents=True, exist_ok=True)
    stages = pipeline._Stages(on_stage)

    store = store_mod.connect(db)
    # The same working-memory bound as a batch scan's engine; recorded, so the link stage can hand
    # DuckDB's buffer pool back before Leiden (``engine.release_memory``).
    engines.limit_memory(store)
    try:
        if since is not None:
            clash = _overlapping(store, since, until)
            if clash and not reprocess:
                raise IncrementError(
                    f"[{since.isoformat()}, {until.isoformat()}) overlaps partition(s) {clash} already processed; "
                    "pass --reprocess to replace them"
                )
            folded = [r[0] for r in _sql(store, "SELECT part_id FROM inc_partitions WHERE list_contains(?, part_id) "
                                                "AND (compacted_into IS NOT NULL OR retained_path IS NULL)", [clash])]  # fmt: skip
            if folded:
                raise IncrementError(f"partition(s) {folded} were compacted and cannot be reprocessed one by one")
        else:
            clash = []
        part_id = int(_sql(store, "SELECT nextval('inc_part_seq')")[0][0])
        con = ibis.duckdb.from_connection(store)
        with stages.stage("ingest"):
            counts, retained, min_ts, max_ts = _ingest_partition(
                store, con, part_id, exchanges, accounts, since, until, parts_dir, lists, out, clash
            )
        as_of = until or max_ts or datetime.now(UTC)
        # All of the partition's writes land together or not at all: a failed increment leaves the state as it was.
        _sql(store, "BEGIN TRANSACTION")
        try:
            replaced = drop_partitions(store, clash)
            with stages.stage("partials"):
                _store_partials(store, con, part_id, cfg.sample_per_account, parts_dir)
            _record_partition(store, part_id, exchanges, identity, since, until, min_ts, max_ts, counts, retained)
            _sql(store, "COMMIT")
        except BaseException:
            _sql(store, "ROLLBACK")
            retained.unlink(missing_ok=True)
            raise
        for path in replaced:
            path.unlink(missing_ok=True)
        if compact_days is not None:
            with stages.stage("compact"):
                compact(store, as_of - timedelta(days=compact_days))
        # Nothing stored yet (an empty first partition): there are no accounts to score.
        nothing = _sql(store, "SELECT count(*) FROM inc_account_part")[0][0] == 0
        if not detect or nothing:
            return IncrementResult(part_id, None, out, counts, {}, 0, stages.timings)
        result = _detect(
            store,
            con,
            part_id,
            exchanges,
            accounts,
            out,
            cfg,
            lists,
            window_days,
            as_of,
            counts,
            stages,
            track,
            report,
        )
        result.counts = counts
        return result
    finally:
        store.close()


def _ingest_partition(store, con, part_id, exchanges, accounts, since, until, parts_dir, lists, out, replacing):
    """Validate the input, keep the slice, skip stored request ids, add address facts, retain the rows."""
    from distillwatch.ingest import ingest

    work = parts_dir / f"work-{part_id}"
    res = ingest(exchanges, accounts=accounts, work_dir=work, con=store, command="scan")
    ingest_counts = res.counts.get("exchanges", {})
    raw = con.read_parquet(str(res.exchanges_path), table_name="dw_part_raw")
    in_slice = raw if since is None else raw.filter((raw.ts >= since) & (raw.ts < until))
    # Exactly once: rows whose request_id an earlier partition accepted are skipped (and counted).
    seen = con.table("inc_request_ids")
    if replacing:  # the partitions this one replaces (--reprocess) are dropped in the same transaction
        seen = seen.filter(~seen.part_id.isin(replacing))
    fresh = in_slice.filter(~in_slice.request_id.isin(seen.request_id))
    fresh = con.create_table("dw_part_fresh", fresh, temp=True, overwrite=True)
    n_accepted = int(raw.count().to_pyarrow().as_py())
    n_slice = int(in_slice.count().to_pyarrow().as_py())
    n_fresh = int(fresh.count().to_pyarrow().as_py())
    ex = enrich_addresses(con, fresh, lists)  # temp table dw_ex: with_time columns and address facts
    con.create_table("dw_part_ex", ex, temp=True, overwrite=True)
    retained = parts_dir / f"part-{part_id:06d}.parquet"
    keep = [c for c in ex.columns if c not in DROP_FROM_RETAINED]
    ex.select(keep).to_parquet(str(retained))
    if res.accounts_path is not None:
        # Staged beside the retained rows; upserted with the partials, in the same transaction.
        shutil.copyfile(res.accounts_path, parts_dir / f"accounts-{part_id:06d}.parquet")
    span = _sql(store, "SELECT min(ts), max(ts) FROM dw_part_fresh")[0]
    quarantine = work / "quarantine.parquet"
    if quarantine.exists():
        # The results directory's contract has the quarantine; the store's folder keeps every partition's.
        shutil.copyfile(quarantine, parts_dir / f"quarantine-{part_id:06d}.parquet")
        shutil.copyfile(quarantine, out / "quarantine.parquet")
    shutil.rmtree(work, ignore_errors=True)
    counts = {
        "exchanges": {
            "read": ingest_counts.get("read", 0),
            "quarantined": ingest_counts.get("quarantined", 0),
            "by_reason": ingest_counts.get("by_reason", {}),
            "outside_slice": n_accepted - n_slice,
            "duplicates_skipped": n_slice - n_fresh,
            "accepted": n_fresh,
        },
        "accounts": res.counts.get("accounts", {}),
    }
    return counts, retained, span[0], span[1]


def _record_partition(store, part_id, exchanges, identity, since, until, min_ts, max_ts, counts, retained) -> None:
    ident = identity or {}
    _sql(
        store,
        "INSERT INTO inc_partitions (part_id, source, since, until, size_bytes, mtime, content_hash, min_ts, max_ts, "
        "counts, retained_path, processed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            part_id, str(ident.get("source", exchanges)), since, until, ident.get("size_bytes"), ident.get("mtime"),
            ident.get("content_hash"), min_ts, max_ts, json.dumps(counts, default=str), str(retained), datetime.now(UTC),
        ],
    )  # fmt: skip


def _store_partials(store, con, part_id: int, per_account: int, parts_dir: Path) -> None:
    """Append this partition's partial aggregates, request ids and account records; update the content sample."""
    _sql(store, "INSERT INTO inc_request_ids SELECT request_id, ? FROM dw_part_fresh", [part_id])
    staged_accounts = parts_dir / f"accounts-{part_id:06d}.parquet"
    if staged_accounts.exists():
        cols = "account_id, created_at, email, signup_ip, payment_fingerprint, country, org_id, tier"
        sql = f"INSERT OR REPLACE INTO inc_accounts SELECT {cols} FROM read_parquet(?)"  # noqa: S608 - constant columns
        _sql(store, sql, [str(staged_accounts)])
        staged_accounts.unlink()
    ex = con.table("dw_part_ex")
    for table, expr in (
        ("inc_account_part", partials.account_part(ex, part_id)),
        ("inc_account_hour", partials.account_hour(ex, part_id)),
        ("inc_account_value", partials.account_values(ex, part_id)),
    ):
        con.insert(table, expr)
    _update_sample(store, con, ex, part_id, per_account)


def _update_sample(store, con, ex, part_id: int, per_account: int) -> None:
    """Merge this partition's sample candidates into each account's bottom-k; per-text facts of entrants."""
    cand = con.create_table("dw_cand", partials.sample_candidates(ex, per_account), temp=True, overwrite=True)
    stored = con.table("inc_sample")
    mine = stored.filter(stored.account_id.isin(cand.account_id))
    both = mine.select("account_id", "request_id", "rid_md5", new=ibis.literal(False)).union(
        cand.select("account_id", "request_id", "rid_md5", new=ibis.literal(True))
    )
    w = ibis.window(group_by="account_id", order_by=[both.rid_md5, both.request_id])
    ranked = both.mutate(rank=ibis.row_number().over(w))
    con.create_table("dw_rank", ranked, temp=True, overwrite=True)
    _sql(
        store,
        "DELETE FROM inc_sample USING dw_rank WHERE inc_sample.account_id = dw_rank.account_id "
        "AND inc_sample.request_id = dw_rank.request_id AND NOT dw_rank.new AND dw_rank.rank >= ?",
        [per_account],
    )
    rank = con.table("dw_rank")
    entrants = cand.join(
        rank.filter(rank.new & (rank["rank"] < per_account)).select("account_id", "request_id"),
        ["account_id", "request_id"],
    )
    entrants = con.create_table("dw_entrants", entrants, temp=True, overwrite=True)
    con.insert(
        "inc_sample",
        entrants.select(
            "account_id", "request_id", "rid_md5", part_id=ibis.literal(part_id, "int64"), sec=entrants.sec,
            daynum=entrants.daynum, n_tools=entrants.n_tools, prompt_key=entrants.prompt_key, system_key=entrants.system_key,
        ),
    )  # fmt: skip
    pf_known, sf_known = con.table("inc_prompt_facts"), con.table("inc_system_facts")
    todo = entrants.filter(
        ~entrants.prompt_key.isin(pf_known.prompt_key) | ~entrants.system_key.isin(sf_known.system_key)
    )
    opts = FeatureOptions()
    pf, sf, bands = text_fact_arrays(todo, opts.minhash_perm, opts.minhash_bands)
    for name, table, key in (("inc_prompt_facts", pf, "prompt_key"), ("inc_system_facts", sf, "system_key")):
        store.register("dw_new_facts", table)
        sql = f"INSERT INTO {name} BY NAME SELECT * FROM dw_new_facts WHERE {key} NOT IN (SELECT {key} FROM {name})"  # noqa: S608 - constant names
        _sql(store, sql)
        store.unregister("dw_new_facts")
    store.register("dw_new_bands", bands)
    _sql(
        store,
        "INSERT INTO inc_prompt_bands SELECT prompt_key, band FROM dw_new_bands "
        "WHERE prompt_key NOT IN (SELECT DISTINCT prompt_key FROM inc_prompt_bands)",
    )
    store.unregister("dw_new_bands")


def window_parts(store, as_of: datetime, window_days: float | None) -> list[int]:
    """Partitions in the window: all of them, or those with exchanges within ``window_days`` of ``as_of``."""
    if window_days is None:
        return [r[0] for r in _sql(store, "SELECT part_id FROM inc_partitions ORDER BY part_id")]
    start = as_of - timedelta(days=window_days)
    return [
        r[0]
        for r in _sql(store, "SELECT part_id FROM inc_partitions WHERE max_ts >= ? ORDER BY part_id", [start])
    ]


def _release_hour_before(store, con, parts: list[int], release: float | None):
    """Per account, exchanges in the release's epoch hour sent before the release (from retained rows)."""
    if release is None:
        return None, 0
    hour_start = datetime.fromtimestamp((release // 3600) * 3600, UTC)
    hour_end = hour_start + timedelta(hours=1)
    paths = [
        r[0]
        for r in _sql(
            store,
            "SELECT retained_path FROM inc_partitions WHERE list_contains(?, part_id) AND retained_path IS NOT NULL AND min_ts < ? AND max_ts >= ?",
            [parts, hour_end, hour_start],
        )
    ]
    if not paths:
        return None, 0
    rows = con.read_parquet(paths, table_name="dw_release_hour")
    hour_rows = rows.filter((rows.sec >= (release // 3600) * 3600) & (rows.sec < release))
    before = hour_rows.group_by("account_id").aggregate(before=hour_rows.count())
    before = con.create_table("dw_release_before", before, temp=True, overwrite=True)
    return before, int(before.before.sum().to_pyarrow().as_py() or 0)


def _detect(
    store,
    con,
    part_id,
    exchanges,
    accounts,
    out,
    cfg,
    lists,
    window_days,
    as_of,
    counts,
    stages,
    track,
    report,
):
    from distillwatch import pipeline

    started = datetime.now(UTC)
    run_id = f"scan-{started:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
    pipeline._record_start(store, run_id, started, out, exchanges, accounts, cfg)
    try:
        with stages.stage("features"):
            feats, state, report_ = load_features(store, con, lists, as_of, window_days)
        inputs = {
            "exchanges": str(exchanges),
            "accounts": str(accounts) if accounts else None,
            "partitions": report_.partitions,
        }
        scan = pipeline.detect(
            store, run_id, con, feats, counts, inputs, out, cfg, "duckdb", stages, track, report,
            ctx_extra={"incremental_state": state}, daily_counts=merge.daily_counts(state),
        )  # fmt: skip
    except BaseException as exc:
        _sql(
            store,
            "UPDATE detect_runs SET status = 'failed', finished_at = ?, counts = ? WHERE run_id = ?",
            [datetime.now(UTC), json.dumps({"error": f"{type(exc).__name__}: {exc}"[:2000]}), run_id],
        )
        raise
    with stages.stage("state"):
        update_state(store, con, state, out, run_id, as_of, scan.campaigns)
        _sql(store, "UPDATE inc_partitions SET run_id = ? WHERE part_id = ?", [run_id, part_id])
    return IncrementResult(
        part_id=part_id,
        run_id=run_id,
        out=out,
        counts=counts,
        verdicts=scan.verdicts,
        campaigns=len(scan.campaigns),
        timings=stages.timings,
        merge=report_,
        scan=scan,
    )


def load_features(
    store, con, lists: enrich_bridge.Lists, as_of: datetime | None, window_days: float | None
) -> tuple[Any, merge.StateTables, merge.MergeReport]:
    """The window's features merged from the store: (Features, the state tables, what the merge knew)."""
    if window_days is not None and as_of is None:
        raise IncrementError("a window needs the time it ends at")
    parts = window_parts(store, as_of, window_days)
    state = merge.state_tables(con, parts)
    release = merge.first_release(state)
    before, read_rows = _release_hour_before(store, con, parts, release)
    paths = [
        r[0]
        for r in _sql(
            store,
            "SELECT retained_path FROM inc_partitions WHERE list_contains(?, part_id) AND retained_path IS NOT NULL ORDER BY part_id",
            [parts],
        )
    ]
    ex_retained = con.read_parquet(paths, table_name="dw_retained")
    feats = merge.merged_features(con, state, lists, ex_retained, before, release)
    overlapping = int(merge.gap_moments(state.parts).overlapping.sum().to_pyarrow().as_py() or 0)
    return feats, state, merge.MergeReport(parts, overlapping, read_rows)


def update_state(
    store, con, state: merge.StateTables, out: Path, run_id: str, as_of: datetime, campaigns
) -> None:
    """Account and campaign state, updated in place: first/last seen, current verdict, first time flagged."""
    p = state.parts
    seen = p.group_by("account_id").aggregate(first_seen=p.first_ts.min(), last_seen=p.last_ts.max())
    con.create_table("dw_seen", seen, temp=True, overwrite=True)
    store.register(
        "dw_verdicts",
        pq.read_table(out / "accounts.parquet", columns=["account_id", "score", "verdict", "campaign_id"]),
    )
    _sql(
        store,
        """
        INSERT OR REPLACE INTO inc_account_state
        SELECT v.account_id, s.first_seen, s.last_seen, v.score, v.verdict, v.campaign_id,
               coalesce(o.first_flagged_attack, CASE WHEN v.verdict = 'attack' THEN ?::TIMESTAMPTZ END),
               coalesce(o.first_flagged_suspect, CASE WHEN v.verdict IN ('attack', 'suspect') THEN ?::TIMESTAMPTZ END),
               ?
        FROM dw_verdicts v JOIN dw_seen s USING (account_id)
        LEFT JOIN inc_account_state o USING (account_id)
        """,
        [as_of, as_of, run_id],
    )
    store.unregister("dw_verdicts")
    for c in campaigns:
        _sql(
            store,
            """
            INSERT OR REPLACE INTO inc_campaign_state
            SELECT ?, coalesce((SELECT first_flagged FROM inc_campaign_state WHERE campaign_id = ?), ?::TIMESTAMPTZ),
                   ?::TIMESTAMPTZ, ?, ?, ?, ?
            """,
            [c.campaign_id, c.campaign_id, as_of, as_of, c.accounts, c.exchanges, c.confidence, run_id],
        )
