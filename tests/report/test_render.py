"""The report from a hand-written results directory: figures, partial input, hostile text, redaction."""

from __future__ import annotations

import base64
import json
import re
import shutil
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from markdown_it import MarkdownIt
from typer.testing import CliRunner

from distillwatch.campaigns.model import Infrastructure, Registration
from distillwatch.cli.main import app
from distillwatch.report import render
from distillwatch.report.charts import signup_bins
from distillwatch.report.content import densest_day, lead_sentence, targeted, traits

from .conftest import BIG, write_results

BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u200b]")


class _Tags(HTMLParser):
    """Every start tag with its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def _tags(html: str) -> list[tuple[str, dict[str, str | None]]]:
    p = _Tags()
    p.feed(html)
    return p.tags


def test_report_states_the_campaign_figures(rendered):
    _, fig, html, md = rendered
    c1 = fig["c1"]
    lead = "15,450 exchanges through 60 accounts between 22 April and 1 May 2026, targeting software engineering and agentic reasoning."
    assert lead_sentence(c1, {"software_engineering": 0.2, "agentic_reasoning": 0.05, "chat": 0.6}) == lead
    for text in (html, md):
        assert lead in text
        # rows read = scored + quarantined, said in words
        said = f"Exchanges: rows read ({fig['total'] + 3:,}) = rows scored ({fig['total']:,}) + rows quarantined (3)."
        assert said in text.replace("\\", "")
        assert "AML.T0024.002" in text
    # the ranking puts the larger campaign first, with its share of traffic
    assert md.index("| 1 | c1 | 60 | 15,450 | 26.4%") < md.index("| 2 | c2")
    # capabilities against the population, CoT share against benign
    assert "| agentic reasoning | 35.0% | 5.0% | 7.0x |" in md
    assert "62.0% (benign: 4.0%)" in md
    assert "| exchanges | bad\\_ip | 1 |" in md
    # infrastructure, registration, daily volume, account graph
    assert "| exchanges from datacenters | 91.0% |" in md
    assert "| accounts sharing a payment instrument | 48 |" in md
    assert "| 2026-04-24 | 1,520 | 60 | 25.3 | 4,100 |" in md
    assert "| 2026-04-21 22:00 UTC | 22 |" in md  # sign-ups per hour, from accounts.parquet created_at
    assert "| accounts drawn | 60 |" in md
    assert "| linked account pairs | 112 |" in md  # one per pair, whatever the number of kinds
    assert "| pairs linked by shared\\_prefix | 59 |" in md
    # charts: overview timeline; per campaign (2) capability, timeline, sign-ups; graph of the largest
    images = [a["src"] for t, a in _tags(html) if t == "img"]
    assert len(images) == 1 + 2 * 3 + 1
    for src in images:
        assert src.startswith("data:image/svg+xml;base64,")
        ET.fromstring(base64.b64decode(src.split(",", 1)[1]))  # well-formed SVG


def test_html_is_self_contained_and_inert(rendered):
    html = rendered[2]
    tags = _tags(html)
    names = [t for t, _ in tags]
    assert not set(names) & {
        "script",
        "iframe",
        "frame",
        "object",
        "embed",
        "link",
        "form",
        "base",
        "svg",
        "video",
        "audio",
    }
    assert names.count("style") == 1  # the report's own stylesheet, nothing injected
    assert [a.get("http-equiv") for t, a in tags if t == "meta" and a.get("http-equiv")] == [
        "Content-Security-Policy"
    ]
    csp = [
        a for t, a in tags if t == "meta" and (a.get("http-equiv") or "").lower() == "content-security-policy"
    ]
    assert csp and "default-src 'none'" in csp[0]["content"] and "img-src data:" in csp[0]["content"]
    for tag, attrs in tags:
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name)
            if name in ("href", "src"):
                assert value.startswith("#") or value.startswith("data:image/svg+xml;base64,"), (tag, value)
    assert len(tags) < 3000  # the hostile text became text, not markup
    assert "<script>document" not in html and "&lt;script&gt;document" in html
    assert not BIDI.search(html)
    assert BIG[:2000] not in html  # 1 MB strings are cut
    assert len(html) < 2_000_000


def test_markdown_is_inert(rendered):
    md = rendered[3]
    assert not BIDI.search(md)
    assert BIG[:2000] not in md
    assert max(len(line) for line in md.splitlines()) < 20_000
    rendered = MarkdownIt("commonmark").enable("table").render(md)
    assert "<a " not in rendered and "<img" not in rendered and "<script" not in rendered
    assert "://" not in md.replace("[:]//", "")  # no bare URL left for GFM to link
    # every table row has as many cells as its header
    for table in re.findall(r"(?m)((?:^\|.*\n)+)", md):
        lines = table.splitlines()
        widths = {len(re.findall(r"(?<!\\)\|", line)) for line in lines}
        assert len(widths) == 1, lines[:3]


def test_redact_replaces_prompts_and_emails(results, rendered):
    directory, _ = results
    html, md = (p.read_text() for p in render(directory, redact=True))
    for text in (html, md.replace("\\", "")):
        assert "[prompt redacted]" in text
        assert "[e-mail domain redacted]" in text
        assert "bob@example.com" not in text and "bob" not in text
        assert "invoice" not in text  # an e-mail domain in the fixture
        assert "redacted copy" in text
    assert "bob\\[at\\]example.com" in rendered[3]  # unredacted: defanged, not hidden


def test_missing_files_are_named_not_fatal(tmp_path: Path):
    directory = tmp_path / "r"
    write_results(directory, hostile=False)
    for name in ("edges.parquet", "daily.parquet", "population.json", "quarantine.parquet"):
        (directory / name).unlink()
    (directory / "signals.parquet").write_bytes(b"not parquet")
    html, md = (p.read_text() for p in render(directory))
    assert "Missing from the results directory" in md
    assert "daily.parquet, edges.parquet, population.json, quarantine.parquet" in md
    assert "signals.parquet: cannot be read as Parquet" in md
    assert "population.json is missing" in md
    # the campaign's own daily list still gives its timeline
    assert "| 2026-04-24 | 1,520 | 60 | 25.3 | n/a |" in md


def test_invalid_campaign_record_is_skipped_with_its_field(tmp_path: Path):
    directory = tmp_path / "r"
    write_results(directory, hostile=False)
    records = json.loads((directory / "campaigns.json").read_text())
    records[1]["accounts"] = "many"
    (directory / "campaigns.json").write_text(json.dumps(records))
    md = render(directory)[1].read_text()
    assert "campaigns.json: record 1 (campaign\\_id 'c2') skipped: field accounts" in md
    assert "## Campaign 1: c1" in md and "Campaign 2" not in md


def test_empty_directory_still_renders(tmp_path: Path):
    md = render(tmp_path)[1].read_text()
    assert "No distillation campaign was found" in md
    assert "accounts.parquet" in md and "campaigns.json" in md and "run.json" in md
    with pytest.raises(FileNotFoundError):
        render(tmp_path / "absent")


def test_targeted_capabilities_need_share_and_lift():
    population = {"chat": 0.6, "software_engineering": 0.3}
    assert targeted({"chat": 0.7, "software_engineering": 0.3}, population) == [
        "chat",
        "software engineering",
    ]
    assert targeted({"chat": 0.5, "math": 0.3, "software_engineering": 0.2}, population) == ["math"]


def test_cli_rerenders(results, tmp_path: Path):
    directory, _ = results
    copy = tmp_path / "copy"
    shutil.copytree(directory, copy)
    out = CliRunner().invoke(app, ["report", str(copy), "--redact"])
    assert out.exit_code == 0, out.output
    assert "\\[prompt redacted\\]" in (copy / "report.md").read_text()
    first = (copy / "report.html").read_bytes()
    assert CliRunner().invoke(app, ["report", str(copy), "--redact"]).exit_code == 0
    assert (copy / "report.html").read_bytes() == first  # same results, same file
    bad = CliRunner().invoke(app, ["report", str(tmp_path / "nope")])
    assert bad.exit_code == 2


def test_row_counts_per_input_table_and_mismatch_warning(tmp_path: Path):
    directory = tmp_path / "r"
    write_results(directory, hostile=False)
    run = {
        "run_id": "r1",
        "counts": {
            "exchanges": {"read": 100, "accepted": 95, "quarantined": 5, "by_reason": {"bad_ip": 5}},
            "accounts": {"read": 10, "accepted": 8, "quarantined": 1, "by_reason": {"duplicate": 1}},
        },
    }
    (directory / "run.json").write_text(json.dumps(run))
    md = render(directory)[1].read_text()
    assert "| exchanges | 100 | 95 | 5 |" in md and "| accounts | 10 | 8 | 1 |" in md
    assert "Exchanges: rows read (100) = rows scored (95) \\+ rows quarantined (5)." in md
    assert (
        "**Warning:** Accounts: rows read (10) do not equal rows scored (8) \\+ rows quarantined (1); 1 rows"
        in md
    )
    assert "| accounts | duplicate | 1 |" in md


def test_signup_times_from_the_staged_accounts_input(tmp_path: Path):
    """Without created_at in the results, the accounts ingest staged in DIR/ingest serve."""
    directory = tmp_path / "r"
    write_results(directory, hostile=False)
    accounts = pq.read_table(directory / "accounts.parquet")
    (directory / "ingest").mkdir()
    pq.write_table(accounts.select(["account_id", "created_at"]), directory / "ingest" / "accounts.parquet")
    pq.write_table(accounts.drop(["created_at"]), directory / "accounts.parquet")
    md = render(directory)[1].read_text()
    assert "**Sign-ups per hour** (from " in md and "ingest/accounts.parquet" in md
    assert "| 2026-04-21 22:00 UTC | 22 |" in md
    (directory / "ingest" / "accounts.parquet").unlink()
    md = render(directory)[1].read_text()
    assert "No sign-up histogram" in md


def test_signup_bins_window_ignores_stragglers():
    burst = [datetime(2026, 5, 4, 9, tzinfo=UTC) + timedelta(minutes=3 * i) for i in range(40)]
    stragglers = [datetime(2024, 1, 1, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC)]
    b = signup_bins(burst + stragglers)
    assert b.unit == "hour"
    assert (b.before, b.after) == (1, 1)
    assert sum(n for _, n in b.bins) == 40
    assert max(n for _, n in b.bins) == 20
    assert len(b.bins) <= 4 * 24
    spread = [datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=i) for i in range(200)]
    assert signup_bins(spread).unit == "week"
    assert signup_bins([]).bins == []


def test_messy_but_valid_results_render(tmp_path: Path):
    """Null scores, days as text, a campaign with no exchanges, naive timestamps: shown, not fatal."""
    directory = tmp_path / "r"
    write_results(directory, hostile=False)
    accounts = pq.read_table(directory / "accounts.parquet")
    scores = pa.array([None] * accounts.num_rows, pa.float64())
    pq.write_table(
        accounts.set_column(accounts.schema.get_field_index("score"), "score", scores),
        directory / "accounts.parquet",
    )
    daily = pq.read_table(directory / "daily.parquet")
    days = pa.array([d.isoformat() for d in daily["day"].to_pylist()])
    pq.write_table(daily.set_column(0, "day", days), directory / "daily.parquet")
    records = json.loads((directory / "campaigns.json").read_text())
    records[1].update(
        exchanges=0, first_seen="2026-04-24T00:00:00", last_seen="2026-04-24T00:00:00", capabilities={}
    )
    (directory / "campaigns.json").write_text(json.dumps(records))
    md = render(directory)[1].read_text()
    assert "| mean account score | n/a |" in md
    assert "| 2026-04-24 | 1,520 | 60 | 25.3 | 4,100 |" in md
    assert "0 exchanges through 12 accounts on 24 April 2026." in md


def test_traits_say_what_stands_out(rendered):
    _, fig, _, md = rendered
    said = traits(fig["c1"], {"software_engineering": 0.2, "agentic_reasoning": 0.05, "chat": 0.6}, 0.04)
    assert said == [
        "60 accounts were registered within 3.0 hours.",
        "80.0% of its accounts use disposable e-mail domains.",
        "48 accounts pay with an instrument another member also uses (4 instruments in all).",
        "Its exchanges come 91.0% from datacenters and 40.0% from VPN or proxy services, not from consumer networks.",
        "60 accounts share 6 network prefixes (140 addresses).",
        "62.0% of its exchanges ask for step-by-step reasoning, against 4.0% in the baseline.",
        "55.0% of its exchanges are software engineering, against 20.0% in the baseline.",
        "35.0% of its exchanges are agentic reasoning, against 5.0% in the baseline.",
    ]
    assert "- 60 accounts were registered within 3.0 hours." in md
    # an ordinary-looking record says nothing; a sign-up burst is found in the times themselves
    plain = fig["c1"].model_copy(
        update={
            "registration": Registration(),
            "infrastructure": Infrastructure(addresses=500, prefixes=400),
            "cot_share": 0.0,
            "capabilities": {"chat": 0.6},
        }
    )
    assert traits(plain, {"chat": 0.6}, 0.04) == []
    day = datetime(2026, 5, 4, tzinfo=UTC)
    times = [day + timedelta(minutes=10 * i) for i in range(30)] + [
        day - timedelta(days=300 + i) for i in range(10)
    ]
    assert densest_day(times) == (30, day)
    assert traits(plain, {"chat": 0.6}, 0.04, times) == [
        "30 of its 40 accounts with a sign-up time were registered within 24 hours from 2026-05-04 00:00 UTC."
    ]
