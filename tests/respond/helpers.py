"""Hand-written results directories (what `scan` writes), for the respond tests."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from distillwatch.campaigns.model import Campaign, Count, Indicator, Infrastructure, write_campaigns
from distillwatch.contract import ACCOUNT_RESULTS_SCHEMA

NOW = datetime(2026, 6, 5, 12, 0, tzinfo=UTC)


def campaign(
    cid: str = "C1",
    confidence: float = 0.95,
    prefixes: tuple[str, ...] = ("203.0.113.0/24",),
    templates: tuple[str, ...] = ("t-aaa", "t-bbb"),
    domains: tuple[str, ...] = ("mailbox.example",),
) -> Campaign:
    indicators = [Indicator(type="ipv4-prefix", value=p, count=10) for p in prefixes]
    indicators += [Indicator(type="email-domain", value=d, count=10) for d in domains]
    return Campaign(
        campaign_id=cid,
        accounts=3,
        exchanges=300,
        first_seen=NOW - timedelta(days=3),
        last_seen=NOW,
        days=4,
        exchanges_per_account=100.0,
        capabilities={"software_engineering": 0.8, "chat": 0.2},
        infrastructure=Infrastructure(addresses=3, prefixes=1),
        confidence=confidence,
        indicators=indicators,
        template_hashes=[Count(value=t, count=100, share=0.3) for t in templates],
    )


def write_results(
    directory: Path,
    rows: list[dict],
    campaigns: list[Campaign] | None = None,
    signals: dict[str, list] | None = None,
    run_id: str = "scan-1",
) -> Path:
    """rows: dicts with account_id, score, verdict, campaign_id (optional), reasons (optional)."""
    directory.mkdir(parents=True, exist_ok=True)
    table = pa.table(
        {
            "account_id": [r["account_id"] for r in rows],
            "score": [float(r["score"]) for r in rows],
            "verdict": [r["verdict"] for r in rows],
            "campaign_id": [r.get("campaign_id") for r in rows],
            "reasons": [r.get("reasons", "") for r in rows],
        },
        schema=ACCOUNT_RESULTS_SCHEMA,
    )
    pq.write_table(table, directory / "accounts.parquet")
    write_campaigns(directory / "campaigns.json", campaigns if campaigns is not None else [campaign()])
    if signals is not None:
        pq.write_table(
            pa.table({"account_id": [r["account_id"] for r in rows], **signals}),
            directory / "signals.parquet",
        )
    (directory / "run.json").write_text(json.dumps({"run_id": run_id}), encoding="utf-8")
    return directory


def write_accounts(path: Path, rows: list[dict]) -> Path:
    cols = (
        "account_id",
        "created_at",
        "email",
        "signup_ip",
        "payment_fingerprint",
        "country",
        "org_id",
        "tier",
    )
    table = pa.table(
        {
            c: pa.array(
                [r.get(c) for r in rows], pa.timestamp("us", tz="UTC") if c == "created_at" else pa.string()
            )
            for c in cols
        }
    )
    pq.write_table(table, path)
    return path


# A small population: three campaign members, one suspect, an enterprise attacker, clean accounts.
BASE_ROWS = [
    {"account_id": "atk-1", "score": 0.97, "verdict": "attack", "campaign_id": "C1"},
    {"account_id": "atk-2", "score": 0.95, "verdict": "attack", "campaign_id": "C1"},
    {"account_id": "atk-3", "score": 0.93, "verdict": "attack", "campaign_id": "C1"},
    {"account_id": "sus-1", "score": 0.6, "verdict": "suspect", "campaign_id": None},
    {"account_id": "ent-1", "score": 0.96, "verdict": "attack", "campaign_id": "C1"},
    {"account_id": "clean-1", "score": 0.02, "verdict": "benign", "campaign_id": None},
    {"account_id": "clean-2", "score": 0.10, "verdict": "benign", "campaign_id": None},
]

BASE_ACCOUNTS = [
    {
        "account_id": "atk-1",
        "created_at": NOW - timedelta(days=3),
        "tier": "free",
        "payment_fingerprint": "pay-x",
    },
    {
        "account_id": "atk-2",
        "created_at": NOW - timedelta(days=3),
        "tier": "free",
        "payment_fingerprint": "pay-x",
    },
    {"account_id": "atk-3", "created_at": NOW - timedelta(days=3), "tier": "free"},
    {"account_id": "sus-1", "created_at": NOW - timedelta(days=2), "tier": "pro"},
    {
        "account_id": "ent-1",
        "created_at": NOW - timedelta(days=400),
        "tier": "enterprise",
        "org_id": "org-big",
    },
    {"account_id": "clean-1", "created_at": NOW - timedelta(days=100), "tier": "pro"},
    {"account_id": "clean-2", "created_at": NOW - timedelta(days=10), "tier": "free"},
]
