from datetime import timedelta

import pyarrow.parquet as pq

from distillwatch.campaigns.model import read_campaigns
from distillwatch.intel.track import match_campaigns, read_fingerprints, track_results
from tests.intel.intel_factory import T0, make_campaign, write_results

OTHER = dict(
    prefixes=("192.0.2.0/24",),
    ipv6=(),
    asns=("64511",),
    templates=("1111111111111111",),
    domains=("other.example",),
)


def test_first_scan_records_new_campaigns(con, tmp_path):
    d = write_results(tmp_path / "r1", [make_campaign("C1")], run_id="run1")
    mapping = track_results(d, con)
    assert mapping == {"C1": "C1"}
    (c,) = read_campaigns(d / "campaigns.json")
    assert c.history.status == "new" and c.history.scans == 1 and c.history.first_run_id == "run1"
    assert c.attribution is not None and c.attribution.actor is None
    assert con.execute("SELECT campaign_id, run_id, scan_id FROM intel_campaign_runs").fetchall() == [
        ("C1", "run1", "C1")
    ]
    assert set(read_fingerprints(d)) == {"C1"}


def test_returning_campaign_keeps_its_id_and_reports_growth_and_movement(con, tmp_path):
    track_results(write_results(tmp_path / "r1", [make_campaign("C1")], run_id="run1"), con)
    later = T0 + timedelta(days=30)
    grown = make_campaign(
        "C5",  # the new scan numbers campaigns afresh
        accounts=300,
        exchanges=7800,
        prefixes=("203.0.113.0/24", "198.51.100.0/24", "100.64.7.0/24"),
        asns=("64500", "64501"),
        start=later,
    )
    fresh = make_campaign("C1", **OTHER, start=later)  # an unrelated campaign that got the old number
    d = write_results(tmp_path / "r2", [grown, fresh], run_id="run2")
    mapping = track_results(d, con)
    assert mapping["C5"] == "C1"
    assert mapping["C1"] not in ("C1", "C5")  # the unrelated one must not inherit the old id
    ret, new = read_campaigns(d / "campaigns.json")
    assert ret.campaign_id == "C1" and ret.history.status == "returning"
    assert ret.history.scans == 2 and ret.history.first_seen == T0 and ret.history.previous_run_id == "run1"
    assert ret.history.account_growth == 3.0
    assert ret.history.new_prefixes == ["100.64.7.0/24"] and ret.history.new_asns == ["64501"]
    assert "Returning campaign" in ret.history.summary and "x3.00" in ret.history.summary
    assert new.history.status == "new"

    acc = pq.read_table(d / "accounts.parquet").to_pylist()
    by_old = {r["account_id"].split("-acct-")[0]: r for r in acc if r["campaign_id"]}
    assert by_old["C5"]["campaign_id"] == "C1" and "campaign C1 " in by_old["C5"]["reasons"]
    assert (
        by_old["C1"]["campaign_id"] == mapping["C1"]
        and f"campaign {mapping['C1']} " in by_old["C1"]["reasons"]
    )
    assert sorted(pq.read_table(d / "daily.parquet")["campaign_id"].to_pylist()) == sorted(mapping.values())
    # the benign rows are untouched
    assert sum(r["campaign_id"] is None for r in acc) == 20


def test_swapped_numbers_do_not_chain(con, tmp_path):
    a, b = make_campaign("C1"), make_campaign("C2", **OTHER)
    track_results(write_results(tmp_path / "r1", [a, b], run_id="run1"), con)
    # next scan numbers them the other way round
    d = write_results(tmp_path / "r2", [make_campaign("C1", **OTHER), make_campaign("C2")], run_id="run2")
    assert track_results(d, con) == {"C1": "C2", "C2": "C1"}
    reasons = {r["account_id"]: r["reasons"] for r in pq.read_table(d / "accounts.parquet").to_pylist()}
    assert reasons["C1-acct-0"] == "member of campaign C2 (shares templates)"
    assert reasons["C2-acct-0"] == "member of campaign C1 (shares templates)"


def test_rerunning_the_same_run_is_idempotent(con, tmp_path):
    camps = [make_campaign("C1")]
    match_campaigns(con, camps, "run1")
    again = match_campaigns(con, camps, "run1")
    assert again[0].history.status == "new"
    assert con.execute("SELECT count(*) FROM intel_campaign_runs").fetchone() == (1,)


def test_only_timing_and_capabilities_alike_is_not_a_match(con):
    match_campaigns(con, [make_campaign("C1")], "run1")
    # same capability mix and pace, but nothing operator-specific in common
    (c,) = match_campaigns(con, [make_campaign("C3", **OTHER)], "run2")
    assert c.campaign_id == "C3" and c.history.status == "new"
