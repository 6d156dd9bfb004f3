"""The distributions detection results depend on: campaign volume, benign heavy tail, trap groups."""

from __future__ import annotations

from datetime import timedelta

import duckdb
import numpy as np
import pytest

from distillwatch.simulate.config import preset, tactics
from distillwatch.simulate.network import PREFIXES


def _con(run) -> duckdb.DuckDBPyConnection:  # noqa: ANN001 - a conftest Run
    con = duckdb.connect()
    con.register("e", run.exchanges)
    con.register("l", run.labels)
    con.register("a", run.accounts)
    con.execute("create view x as select e.*, l.is_attack, l.campaign_id, l.group as grp from e join l using (account_id)")
    return con


def test_reported_campaign_volume_matches_the_report(reported) -> None:
    cfg = preset("reported-campaign", scale=0.002)
    camp = cfg.campaigns[0]
    con = _con(reported)
    accounts, exchanges, med = con.execute(
        """with d as (select account_id, ts::date as day, count(*) as n from x where is_attack group by 1, 2)
           select count(distinct account_id), sum(n), median(n) from d"""
    ).fetchone()
    assert accounts == camp.accounts == round(24_975 * 0.002)
    assert abs(exchanges - camp.exchanges) / camp.exchanges < 0.03
    assert 23 <= med <= 29, f"median exchanges per account-day {med}, the report says about 26"
    first, last = con.execute("select min(ts)::date, max(ts)::date from x where is_attack").fetchone()
    assert (str(first), str(last)) == ("2026-04-22", "2026-06-05")
    benign = con.execute("select count(*) from x where not is_attack").fetchone()[0]
    assert benign >= 2 * exchanges, "benign traffic outweighs the campaign (60M vs 28.8M at full scale)"
    # At full scale at least 250,000 benign accounts send traffic (some accounts stay dormant).
    active = con.execute("select count(distinct account_id) from x where grp in ('ordinary', 'vpn_relay')").fetchone()[0]
    labelled = con.execute("select count(*) from l where l.group in ('ordinary', 'vpn_relay')").fetchone()[0]
    b = preset("reported-campaign").benign
    traps = b.universities * b.university_accounts + b.coding_companies * b.coding_accounts + b.resellers * b.reseller_accounts
    assert active / labelled * b.accounts + traps > 250_000


