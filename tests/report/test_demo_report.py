"""End to end: simulate the demo preset, scan it, and check the report's figures.

Three sources must agree with what the report says: campaigns.json (the
scan's records), the raw simulated exchanges (recounted here with DuckDB for
each reported campaign's members) and the simulator's labels (the reported
campaigns are made of attack accounts and cover the simulated campaigns).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from markdown_it import MarkdownIt
from typer.testing import CliRunner

from distillwatch.campaigns.model import read_campaigns
from distillwatch.cli.main import app
from distillwatch.report.content import confidence_word, lead_sentence, num, pct, rank_campaigns

from .conftest import BIG, CHROMIUM, chromium, payloads

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("demo")
    sim = CliRunner().invoke(app, ["simulate", "--preset", "demo", "--seed", "3", "--out", str(root / "sim")])
    assert sim.exit_code == 0, sim.output
    from distillwatch.pipeline import scan

    scan(
        root / "sim" / "exchanges.parquet",
        root / "results",
        accounts=root / "sim" / "accounts.parquet",
        db=root / "dw.duckdb",
    )
    return root


def _md(demo: Path) -> str:
    # Markdown escapes punctuation with backslashes; the figures are compared without them.
    return (demo / "results" / "report.md").read_text().replace("\\", "")


def test_report_matches_campaigns_json(demo: Path):
    md = _md(demo)
    campaigns = rank_campaigns(read_campaigns(demo / "results" / "campaigns.json"))
    assert campaigns, "the demo has two campaigns; the scan found none"
    population = json.loads((demo / "results" / "population.json").read_text())["capabilities"]
    positions = []
    for i, c in enumerate(campaigns):
        section = md.split(f"## Campaign {i + 1}: {c.campaign_id}\n", 1)[1].split("\n## ", 1)[0]
        assert lead_sentence(c, population) in section
        for row in (
            f"| accounts | {num(c.accounts)} |",
            f"| exchanges | {num(c.exchanges)} |",
            f"| days (first to last, inclusive) | {num(c.days)} |",
            f"| exchanges per account | {num(float(c.exchanges_per_account))} |",
            f"| share of all traffic | {pct(c.share_of_traffic)} |",
        ):
            assert row in section, row
        assert f"Confidence {c.confidence:.2f} ({confidence_word(c.confidence)})" in section
        assert "accounts.parquet lists" not in section  # membership agrees with the record
        positions.append(md.index(f"| {i + 1} | {c.campaign_id} | {num(c.accounts)} | {num(c.exchanges)} |"))
    assert positions == sorted(positions)


def test_report_matches_the_raw_traffic(demo: Path):
    md = _md(demo)
    sim, res = demo / "sim", demo / "results"
    con = duckdb.connect()
    rows = con.execute(
        "SELECT count(*), count(DISTINCT account_id) FROM read_parquet(?)", [str(sim / "exchanges.parquet")]
    ).fetchone()
    assert f"| exchanges | {num(rows[0])} | {num(rows[0])} | 0 |" in md  # read = scored, nothing quarantined
    assert f"| scanned | {num(rows[1])} |" in md
    recount = con.execute(
        """
        SELECT a.campaign_id, count(DISTINCT e.account_id), count(*), min(e.ts), max(e.ts)
        FROM read_parquet(?) e JOIN read_parquet(?) a USING (account_id)
        WHERE a.campaign_id IS NOT NULL
        GROUP BY a.campaign_id
        """,
        [str(sim / "exchanges.parquet"), str(res / "accounts.parquet")],
    ).fetchall()
    for cid, accounts, exchanges, first, last in recount:
        section = md.split(f": {cid}\n", 1)[1].split("\n## ", 1)[0]
        assert f"| accounts | {num(accounts)} |" in section
        assert f"| exchanges | {num(exchanges)} |" in section
        assert f"| first seen | {first:%Y-%m-%d %H:%M} UTC |" in section
        assert f"| last seen | {last:%Y-%m-%d %H:%M} UTC |" in section
        assert f"| days (first to last, inclusive) | {(last.date() - first.date()).days + 1} |" in section


def test_reported_campaigns_are_the_simulated_ones(demo: Path):
    """Per the labels: reported campaign members are attack accounts, and most attack accounts are reported."""
    md = _md(demo)
    con = duckdb.connect()
    members, attack_members, attack_total = con.execute(
        """
        SELECT count(a.campaign_id), count(a.campaign_id) FILTER (WHERE l.is_attack),
               count(*) FILTER (WHERE l.is_attack)
        FROM read_parquet(?) l LEFT JOIN read_parquet(?) a USING (account_id)
        """,
        [str(demo / "sim" / "labels.parquet"), str(demo / "results" / "accounts.parquet")],
    ).fetchone()
    assert f"| in a campaign | {num(members)} |" in md
    # Loose bounds: this checks the report against the truth, not detection's fine quality
    # (evaluate measures that); a report of the wrong accounts would fail them.
    assert attack_members / members >= 0.6  # reported campaigns are mostly campaign accounts
    assert attack_members / attack_total >= 0.8  # and they cover the simulated campaigns
    largest = rank_campaigns(read_campaigns(demo / "results" / "campaigns.json"))[0].campaign_id
    (dominant,) = con.execute(
        """
        SELECT l.campaign_id FROM read_parquet(?) l JOIN read_parquet(?) a USING (account_id)
        WHERE a.campaign_id = ? GROUP BY l.campaign_id ORDER BY count(*) DESC LIMIT 1
        """,
        [str(demo / "sim" / "labels.parquet"), str(demo / "results" / "accounts.parquet"), largest],
    ).fetchone()
    assert dominant is not None, f"the largest reported campaign {largest} is mostly benign accounts"


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium (Debian package chromium)")
def test_hostile_traffic_through_scan_gives_an_inert_report(demo: Path, tmp_path: Path, beacon):
    """The first days of the demo with payloads in the campaign accounts' prompts, user agents and e-mails."""
    host, hits = beacon
    evil = [p for p in payloads(host) if len(p) < 1000]
    sim, out = demo / "sim", tmp_path / "hostile"
    out.mkdir()
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE attack AS SELECT account_id FROM read_parquet(?) WHERE is_attack",
        [str(sim / "labels.parquet")],
    )
    # Campaign accounts' text replaced by payloads (a stable choice per account); three rows carry 1 MB.
    pick = "list_extract($evil, CAST(hash({}) % len($evil) AS BIGINT) + 1)"
    exchanges = con.sql(
        f"""
        SELECT * REPLACE (
            CASE WHEN a.account_id IS NULL THEN e.prompt
                 WHEN row_number() OVER (ORDER BY e.request_id) <= 3 THEN $big || e.prompt
                 ELSE {pick.format("e.request_id")} || ' ' || e.prompt END AS prompt,
            CASE WHEN a.account_id IS NULL THEN e.user_agent ELSE {pick.format("e.account_id")} END AS user_agent)
        FROM read_parquet($path) e LEFT JOIN attack a USING (account_id)
        WHERE e.ts < (SELECT min(ts) FROM read_parquet($path)) + INTERVAL 4 DAY
        """,  # noqa: S608 (only fixed SQL fragments are formatted in; values are parameters)
        params={"big": BIG, "evil": evil, "path": str(sim / "exchanges.parquet")},
    ).to_arrow_table()
    accounts = con.sql(
        f"""
        SELECT * REPLACE (CASE WHEN a.account_id IS NULL THEN s.email ELSE 'x@' || {pick.format("s.account_id")} END AS email)
        FROM read_parquet($path) s LEFT JOIN attack a USING (account_id)
        """,  # noqa: S608
        params={"evil": evil, "path": str(sim / "accounts.parquet")},
    ).to_arrow_table()
    pq.write_table(exchanges, out / "exchanges.parquet")
    pq.write_table(accounts, out / "accounts.parquet")
    from distillwatch.pipeline import scan

    scan(
        out / "exchanges.parquet",
        out / "results",
        accounts=out / "accounts.parquet",
        db=tmp_path / "dw.duckdb",
    )
    html_path, md_path = out / "results" / "report.html", out / "results" / "report.md"
    md = md_path.read_text()
    assert "## Campaign 1:" in md
    assert not re.search("[\u202a-\u202e\u2066-\u2069]", md + html_path.read_text())
    rendered = MarkdownIt("commonmark").enable("table").render(md)
    assert "<a " not in rendered and "<img" not in rendered and "<script" not in rendered
    dom = chromium(html_path, tmp_path / "profile", "--dump-dom")
    assert "data-pwned" in dom, "the payloads should reach the page (as text)"
    assert "data-pwned=" not in dom
    assert "<title>distillwatch: distillation campaigns</title>" in dom
    assert hits == [], f"the report made requests: {hits}"
