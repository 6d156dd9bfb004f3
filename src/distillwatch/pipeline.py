"""The scan: ingest -> enrich -> features -> signals -> link -> score -> campaigns -> results.

``scan()`` is what ``distillwatch scan`` runs.  It writes the results directory
described in docs/architecture.md and records the run, the verdicts and the
campaigns in the store (``store/schema/020_detect.sql``).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from distillwatch import engine as engines
from distillwatch.campaigns.build import build_campaigns
from distillwatch.campaigns.model import Campaign, write_campaigns
from distillwatch.contract import ACCOUNT_RESULTS_SCHEMA
from distillwatch.features import FeatureOptions, build_features
from distillwatch.features import enrichment as enrich_bridge
from distillwatch.features.build import load_accounts, load_exchanges
from distillwatch.link.stage import link_accounts, write_edges
from distillwatch.score.stage import org_codes, score_stage
from distillwatch.signals import SignalContext, compute_account_signals, load_config
from distillwatch.signals.config import DetectionConfig

STAGES = ("ingest", "features", "signals", "link", "score", "campaigns", "write")


@dataclass
class ScanResult:
    run_id: str
    out: Path
    accounts: int
    exchanges: int
    campaigns: list[Campaign]
    verdicts: dict[str, int]
    counts: dict[str, Any]
    thresholds: dict[str, float]
    timings: dict[str, float] = field(default_factory=dict)


class _Stages:
    """Times each stage, takes its peak memory, and drives an optional progress display (a callable
    taking the stage name)."""

    def __init__(self, on_stage: Callable[[str], None] | None) -> None:
        self.timings: dict[str, float] = {}
        # Peak resident set size per stage, GiB; BETWEEN_STAGES is the rest of the process's life so far
        # (start-up, the work between stages, tracking and the report).  Empty where the kernel does not tell.
        self.peak_rss_gb: dict[str, float] = {}
        self.on_stage = on_stage

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self._peak(BETWEEN_STAGES)
        if self.on_stage:
            self.on_stage(name)
        t0 = time.perf_counter()
        yield
        self.timings[name] = round(time.perf_counter() - t0, 3)
        self._peak(name)

    def finish(self) -> dict[str, float]:
        """The peaks per stage, with the time since the last stage counted in BETWEEN_STAGES."""
        self._peak(BETWEEN_STAGES)
        return dict(self.peak_rss_gb)

    def _peak(self, name: str) -> None:
        peak = _take_peak_rss_gb()
        if peak is not None:
            self.peak_rss_gb[name] = max(peak, self.peak_rss_gb.get(name, 0.0))


BETWEEN_STAGES = "between stages"


def _take_peak_rss_gb() -> float | None:
    """This process's peak resident set size since the last call, GiB (Linux; None elsewhere).

    Reads the kernel's high-water mark (VmHWM) and resets it (``clear_refs`` 5).  The
    reset also resets what ``getrusage``/``wait4`` report as the process's maximum RSS,
    so a caller measuring this process from outside takes the largest of those peaks
    and its own (``bench/scale.py`` does).
    """
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            kib = next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:"))
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
    except (OSError, StopIteration, ValueError):
        return None
    return round(kib / 1024**2, 3)


def _ingest(exchanges: Path, accounts: Path | None, out: Path, store) -> tuple[Path, Path | None, dict, str | None]:
    """Validated inputs via the ingest stage: (exchanges parquet, accounts parquet, counts, ingest run id)."""
    from distillwatch.ingest import ingest

    res = ingest(exchanges, accounts=accounts, work_dir=out, con=store, command="scan")
    return res.exchanges_path, res.accounts_path, res.counts, res.run_id


def scan(
    exchanges: str | Path,
    out: str | Path,
    accounts: str | Path | None = None,
    db: str | Path | None = None,
    config: DetectionConfig | str | Path | None = None,
    target_fpr: float | None = None,
    engine: str = "duckdb",
    lists: enrich_bridge.Lists | None = None,
    on_stage: Callable[[str], None] | None = None,
    track: bool = True,
    report: bool = True,
) -> ScanResult:
    """Scan ``exchanges`` (and ``accounts``) and write the results directory ``out``."""
    from distillwatch import store as store_mod

    cfg = config if isinstance(config, DetectionConfig) else load_config(config)
    if target_fpr is not None:
        cfg = cfg.model_copy(update={"score": cfg.score.model_copy(update={"target_fpr": target_fpr})})
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC)
    run_id = f"scan-{started:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
    stages = _Stages(on_stage)
    store = store_mod.connect(db)
    try:
        _record_start(store, run_id, started, out, exchanges, accounts, cfg)
        result = _scan(store, run_id, Path(exchanges), Path(accounts) if accounts else None, out, cfg, engine, lists, stages, track, report)
    except BaseException as exc:
        store.execute(
            "UPDATE detect_runs SET status = 'failed', finished_at = ?, counts = ? WHERE run_id = ?",
            [datetime.now(UTC), json.dumps({"error": f"{type(exc).__name__}: {exc}"[:2000]}), run_id],
        )
        store.close()
        raise
    store.close()
    return result


def _scan(store, run_id, exchanges, accounts, out, cfg, engine, lists, stages, track, report) -> ScanResult:
    with stages.stage("ingest"):
        ex_path, acc_path, counts, _ingest_run = _ingest(exchanges, accounts, out, store)

    con = engines.connect(engine)
    with stages.stage("features"):
        ex = load_exchanges(con, ex_path)
        acc = load_accounts(con, acc_path)
        feats = build_features(con, ex, acc, FeatureOptions(sample_per_account=cfg.sample_per_account, lists=lists or enrich_bridge.Lists()))
    inputs = {"exchanges": str(exchanges), "accounts": str(accounts) if accounts else None}
    result = detect(store, run_id, con, feats, counts, inputs, out, cfg, engine, stages, track, report)
    con.disconnect()
    return result


def detect(
    store,
    run_id: str,
    con,
    feats,
    counts: dict,
    inputs: dict,
    out: Path,
    cfg: DetectionConfig,
    engine: str,
    stages: _Stages,
    track: bool,
    report: bool,
    ctx_extra: dict[str, Any] | None = None,
    daily_counts=None,
) -> ScanResult:
    """The account-level stages, shared by the batch scan and the incremental path.

    signals -> link -> score -> campaigns -> results directory and store.  Their cost
    scales with accounts and shared keys, not with the exchanges' history.
    ``ctx_extra`` reaches the signals (the incremental path passes its stored pair
    keys there); ``daily_counts`` (account_id, day, n), when given, replaces reading
    ``feats.ex`` for daily.parquet.
    """
    account_ids = feats.accounts.column("account_id").combine_chunks()
    n = len(account_ids)
    # The exchanges without free text, for every stage that does not quote prompts.
    rows = feats.ex if feats.rows is None else feats.rows

    with stages.stage("signals"):
        ctx = SignalContext(
            features=feats.accounts,
            hours=feats.hours,
            population=feats.population,
            con=con,
            ex=rows,
            facts=feats.facts,
            prompt_bands=feats.prompt_bands,
            account_records=feats.account_records,
            store=store,
            extra=dict(ctx_extra or {}),
        )
        signals = compute_account_signals(ctx, cfg)
        fam_scores = signals.family_scores()

    with stages.stage("link"):
        graph = link_accounts(con, ctx, cfg, account_ids, fam_scores)

    with stages.stage("score"):
        ids = pa.array(account_ids, pa.string())
        evidence, scores = score_stage(signals, fam_scores, graph, org_codes(feats.accounts), cfg)
    labels = scores.labels
    campaign_col = pa.array([labels.get(int(c)) if c >= 0 else None for c in scores.community], pa.string())

    with stages.stage("campaigns"):
        membership = pa.table({"account_id": ids, "campaign_id": campaign_col}).filter(pc.is_valid(campaign_col))
        by_label = {labels[ev.community]: ev for ev in evidence if ev.community in labels}
        records = build_campaigns(
            con,
            rows,
            feats.facts,
            feats.account_records,
            membership,
            evidence={cid: _evidence_words(ev, signals.ids) for cid, ev in by_label.items()},
            families={cid: ev.families for cid, ev in by_label.items()},
            confidence={cid: ev.confidence for cid, ev in by_label.items()},
            total_exchanges=feats.population["exchanges"],
            texts=feats.ex,
        )

    with stages.stage("write"):
        results = pa.table(
            {
                "account_id": ids,
                "score": pa.array(scores.score),
                "verdict": pa.array(scores.verdict.astype(str)),
                "campaign_id": campaign_col,
                "reasons": scores.reasons,
            },
            schema=ACCOUNT_RESULTS_SCHEMA,
        )
        extra = {"own_evidence": scores.own, "campaign_evidence": scores.campaign_part}
        for famname, values in fam_scores.items():
            extra[f"family_{famname}"] = values
        for k, v in extra.items():
            results = results.append_column(k, pa.array(np.round(v, 6)))
        pq.write_table(results, out / "accounts.parquet")
        pq.write_table(signals.table(ids), out / "signals.parquet")
        write_edges(out / "edges.parquet", graph, ids, campaign_col, cfg.link.max_edges_written)
        _write_daily(con, rows if daily_counts is None else daily_counts, membership, out / "daily.parquet")
        write_campaigns(out / "campaigns.json", records)
        population = dict(feats.population)
        population["benign_baseline_note"] = "all accounts outside campaigns"
        (out / "population.json").write_text(json.dumps(population, indent=2, default=str), encoding="utf-8")
        verdicts = {v: int(np.sum(scores.verdict == v)) for v in ("attack", "suspect", "benign")}
        thresholds = {**scores.thresholds, "target_fpr": cfg.score.target_fpr}
        run = {
            "run_id": run_id,
            "inputs": inputs,
            "counts": _flat_counts(counts),
            "ingest": counts,
            "accounts": n,
            "exchanges": feats.population["exchanges"],
            "campaigns": len(records),
            "verdicts": verdicts,
            "thresholds": thresholds,
            "enrichment": enrich_bridge.available(),
            "signals": signals.ids,
            "timings": stages.timings,
            "engine": engine,
        }
        (out / "run.json").write_text(json.dumps(run, indent=2, default=str), encoding="utf-8")

    if track:
        records = _track(out, store, run_id, feats, records)
    _record_results(store, run_id, out, counts, n, records, verdicts, thresholds, stages.timings)
    if report:
        _report(out)
    # Peak memory per stage, added to run.json once the last of the scan's work (tracking, the report) is done.
    run["peak_rss_gb"] = stages.finish()
    (out / "run.json").write_text(json.dumps(run, indent=2, default=str), encoding="utf-8")
    return ScanResult(run_id, out, n, feats.population["exchanges"], records, verdicts, counts, thresholds, stages.timings)


def _evidence_words(ev, signal_ids: list[str]) -> list[str]:
    # The figures were measured on the community the campaign was found in (``ev.size`` accounts); a campaign
    # merged from several overlapping communities says so, since its members are more than that community.
    words = []
    where = f"the {ev.size} accounts of the community it was found in" if ev.merged_from > 1 else f"its {ev.size} accounts"
    for famname in ev.families:
        cov, mean = ev.link_coverage[famname], ev.member_mean[famname]
        if cov >= mean:
            words.append(f"{famname}: {cov:.0%} of {where} are linked by shared {famname} evidence")
        else:
            words.append(f"{famname}: {where} average {mean:.2f} on the {famname} signals (0 to 1)")
    words.append(
        f"group statistic {ev.statistic:.2f} against {ev.null_threshold:.2f} for random groups of {ev.size} accounts "
        "at the target false-positive rate"
    )
    if ev.merged_from > 1:
        words.append(f"merged from {ev.merged_from} communities whose fitting accounts largely overlap")
    return words


def _write_daily(con, ex, membership: pa.Table, path: Path) -> None:
    """daily.parquet: exchanges and accounts per day and campaign (null = outside any campaign).

    ``ex`` is either the exchanges (one row each) or counts per (account_id, day) with column ``n``.
    """
    import ibis

    m = con.create_table("dw_membership_daily", membership, temp=True, overwrite=True)
    j = ex.left_join(m, ex.account_id == m.account_id)
    if "n" in ex.columns and "day" in ex.columns:
        g = j.group_by([j.day, j.campaign_id]).aggregate(exchanges=j.n.sum(), accounts=j.account_id.nunique())
    else:
        g = j.group_by([j.ts.date().name("day"), j.campaign_id]).aggregate(
            exchanges=ibis._.count(), accounts=j.account_id.nunique()
        )
    pq.write_table(g.order_by(["day", "campaign_id"]).to_pyarrow(), path)


def _flat_counts(counts: dict) -> dict:
    ex = counts.get("exchanges", {})
    return {
        "rows_read": ex.get("read"),
        "rows_accepted": ex.get("accepted"),
        "rows_quarantined": ex.get("quarantined"),
        "by_reason": ex.get("by_reason", {}),
    }


def _record_start(store, run_id, started, out, exchanges, accounts, cfg) -> None:
    store.execute(
        "INSERT INTO detect_runs (run_id, started_at, results_dir, inputs, config, status) VALUES (?, ?, ?, ?, ?, 'running')",
        [run_id, started, str(out), json.dumps({"exchanges": str(exchanges), "accounts": str(accounts) if accounts else None}), cfg.model_dump_json()],
    )


def _track(out: Path, store, run_id: str, feats, records: list[Campaign]) -> list[Campaign]:
    """Gives returning campaigns their tracked id (threat intelligence), when that stage is installed."""
    try:
        from distillwatch.intel.track import track_results
    except ImportError:
        return records
    if not records:
        return records
    track_results(out, store, run_id=run_id, exchanges=feats.ex, accounts=feats.account_records, facts=feats.facts)
    from distillwatch.campaigns.model import read_campaigns

    return read_campaigns(out / "campaigns.json")


def _record_results(store, run_id, out: Path, counts, n, records: list[Campaign], verdicts, thresholds, timings) -> None:
    accounts = pq.read_table(out / "accounts.parquet", columns=list(ACCOUNT_RESULTS_SCHEMA.names))
    store.execute("DELETE FROM detect_accounts WHERE run_id = ?", [run_id])
    store.register("dw_results", accounts)
    store.execute(
        "INSERT INTO detect_accounts SELECT ?, account_id, score, verdict, campaign_id, reasons FROM dw_results", [run_id]
    )
    store.unregister("dw_results")
    for c in records:
        store.execute(
            "INSERT OR REPLACE INTO detect_campaigns VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [run_id, c.campaign_id, c.accounts, c.exchanges, c.first_seen, c.last_seen, c.confidence, c.model_dump_json()],
        )
    store.execute(
        "UPDATE detect_runs SET finished_at = ?, counts = ?, accounts = ?, campaigns = ?, attack = ?, suspect = ?, "
        "thresholds = ?, timings = ?, status = 'ok' WHERE run_id = ?",
        [
            datetime.now(UTC),
            json.dumps(counts, default=str),
            n,
            len(records),
            verdicts["attack"],
            verdicts["suspect"],
            json.dumps(thresholds),
            json.dumps(timings),
            run_id,
        ],
    )


def _report(out: Path) -> None:
    """The analyst's report (report stage) or, without it, a basic report.md."""
    try:
        from distillwatch.report import render
    except ImportError:
        render = None
    if render is not None:
        render(out)
        return
    from distillwatch.campaigns.summary import write_basic_report

    write_basic_report(out)