def test_benign_volume_is_heavy_tailed(reported) -> None:
    per = _con(reported).execute(
        "select count(*) from x where grp = 'ordinary' group by account_id"
    ).fetchnumpy()["count_star()"]
    per = np.sort(per)[::-1]
    assert np.median(per) * 30 <= per[0], "a few accounts send far more than the typical one"
    top = per[: max(1, len(per) // 100)].sum() / per.sum()
    assert top > 0.15, f"top 1% of accounts send {top:.0%} of ordinary traffic"
    assert np.median(per) < 100


def test_daily_rhythms(reported) -> None:
    con = _con(reported)
    home_asns = [p.asn for p in PREFIXES if p.kind in ("residential", "mobile") and p.country == "US"]
    hours = con.execute(
        """select hour(ts) h, count(*) n from x join a using (account_id)
           where grp = 'ordinary' and a.country = 'US' and list_contains(?, asn)
           group by 1 order by 1""",
        [home_asns],
    ).fetchnumpy()["n"]
    assert hours.max() > 2.5 * hours.min(), "people at home follow day and night"
    flat = con.execute("select hour(ts) h, count(*) n from x where is_attack group by 1").fetchnumpy()["n"]
    assert flat.max() < 1.3 * flat.min(), "an unevasive campaign runs flat around the clock"
    wk = con.execute(
        """select dayofweek(ts) in (0, 6) as weekend, count(*) / count(distinct ts::date) from x
           where grp = 'ordinary' group by 1 order by 1"""
    ).fetchall()
    assert wk[0][1] > 1.15 * wk[1][1], "weekdays busier than weekends"


BENIGN_GROUPS = {"ordinary", "university", "coding_agents", "batch_eval", "vpn_relay", "reseller"}


@pytest.mark.parametrize("name", ["demo", "reported", "reported_strong", "earlier"])
def test_trap_groups_present_in_every_preset(name: str, request: pytest.FixtureRequest) -> None:
    run = request.getfixturevalue(name)
    groups = set(_con(run).execute("select distinct grp from x").fetchnumpy()["grp"])
    assert BENIGN_GROUPS <= groups


def _kinds() -> dict[int, set[str]]:
    out: dict[int, set[str]] = {}
    for p in PREFIXES:
        out.setdefault(p.asn, set()).add(p.kind)
    return out


def test_trap_groups_behave_like_their_real_counterparts(reported) -> None:
    con = _con(reported)
    kinds = _kinds()
    # University: hundreds of accounts behind a few NAT addresses, registered in a burst, deadline spikes
    n_acc, n_ip = con.execute("select count(distinct account_id), count(distinct ip) from x where grp = 'university'").fetchone()
    assert n_acc >= 90 and n_ip <= 4
    burst = con.execute(
        """select avg((created_at < (select min(created_at) from a join l using (account_id) where l.group = 'university')
                         + interval 3 day)::int)
           from a join l using (account_id) where l.group = 'university'"""
    ).fetchone()[0]
    assert burst > 0.7, "most students sign up in the first days of term"
    daily = con.execute("select count(*) n from x where grp = 'university' group by ts::date").fetchnumpy()["n"]
    assert daily.max() > 1.8 * np.median(daily), "deadline spikes"
    # Coding agents: one org, one egress range, tools in most requests, business days
    rows = con.execute(
        """select org_id, count(distinct account_id), count(distinct ip), avg((n_tools > 0)::int),
                  avg((dayofweek(ts) between 1 and 5)::int) from x where grp = 'coding_agents' group by 1"""
    ).fetchall()
    assert len(rows) >= 2
    for org, accounts, ips, tools, weekdays in rows:
        assert org is not None and accounts >= 5 and ips <= 6 and tools > 0.8 and weekdays > 0.9
    # Batch evaluation: thousands of prompts from a cloud address within a few hours
    runs = con.execute(
        """select account_id, ts::date, count(*), epoch(max(ts) - min(ts)) / 3600, list(distinct asn)
           from x where grp = 'batch_eval' group by 1, 2"""
    ).fetchall()
    assert runs
    for _, _, n, hours, asns in runs:
        assert n >= 1000 and hours <= 6
        assert all(kinds[a] == {"datacenter"} for a in asns)
    # VPN and relay users exit from VPN ranges; resellers share one org and a few gateway addresses
    vpn_asns = con.execute("select distinct asn from x where grp = 'vpn_relay'").fetchnumpy()["asn"]
    assert all(kinds[int(a)] == {"vpn"} for a in vpn_asns)
    for _, accounts, ips in con.execute(
        "select org_id, count(distinct account_id), count(distinct ip) from x where grp = 'reseller' group by 1"
    ).fetchall():
        assert accounts >= 20 and ips <= 8


def test_earlier_campaigns_sizes(earlier) -> None:
    cfg = preset("earlier-campaigns", scale=0.003, evasion="moderate")
    got = dict(_con(earlier).execute("select campaign_id, count(*) from x where is_attack group by 1").fetchall())
    for c in cfg.campaigns:
        assert abs(got[c.campaign_id] - c.exchanges) / c.exchanges < 0.06, (c.campaign_id, got[c.campaign_id], c.exchanges)
    full = preset("earlier-campaigns")
    assert [c.exchanges for c in full.campaigns] == [150_000, 3_400_000, 13_000_000]
    assert 23_000 <= sum(c.accounts for c in full.campaigns) <= 25_000


def test_campaign_pivots_to_the_new_model_within_a_day(reported) -> None:
    cfg = preset("reported-campaign", scale=0.002)
    after = cfg.models[0].released + timedelta(days=1)
    shares = dict(
        _con(reported).execute(
            "select is_attack, avg((model = ?)::int) from x where ts >= ? group by 1", [cfg.models[0].name, after]
        ).fetchall()
    )
    assert shares[True] > 0.95 and shares[False] < 0.7


def test_strong_evasion_turns_on_the_hard_tactics() -> None:
    t = tactics("strong", countries=["US"], operator_utc_offset=8)
    assert t["infrastructure"].kind == "residential" and t["infrastructure"].rotation == "sticky"
    assert t["registration"].pattern == "aged" and t["registration"].accounts_per_payment == 1
    assert t["timing"].pattern == "human" and t["prompting"].paraphrase == "full"
    assert t["mixing"].genuine_share >= 0.3


def test_strong_campaign_uses_residential_sticky_exits(reported_strong) -> None:
    kinds = _kinds()
    con = _con(reported_strong)
    asns = con.execute("select distinct asn from x where is_attack").fetchnumpy()["asn"]
    assert all(kinds[int(a)] <= {"residential", "mobile"} for a in asns)
    per_day = con.execute(
        "select count(distinct ip) from x where is_attack group by account_id, ts::date"
    ).fetchnumpy()["count(DISTINCT ip)"]
    assert np.median(per_day) == 1, "one sticky exit per account and day"
