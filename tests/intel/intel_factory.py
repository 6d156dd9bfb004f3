"""Hand-written results directories (what `scan --out DIR` writes) for the intel tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from distillwatch.campaigns.model import (
    Campaign,
    Count,
    DailyVolume,
    Indicator,
    Infrastructure,
    Registration,
    write_campaigns,
)

T0 = datetime(2026, 4, 22, tzinfo=UTC)


def counts(values: list[str], total: int) -> list[Count]:
    each = total // max(len(values), 1)
    return [Count(value=v, count=each, share=each / total) for v in values]


def make_campaign(
    cid: str = "C1",
    accounts: int = 100,
    exchanges: int = 2600,
    prefixes: tuple[str, ...] = ("203.0.113.0/24", "198.51.100.0/24"),
    ipv6: tuple[str, ...] = ("2001:db8:1::/48",),
    asns: tuple[str, ...] = ("64500",),
    templates: tuple[str, ...] = ("a1b2c3d4e5f60718", "0badc0ffee123456", "feedfacecafe0001"),
    domains: tuple[str, ...] = ("mailbox.example",),
    capabilities: dict[str, float] | None = None,
    start: datetime = T0,
    days: int = 10,
    signup_span_hours: float = 2.0,
) -> Campaign:
    ips = list(prefixes) + list(ipv6)
    indicators = (
        [
            Indicator(
                type="ipv4-prefix",
                value=p,
                count=exchanges // len(ips),
                first_seen=start,
                last_seen=start + timedelta(days=days - 1),
            )
            for p in prefixes
        ]
        + [Indicator(type="ipv6-prefix", value=p, count=exchanges // len(ips)) for p in ipv6]
        + [Indicator(type="asn", value=a, count=exchanges) for a in asns]
        + [Indicator(type="email-domain", value=d, count=accounts) for d in domains]
        + [Indicator(type="template-hash", value=t, count=exchanges // len(templates)) for t in templates]
    )
    return Campaign(
        campaign_id=cid,
        accounts=accounts,
        exchanges=exchanges,
        first_seen=start,
        last_seen=start + timedelta(days=days - 1, hours=23),
        days=days,
        exchanges_per_account=exchanges / accounts,
        exchanges_per_account_per_day=exchanges / accounts / days,
        capabilities=capabilities
        or {"software_engineering": 0.7, "agentic_tool_use": 0.2, "long_horizon": 0.1},
        infrastructure=Infrastructure(
            addresses=40,
            prefixes=len(ips),
            asns=len(asns),
            top_prefixes=counts(ips, exchanges),
            top_asns=counts([f"AS{a}" for a in asns], exchanges),
            user_agents=counts(["python-httpx/0.27"], exchanges),
            datacenter_share=0.9,
        ),
        confidence=0.95,
        indicators=indicators,
        cot_share=0.6,
        registration=Registration(
            accounts_with_record=accounts,
            created_first=start - timedelta(days=3),
            created_last=start - timedelta(days=3) + timedelta(hours=signup_span_hours),
            signup_span_hours=signup_span_hours,
            email_domains=counts(list(domains), accounts),
        ),
        template_hashes=counts(list(templates), exchanges),
        sample_prompts=["Write a Python function that <b>parses</b> a log file"],
        daily=[
            DailyVolume(
                day=(start + timedelta(days=d)).date().isoformat(),
                exchanges=exchanges // days,
                accounts=accounts,
            )
            for d in range(days)
        ],
    )


def write_results(out: Path, campaigns: list[Campaign], benign: int = 20, run_id: str | None = None) -> Path:
    """campaigns.json, accounts.parquet (members + benign), daily.parquet and run.json."""
    out.mkdir(parents=True, exist_ok=True)
    write_campaigns(out / "campaigns.json", campaigns)
    ids, cids, reasons = [], [], []
    for c in campaigns:
        for k in range(c.accounts):
            ids.append(f"{c.campaign_id}-acct-{k}")
            cids.append(c.campaign_id)
            reasons.append(f"member of campaign {c.campaign_id} (shares templates)")
    for k in range(benign):
        ids.append(f"benign-{k}")
        cids.append(None)
        reasons.append("no signal fired")
    n = len(ids)
    pq.write_table(
        pa.table(
            {
                "account_id": pa.array(ids, pa.string()),
                "score": pa.array([0.9 if c else 0.1 for c in cids]),
                "verdict": pa.array(["attack" if c else "benign" for c in cids]),
                "campaign_id": pa.array(cids, pa.string()),
                "reasons": pa.array(reasons),
            }
        ),
        out / "accounts.parquet",
    )
    assert n == len(cids)
    pq.write_table(
        pa.table(
            {
                "day": [c.first_seen.date().isoformat() for c in campaigns],
                "campaign_id": [c.campaign_id for c in campaigns],
                "exchanges": [c.exchanges for c in campaigns],
                "accounts": [c.accounts for c in campaigns],
            }
        ),
        out / "daily.parquet",
    )
    if run_id:
        (out / "run.json").write_text(f'{{"run_id": "{run_id}"}}', encoding="utf-8")
    return out
