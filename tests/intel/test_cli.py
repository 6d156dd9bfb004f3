import json
from datetime import timedelta

import stix2
from typer.testing import CliRunner

from distillwatch.campaigns.model import read_campaigns
from distillwatch.cli.main import app
from tests.intel.intel_factory import T0, make_campaign, write_results

runner = CliRunner()


def run(*args: str):
    res = runner.invoke(app, list(args))
    assert res.exit_code == 0, res.output
    return res.output


def test_actor_workflow_attributes_a_returning_operator(tmp_path):
    db = str(tmp_path / "s.duckdb")
    first = write_results(tmp_path / "r1", [make_campaign("C1")], run_id="run1")
    run("intel", "track", "--results", str(first), "--db", db)
    run("actors", "add", "Lab X", "--description", "seen in spring", "--db", db)
    out = run("actors", "label", "C1", "Lab X", "--db", db)
    assert "labelled" in out
    listing = run("actors", "list", "--db", db)
    assert "Lab X" in listing and "seen in spring" in listing

    # Months later the same operator comes back with new accounts, one new prefix and a new
    # template; the scan numbers it C1 again by chance, and a second, unrelated campaign appears.
    later = make_campaign(
        "C1",
        accounts=150,
        start=T0 + timedelta(days=60),
        prefixes=("203.0.113.0/24", "100.64.9.0/24"),
        templates=("a1b2c3d4e5f60718", "0badc0ffee123456", "7777777777777777"),
    )
    other = make_campaign(
        "C2",
        prefixes=("192.0.2.0/24",),
        ipv6=(),
        asns=("64999",),
        templates=("1234",),
        domains=("elsewhere.example",),
        start=T0 + timedelta(days=60),
    )
    second = write_results(tmp_path / "r2", [later, other], run_id="run2")
    run("intel", "track", "--results", str(second), "--db", db)
    back, new = read_campaigns(second / "campaigns.json")
    assert back.campaign_id == "C1" and back.history.status == "returning"
    assert back.attribution.actor == "Lab X" and back.attribution.labelled
    assert new.attribution.actor is None and "Unattributed" in new.attribution.explanation

    # A third scan sees the operator under a new number: attributed by similarity, not label.
    third_c = later.model_copy(update={"campaign_id": "C9", "first_seen": T0 + timedelta(days=90)})
    third = write_results(tmp_path / "r3", [third_c], run_id="run3")
    run("intel", "track", "--results", str(third), "--db", db)
    (c,) = read_campaigns(third / "campaigns.json")
    assert c.campaign_id == "C1" and c.history.scans == 3

    # A fresh store knows no history; an actor added from results attributes by similarity.
    db2 = str(tmp_path / "s2.duckdb")
    run("actors", "add", "Lab Y", "--from-results", str(first), "--campaign", "C1", "--db", db2)
    fresh = write_results(tmp_path / "r4", [third_c], run_id="run4")
    run("intel", "track", "--results", str(fresh), "--db", db2)
    (c,) = read_campaigns(fresh / "campaigns.json")
    assert c.campaign_id == "C9" and c.history.status == "new"
    assert c.attribution.actor == "Lab Y" and not c.attribution.labelled
    assert c.attribution.confidence >= 0.6 and "Most likely Lab Y" in c.attribution.explanation
    assert set(c.attribution.candidates[0].similarity) >= {"templates", "infrastructure", "registration"}
    # the threshold is configurable: at 0.99 the same campaign is unattributed
    out = run("actors", "attribute", "--results", str(fresh), "--threshold", "0.99", "--db", db2)
    assert "unattributed" in out
    (c,) = read_campaigns(fresh / "campaigns.json")
    assert c.attribution.actor is None and c.attribution.candidates[0].actor == "Lab Y"


def test_export_import_commands(tmp_path):
    db = str(tmp_path / "s.duckdb")
    d = write_results(tmp_path / "r", [make_campaign("C1")], run_id="run1")
    out = tmp_path / "bundle.json"
    text = run(
        "intel",
        "export",
        "--results",
        str(d),
        "--out",
        str(out),
        "--tlp",
        "green",
        "--producer",
        "Provider A",
    )
    assert "TLP:GREEN" in text
    bundle = stix2.parse(out.read_text(), allow_custom=True)
    assert any(o.type == "campaign" for o in bundle.objects)
    text = run("intel", "import", str(out), "--partner", "Provider A", "--db", db)
    assert "ipv4-prefix" in text and "values stored" in text


def test_user_errors_are_one_line_messages(tmp_path):
    db = str(tmp_path / "s.duckdb")
    res = runner.invoke(app, ["actors", "label", "C404", "Nobody", "--db", db])
    assert res.exit_code == 2 and "not in the store's history" in res.output
    res = runner.invoke(
        app, ["intel", "export", "--results", str(tmp_path), "--out", str(tmp_path / "b.json")]
    )
    assert res.exit_code == 2 and "no campaigns.json" in res.output
    res = runner.invoke(app, ["actors", "add", "", "--db", db])
    assert res.exit_code == 2 and "actor name" in res.output
    d = write_results(tmp_path / "r", [make_campaign("C1")])
    res = runner.invoke(
        app, ["intel", "export", "--results", str(d), "--out", str(tmp_path / "b.json"), "--tlp", "mauve"]
    )
    assert res.exit_code == 2 and "--tlp must be one of" in res.output
    assert not json.loads((d / "campaigns.json").read_text())[0].get("history")
