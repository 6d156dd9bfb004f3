"""Benchmark the report on a results directory the size of the reported campaign.

    .venv/bin/python bench/report.py [--accounts 1000000] [--campaigns 12] [--dir /tmp/dw-bench-report]

Writes a synthetic results directory (seeded, vectorised): one campaign of
24,975 accounts and 28.8 million exchanges over 44 days, smaller campaigns
beside it, ``--accounts`` benign accounts, 8 edge kinds between the large
campaign's members, 100,000 quarantined rows.  Then renders the report in a
fresh child process and prints seconds, peak memory and file sizes.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
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
from distillwatch.features.content import CAPABILITIES

START = datetime(2026, 4, 22, tzinfo=UTC)
DAYS = 44
CAPS = list(CAPABILITIES)


def _ids(prefix: str, n: int) -> pa.Array:
    return pa.array(np.char.add(prefix, np.arange(n).astype(str)))


def write(out: Path, benign: int, n_campaigns: int, seed: int = 1) -> None:
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    sizes = [24_975] + [int(x) for x in rng.integers(20, 3000, n_campaigns - 1)]
    exchanges = [28_800_000] + [int(s * rng.integers(200, 1200)) for s in sizes[1:]]

    ids, cids, scores, created = [], [], [], []
    for i, size in enumerate(sizes):
        ids.append(_ids(f"c{i}-", size))
        cids.append(pa.array([f"C{i + 1:03d}"] * size))
        scores.append(rng.uniform(0.7, 1.0, size))
        created.append(
            np.datetime64("2026-04-20T00:00", "s") + rng.integers(0, 2 * 86400, size).astype("timedelta64[s]")
        )
    ids.append(_ids("b-", benign))
    cids.append(pa.nulls(benign, pa.string()))
    scores.append(rng.uniform(0, 0.4, benign))
    created.append(
        np.datetime64("2025-01-01T00:00", "s") + rng.integers(0, 400 * 86400, benign).astype("timedelta64[s]")
    )
    all_scores = np.concatenate(scores)
    accounts = pa.table(
        {
            "account_id": pa.concat_arrays(ids),
            "score": all_scores,
            "verdict": pa.array(
                np.where(all_scores > 0.7, "attack", np.where(all_scores > 0.35, "suspect", "benign"))
            ),
            "campaign_id": pa.concat_arrays([c.cast(pa.string()) for c in cids]),
            "reasons": pa.array(
                np.where(all_scores > 0.35, "shared prefix; template reuse; sign-up burst", "")
            ),
            "created_at": pa.array(np.concatenate(created), pa.timestamp("s", tz="UTC")),
        }
    )
    pq.write_table(accounts, out / "accounts.parquet")

    # 8 kinds between the large campaign's members, 200,000 rows: scan's default bound on edges.parquet
    n_pairs = 25_000
    a = rng.integers(0, sizes[0], n_pairs)
    b = (a + rng.integers(1, 200, n_pairs)) % sizes[0]
    src = np.char.add("c0-", a.astype(str))
    dst = np.char.add("c0-", b.astype(str))
    kinds = [
        "link_shared_prefix",
        "link_shared_template",
        "link_registration_burst",
        "link_shared_payment",
        "link_shared_ip",
        "link_synchronised",
        "link_shared_user_agent",
        "link_near_duplicate",
    ]
    edge_tables = [
        pa.table(
            {
                "src": src,
                "dst": dst,
                "kind": pa.array([k] * n_pairs),
                "weight": rng.uniform(0.1, 1.0, n_pairs),
            }
        )
        for k in kinds
    ]
    pq.write_table(pa.concat_tables(edge_tables), out / "edges.parquet")

    days = [(START + timedelta(days=d)).date() for d in range(DAYS)]
    benign_ex = benign * 30
    rows = {"day": [], "campaign_id": [], "exchanges": [], "accounts": []}
    campaigns = []
    for i, (size, ex) in enumerate(zip(sizes, exchanges, strict=True)):
        per_day = rng.multinomial(ex, np.ones(DAYS) / DAYS)
        cid = f"C{i + 1:03d}"
        rows["day"] += days
        rows["campaign_id"] += [cid] * DAYS
        rows["exchanges"] += per_day.tolist()
        rows["accounts"] += [size] * DAYS
        caps = rng.dirichlet(np.ones(len(CAPS)))
        campaigns.append(
            Campaign(
                campaign_id=cid,
                accounts=size,
                exchanges=ex,
                first_seen=START,
                last_seen=START + timedelta(days=DAYS - 1, hours=23),
                days=DAYS,
                exchanges_per_account=ex / size,
                exchanges_per_account_per_day=ex / size / DAYS,
                share_of_traffic=ex / (sum(exchanges) + benign_ex),
                capabilities=dict(zip(CAPS, caps.tolist(), strict=True)),
                cot_share=float(rng.uniform(0, 0.7)),
                infrastructure=Infrastructure(
                    addresses=size * 3,
                    prefixes=size // 10 + 1,
                    asns=12,
                    top_prefixes=[
                        Count(value=f"203.0.{j}.0/24", count=ex // 50, share=0.02) for j in range(10)
                    ],
                    user_agents=[Count(value=f"client/{j}.0", count=ex // 20, share=0.05) for j in range(10)],
                    datacenter_share=0.9,
                ),
                registration=Registration(
                    accounts_with_record=size,
                    email_domains=[
                        Count(value=f"mail{j}.example", count=size // 12, share=1 / 12) for j in range(10)
                    ],
                ),
                confidence=float(rng.uniform(0.5, 1.0)),
                indicators=[
                    Indicator(type="ipv4-prefix", value=f"203.0.{j}.0/24", count=ex // 50) for j in range(10)
                ],
                evidence=["synthetic benchmark campaign"],
                sample_prompts=["Write a Python function that " + "x" * 500] * 5,
                daily=[
                    DailyVolume(day=d.isoformat(), exchanges=int(e), accounts=size)
                    for d, e in zip(days, per_day, strict=True)
                ],
            )
        )
    per_day = rng.multinomial(benign_ex, np.ones(DAYS) / DAYS)
    rows["day"] += days
    rows["campaign_id"] += [None] * DAYS
    rows["exchanges"] += per_day.tolist()
    rows["accounts"] += [benign // 3] * DAYS
    pq.write_table(
        pa.table({**rows, "campaign_id": pa.array(rows["campaign_id"], pa.string())}), out / "daily.parquet"
    )
    write_campaigns(out / "campaigns.json", campaigns)

    total = sum(exchanges) + benign_ex
    q = 100_000
    pq.write_table(
        pa.table(
            {
                "source": ["exchanges.parquet"] * q,
                "row": np.arange(q),
                "field": ["ts"] * q,
                "reason": pa.array(np.where(np.arange(q) % 3 == 0, "bad_ip", "bad_timestamp")),
                "detail": [""] * q,
                "raw": [""] * q,
            }
        ),
        out / "quarantine.parquet",
    )
    (out / "population.json").write_text(
        json.dumps(
            {
                "accounts": benign,
                "exchanges": benign_ex,
                "cot_share": 0.05,
                "capabilities": dict(zip(CAPS, rng.dirichlet(np.ones(len(CAPS))).tolist(), strict=True)),
            }
        )
    )
    (out / "run.json").write_text(
        json.dumps(
            {
                "run_id": "bench",
                "counts": {
                    "rows_read": total + q,
                    "rows_accepted": total,
                    "rows_quarantined": q,
                    "by_reason": {"bad_ip": 33_334, "bad_timestamp": 66_666},
                },
            }
        )
    )


def _render(directory: str, queue: mp.Queue) -> None:
    from distillwatch.report import render

    t = time.perf_counter()
    html, md = render(Path(directory))
    queue.put(
        (
            time.perf_counter() - t,
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            html.stat().st_size,
            md.stat().st_size,
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--accounts", type=int, default=1_000_000, help="benign accounts")
    ap.add_argument("--campaigns", type=int, default=12)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/dw-bench-report"))
    args = ap.parse_args()
    t = time.perf_counter()
    write(args.dir, args.accounts, args.campaigns)
    print(f"results written in {time.perf_counter() - t:.1f} s to {args.dir}")
    ctx = mp.get_context("spawn")  # a fresh process: its peak memory is the report's own
    queue = ctx.Queue()
    proc = ctx.Process(target=_render, args=(str(args.dir), queue))
    proc.start()
    seconds, peak_mb, html_bytes, md_bytes = queue.get()
    proc.join()
    print(
        json.dumps(
            {
                "render_seconds": round(seconds, 1),
                "peak_rss_mb": round(peak_mb),
                "html_bytes": html_bytes,
                "md_bytes": md_bytes,
            }
        )
    )


if __name__ == "__main__":
    main()
