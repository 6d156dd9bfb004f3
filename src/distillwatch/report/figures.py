"""The table-level figures of the report, computed with Ibis over the results' Parquet files.

Each function takes the loaded :class:`~distillwatch.report.load.Results` and
returns small Python structures (a few hundred rows at most) for the templates
and charts; the heavy lifting (counts, windows, joins) stays in the engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

import ibis
from ibis import _

from distillwatch.report.load import Results

TOP_ACCOUNTS = 10  # highest-scoring members listed per campaign
FLAGGED_OUTSIDE = 20  # attack/suspect accounts outside any campaign, listed
QUARANTINE_EXAMPLES = 10
GRAPH_EDGE_FETCH = 20_000  # strongest links of the largest campaign read for its drawing
GRAPH_LINKS_PER_ACCOUNT = 4


@dataclass
class AccountFigures:
    scanned: int = 0
    verdicts: dict[str, int] = field(default_factory=dict)
    members: dict[str, int] = field(default_factory=dict)  # campaign_id -> accounts in accounts.parquet
    mean_score: dict[str, float | None] = field(default_factory=dict)
    top: dict[str, list[dict]] = field(default_factory=dict)  # campaign_id -> highest-scoring members
    flagged_outside: int = 0
    flagged_outside_top: list[dict] = field(default_factory=list)


def account_figures(res: Results) -> AccountFigures | None:
    t = res.table("accounts.parquet")
    if t is None:
        return None
    out = AccountFigures()
    verdicts = t.group_by("verdict").aggregate(n=_.count()).to_pyarrow().to_pylist()
    out.verdicts = {str(r["verdict"]): int(r["n"]) for r in verdicts}
    out.scanned = sum(out.verdicts.values())

    members = t.filter(_.campaign_id.notnull())
    per = (
        members.group_by("campaign_id")
        .aggregate(n=_.count(), mean_score=_.score.mean())
        .to_pyarrow()
        .to_pylist()
    )
    out.members = {r["campaign_id"]: int(r["n"]) for r in per}
    out.mean_score = {r["campaign_id"]: r["mean_score"] for r in per}

    cols = ["account_id", "score", "verdict", "campaign_id"] + (["reasons"] if "reasons" in t.columns else [])
    rank = ibis.row_number().over(group_by=_.campaign_id, order_by=[ibis.desc(_.score), _.account_id])
    top = members.select(*cols, rank=rank).filter(_.rank < TOP_ACCOUNTS).order_by(["campaign_id", "rank"])
    for r in top.to_pyarrow().to_pylist():
        out.top.setdefault(r["campaign_id"], []).append(r)

    outside = t.filter(_.campaign_id.isnull() & (_.verdict != "benign"))
    out.flagged_outside = int(outside.count().to_pyarrow().as_py())
    listed = outside.select(*cols).order_by([ibis.desc(_.score), _.account_id]).limit(FLAGGED_OUTSIDE)
    out.flagged_outside_top = listed.to_pyarrow().to_pylist()
    return out


@dataclass
class Daily:
    """Exchanges and active accounts per UTC day, for benign traffic and each campaign."""

    days: list[date] = field(default_factory=list)
    benign: dict[date, tuple[int, int]] = field(default_factory=dict)
    campaigns: dict[str, dict[date, tuple[int, int]]] = field(default_factory=dict)


def daily(res: Results) -> Daily:
    """From daily.parquet when present, else from the campaigns' own daily lists and population.json."""
    out = Daily()
    t = res.table("daily.parquet")
    if t is not None:
        rows = (
            t.group_by(day=_.day.cast("date"), campaign_id=_.campaign_id)
            .aggregate(exchanges=_.exchanges.sum(), accounts=_.accounts.sum())
            .to_pyarrow()
            .to_pylist()
        )
        for r in rows:
            value = (int(r["exchanges"] or 0), int(r["accounts"] or 0))
            if r["campaign_id"] is None:
                out.benign[r["day"]] = value
            else:
                out.campaigns.setdefault(r["campaign_id"], {})[r["day"]] = value
    else:
        for c in res.campaigns:
            out.campaigns[c.campaign_id] = {
                to_date(d.day): (d.exchanges, d.accounts) for d in c.daily if to_date(d.day)
            }
        for d in res.population.get("daily") or []:
            if isinstance(d, dict) and to_date(d.get("day")):
                out.benign[to_date(d["day"])] = (int(d.get("exchanges") or 0), int(d.get("accounts") or 0))
    days = set(out.benign)
    for per in out.campaigns.values():
        days |= set(per)
    out.days = sorted(days)
    return out


def to_date(value: object) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


@dataclass
class Quarantine:
    rows: int = 0
    by_reason: list[dict] = field(default_factory=list)  # source, field, reason, rows
    examples: list[dict] = field(default_factory=list)


