"""A results directory written by hand (as `scan` would), with hostile text in every traffic field."""

from __future__ import annotations

import json
import subprocess
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from distillwatch.campaigns.model import (
    Campaign,
    Count,
    DailyVolume,
    Indicator,
    Infrastructure,
    Registration,
    write_campaigns,
)

START = datetime(2026, 4, 22, tzinfo=UTC)
DAYS = 10
BIG = "A" * 1_000_000  # a 1 MB string
RLO = "invoice\u202etxt.exe"


def payloads(beacon: str) -> list[str]:
    """Injection attempts; any that worked would mark the page, or fetch from ``beacon`` (host:port)."""
    mark = "document.documentElement.setAttribute('data-pwned','{}')"
    return [
        f"<script>{mark.format('script')}</script>",
        f'"><img src=x onerror="{mark.format("onerror")}">',
        f'\'><svg onload="{mark.format("svg")}">',
        f'<a href="javascript:{mark.format("link")}">click</a>',
        "[click me](javascript:alert(1))",
        f"![x](http://{beacon}/md-image.png)",
        f'<img src="http://{beacon}/html-image.png">',
        f"<style>body{{background:url(http://{beacon}/css)}}</style>",
        f'<link rel="stylesheet" href="http://{beacon}/link.css">',
        f"http://{beacon}/bare-url www.evil.example",
        "| broken | table |\n# heading\n`code` *em* $x^2$ {{ jinja }}",
        RLO,
        "zero\u200bwidth\x00nul\x1bescape",
        BIG,
    ]


def _hostile(beacon: str, i: int) -> str:
    p = payloads(beacon)
    return p[i % len(p)]


