"""End to end: simulate the demo preset, scan it, and check the report's figures.

Three sources must agree with what the report says: campaigns.json (the
scan's records), the raw simulated exchanges (recounted here with DuckDB for
each reported campaign's members) and the simulator's labels (the reported
campaigns are made of attack accounts and cover the simulated campaigns).
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from distillwatch.campaigns.model import read_campaigns
from distillwatch.cli.main import app
from distillwatch.report.content import confidence_word, lead_sentence, num, pct, rank_campaigns

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