def quarantine(res: Results) -> Quarantine | None:
    t = res.table("quarantine.parquet")
    if t is None:
        return None
    keys = [c for c in ("source", "field", "reason") if c in t.columns]
    out = Quarantine()
    out.rows = int(t.count().to_pyarrow().as_py())
    out.by_reason = (
        t.group_by(keys)
        .aggregate(rows=_.count())
        .order_by([ibis.desc("rows"), *keys])
        .to_pyarrow()
        .to_pylist()
    )
    shown = [c for c in ("source", "row", "field", "reason", "detail") if c in t.columns]
    order = [c for c in ("source", "row") if c in t.columns] or shown
    out.examples = t.select(*shown).order_by(order).limit(QUARANTINE_EXAMPLES).to_pyarrow().to_pylist()
    return out


def signup_times(res: Results, campaign_ids: list[str]) -> tuple[dict[str, list[datetime]], str | None]:
    """campaign_id -> members' registration times, and the file they came from.

    ``created_at`` is read from accounts.parquet or signals.parquet when scan
    put it there, else from the accounts input (see ``Results.registrations``).
    """
    accounts = res.table("accounts.parquet")
    if accounts is None or not campaign_ids:
        return {}, None
    source: tuple[ibis.Table, str] | None = None
    for name in ("accounts.parquet", "signals.parquet"):
        t = res.table(name)
        if t is not None and "created_at" in t.columns:
            source = (t.select("account_id", "created_at"), name)
            break
    source = source or res.registrations()
    if source is None:
        return {}, None
    table, where = source
    members = accounts.filter(_.campaign_id.isin(campaign_ids)).select("account_id", "campaign_id")
    rows = (
        members.join(table, "account_id")
        .filter(_.created_at.notnull())
        .select("campaign_id", "created_at")
        .to_pyarrow()
    )
    out: dict[str, list[datetime]] = {}
    for cid, ts in zip(rows["campaign_id"].to_pylist(), rows["created_at"].to_pylist(), strict=True):
        out.setdefault(cid, []).append(ts)
    return out, where


@dataclass
class GraphEdges:
    campaign_id: str
    total_edges: int  # edges.parquet rows inside the campaign (one per pair and kind)
    total_pairs: int  # distinct linked account pairs
    by_kind: dict[str, int]
    # (account, account, kinds linking them, summed weight): each account's strongest links
    pairs: list[tuple[str, str, int, float]]
    scores: dict[str, float]  # member -> score, for colouring nodes


def campaign_edges(res: Results, campaign_id: str) -> GraphEdges | None:
    """Links between members of one campaign, one per account pair, keeping each account's strongest.

    edges.parquet has a row per pair *and* signal kind; the drawing wants one
    line per pair, so kinds are counted and weights summed per pair.  Keeping
    the ``GRAPH_LINKS_PER_ACCOUNT`` strongest links of every account gives a
    readable backbone of a dense campaign without losing any of its accounts.
    """
    edges, accounts = res.table("edges.parquet"), res.table("accounts.parquet")
    if edges is None or accounts is None:
        return None
    members = accounts.filter(_.campaign_id == campaign_id).select("account_id", "score")
    ids = members.select("account_id")
    # Materialised once: the kind counts, the pair count and the backbone all read it.
    inside = (
        edges.semi_join(ids, [("src", "account_id")]).semi_join(ids.view(), [("dst", "account_id")]).cache()
    )
    kinds = inside.group_by("kind").aggregate(n=_.count()).to_pyarrow().to_pylist()
    by_kind = {str(r["kind"]): int(r["n"]) for r in kinds}
    pairs = (
        inside.mutate(a=ibis.least(_.src, _.dst), b=ibis.greatest(_.src, _.dst))
        .filter(_.a != _.b)
        .group_by(["a", "b"])
        .aggregate(kinds=_.kind.nunique(), weight=_.weight.sum())
        .cache()
    )
    total_pairs = int(pairs.count().to_pyarrow().as_py())
    rank_a = ibis.row_number().over(group_by=_.a, order_by=[ibis.desc(_.weight), _.b])
    rank_b = ibis.row_number().over(group_by=_.b, order_by=[ibis.desc(_.weight), _.a])
    backbone = (
        pairs.mutate(rank_a=rank_a, rank_b=rank_b)
        .filter((_.rank_a < GRAPH_LINKS_PER_ACCOUNT) | (_.rank_b < GRAPH_LINKS_PER_ACCOUNT))
        .order_by([ibis.desc("weight"), "a", "b"])
        .limit(GRAPH_EDGE_FETCH)
        .to_pyarrow()
    )
    pair_list = list(
        zip(
            backbone["a"].to_pylist(),
            backbone["b"].to_pylist(),
            [int(k) for k in backbone["kinds"].to_pylist()],
            [float(w or 0.0) for w in backbone["weight"].to_pylist()],
            strict=True,
        )
    )
    score_rows = members.to_pyarrow()
    scores = dict(zip(score_rows["account_id"].to_pylist(), score_rows["score"].to_pylist(), strict=True))
    return GraphEdges(campaign_id, sum(by_kind.values()), total_pairs, by_kind, pair_list, scores)