def write_results(out: Path, *, beacon: str = "127.0.0.1:9", hostile: bool = True) -> dict:
    """Write a complete results directory to ``out``; returns the figures the report must show."""
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(42)
    evil = payloads(beacon) if hostile else ["plain text"] * len(payloads(beacon))
    c2_id = ("c2" + evil[1][:40]) if hostile else "c2"

    # accounts: 60 in campaign c1, 12 in c2, 3 flagged outside, 200 benign
    ids, scores, verdicts, cids, reasons, created = [], [], [], [], [], []
    for i in range(60):
        ids.append(f"acct-c1-{i:03d}")
        scores.append(float(0.8 + 0.2 * rng.random()))
        verdicts.append("attack")
        cids.append("c1")
        reasons.append("shared prefix, sign-up burst; UA " + (evil[i % len(evil)] if hostile else "curl"))
        created.append(START - timedelta(hours=2) + timedelta(minutes=int(rng.integers(0, 180))))
    for i in range(12):
        ids.append(f"acct-c2-{i:03d}")
        scores.append(0.7)
        verdicts.append("attack")
        cids.append(c2_id)
        reasons.append("template reuse")
        created.append(START + timedelta(days=int(rng.integers(0, 3))))
    for i in range(3):
        ids.append(f"acct-s-{i}")
        scores.append(0.55)
        verdicts.append("suspect")
        cids.append(None)
        reasons.append(evil[(i + 3) % len(evil)])
        created.append(START - timedelta(days=100))
    for i in range(200):
        ids.append(f"acct-b-{i:03d}")
        scores.append(float(0.2 * rng.random()))
        verdicts.append("benign")
        cids.append(None)
        reasons.append("")
        created.append(START - timedelta(days=int(rng.integers(30, 400))))
    accounts = pa.table(
        {
            "account_id": ids,
            "score": scores,
            "verdict": verdicts,
            "campaign_id": pa.array(cids, pa.string()),
            "reasons": reasons,
            "created_at": pa.array(created, pa.timestamp("us", tz="UTC")),
        }
    )
    pq.write_table(accounts, out / "accounts.parquet")
    pq.write_table(pa.table({"account_id": ids, "signup_burst": scores}), out / "signals.parquet")

    # daily volume: c1 over all 10 days, c2 over days 2-4, benign every day
    day_rows: dict[str, list] = {"day": [], "campaign_id": [], "exchanges": [], "accounts": []}
    c1_daily, c2_daily = [], []
    for d in range(DAYS):
        day = (START + timedelta(days=d)).date()
        for cid, exch, acc in (("c1", 1500 + 10 * d, 60), (None, 4000 + 50 * d, 180)) + (
            ((c2_id, 300, 12),) if 2 <= d <= 4 else ()
        ):
            day_rows["day"].append(day)
            day_rows["campaign_id"].append(cid)
            day_rows["exchanges"].append(exch)
            day_rows["accounts"].append(acc)
            if cid == "c1":
                c1_daily.append(DailyVolume(day=day.isoformat(), exchanges=exch, accounts=acc))
            elif cid == c2_id:
                c2_daily.append(DailyVolume(day=day.isoformat(), exchanges=exch, accounts=acc))
    pq.write_table(
        pa.table({**day_rows, "campaign_id": pa.array(day_rows["campaign_id"], pa.string())}),
        out / "daily.parquet",
    )
    c1_exchanges = sum(v.exchanges for v in c1_daily)
    c2_exchanges = sum(v.exchanges for v in c2_daily)
    benign_exchanges = sum(4000 + 50 * d for d in range(DAYS))
    total = c1_exchanges + c2_exchanges + benign_exchanges

    # edges among c1's members
    src, dst, kind, weight = [], [], [], []
    for i in range(60):
        for j in (i + 1, i + 7):
            if j < 60:
                src.append(f"acct-c1-{i:03d}")
                dst.append(f"acct-c1-{j:03d}")
                kind.append("shared_prefix" if j == i + 1 else "template")
                weight.append(float(rng.random()))
    pq.write_table(pa.table({"src": src, "dst": dst, "kind": kind, "weight": weight}), out / "edges.parquet")

    pq.write_table(
        pa.table(
            {
                "source": ["exchanges.jsonl"] * 3,
                "row": [5, 17, 40],
                "field": ["ts", "ip", "account_id"],
                "reason": ["bad_timestamp", "bad_ip", "missing_required"],
                "detail": ["not ISO 8601", evil[0], ""],
                "raw": [evil[1], evil[2], BIG if hostile else "x"],
            }
        ),
        out / "quarantine.parquet",
    )
    population = {
        "accounts": 200,
        "exchanges": benign_exchanges,
        "days": DAYS,
        "exchanges_per_account_per_day": benign_exchanges / 200 / DAYS,
        "cot_share": 0.04,
        "capabilities": {
            "software_engineering": 0.2,
            "agentic_reasoning": 0.05,
            "chat": 0.6,
            "writing": 0.15,
        },
    }
    (out / "population.json").write_text(json.dumps(population), encoding="utf-8")
    run = {
        "run_id": "run-test",
        "counts": {
            "rows_read": total + 3,
            "rows_accepted": total,
            "rows_quarantined": 3,
            "by_reason": {"bad_timestamp": 1, "bad_ip": 1, "missing_required": 1},
        },
    }
    (out / "run.json").write_text(json.dumps(run), encoding="utf-8")

    def counts(values: list[str], n: int) -> list[Count]:
        return [Count(value=v, count=n, share=round(n / c1_exchanges, 4)) for v in values]

    c1 = Campaign(
        campaign_id="c1",
        accounts=60,
        exchanges=c1_exchanges,
        first_seen=START,
        last_seen=START + timedelta(days=DAYS - 1, hours=23),
        days=DAYS,
        exchanges_per_account=c1_exchanges / 60,
        exchanges_per_account_per_day=c1_exchanges / 60 / DAYS,
        share_of_traffic=c1_exchanges / total,
        capabilities={"software_engineering": 0.55, "agentic_reasoning": 0.35, "chat": 0.10},
        cot_share=0.62,
        infrastructure=Infrastructure(
            addresses=140,
            prefixes=6,
            asns=2,
            top_prefixes=counts(["203.0.113.0/24", evil[5] if hostile else "198.51.100.0/24"], 700),
            top_asns=counts(["AS64500"], 1200),
            countries=counts(["US"], 1500),
            user_agents=counts(evil[:6] + [BIG] if hostile else ["python-httpx/0.27"], 100),
            datacenter_share=0.91,
            vpn_share=0.4,
        ),
        registration=Registration(
            accounts_with_record=60,
            created_first=START - timedelta(hours=2),
            created_last=START + timedelta(hours=1),
            signup_span_hours=3.0,
            email_domains=[
                Count(value=v, count=10, share=1 / 6)
                for v in (evil[:5] + [RLO] if hostile else ["mail.example"])
            ],
            disposable_email_share=0.8,
            shared_payment_accounts=48,
            distinct_payment_fingerprints=4,
        ),
        confidence=0.93,
        indicators=[
            Indicator(
                type="ipv4-prefix", value="203.0.113.0/24", count=700, first_seen=START, last_seen=START
            ),
            Indicator(type="email-domain", value=evil[3] if hostile else "mail.example", count=10),
            Indicator(type="user-agent", value=evil[0] if hostile else "curl", count=100),
        ],
        evidence=[
            "60 accounts created within 3 hours",
            "91% of exchanges from datacenter prefixes",
            "prompts sign as bob@example.com",
        ]
        + ([f"user agent {evil[4]}"] if hostile else []),
        signal_families=["infrastructure", "registration", "prompting"],
        template_hashes=counts(["t:9f2c", evil[6] if hostile else "t:0001"], 900),
        sample_prompts=["contact me at bob@example.com"]
        + (evil if hostile else ["Write a function that parses a CSV file."]),
        daily=c1_daily,
    )
    c2 = Campaign(
        campaign_id=c2_id,
        accounts=12,
        exchanges=c2_exchanges,
        first_seen=START + timedelta(days=2),
        last_seen=START + timedelta(days=4, hours=5),
        days=3,
        exchanges_per_account=c2_exchanges / 12,
        exchanges_per_account_per_day=c2_exchanges / 12 / 3,
        share_of_traffic=c2_exchanges / total,
        capabilities={"writing": 0.9, "chat": 0.1},
        infrastructure=Infrastructure(addresses=3, prefixes=1),
        confidence=0.6,
        indicators=[],
        daily=c2_daily,
    )
    write_campaigns(out / "campaigns.json", [c1, c2])
    return {"c1": c1, "c2": c2, "total": total, "benign_exchanges": benign_exchanges, "c2_id": c2_id}


@pytest.fixture
def results(tmp_path: Path) -> tuple[Path, dict]:
    directory = tmp_path / "results"
    return directory, write_results(directory)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, str, str]:
    """The hostile results directory rendered once per module: (directory, figures, html, md)."""
    from distillwatch.report import render

    directory = tmp_path_factory.mktemp("rendered") / "results"
    fig = write_results(directory)
    html_path, md_path = render(directory)
    assert (html_path, md_path) == (directory / "report.html", directory / "report.md")
    return directory, fig, html_path.read_text(), md_path.read_text()


# -- headless Chromium -------------------------------------------------------------------------------

CHROMIUM = Path("/usr/bin/chromium")
BROWSER = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium (Debian package chromium)"),
]


class _Beacon(BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.hits.append(self.path)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def beacon():
    """A loopback HTTP server that records every request it gets."""
    _Beacon.hits = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Beacon)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", _Beacon.hits
    finally:
        server.shutdown()
        server.server_close()


def chromium(page: Path, profile: Path, *args: str) -> str:
    cmd = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=3000",  # let any timer-driven payload fire before the snapshot
        *args,
        page.as_uri(),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=90, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout
