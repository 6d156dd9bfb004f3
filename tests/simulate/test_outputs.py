"""The three files follow the contract, and the labels are consistent with the traffic."""

from __future__ import annotations

import ipaddress

import numpy as np
import pyarrow.compute as pc
import pytest

from distillwatch.contract import ACCOUNTS_SCHEMA, EXCHANGES_SCHEMA, LABELS_SCHEMA
from distillwatch.simulate.network import PREFIXES

RUNS = ["demo", "reported", "reported_strong", "earlier"]


@pytest.fixture(params=RUNS)
def any_run(request: pytest.FixtureRequest):  # noqa: ANN201 - a conftest Run
    return request.getfixturevalue(request.param)


def test_schemas_are_the_contract(any_run) -> None:
    assert any_run.exchanges.schema.equals(EXCHANGES_SCHEMA)
    assert any_run.accounts.schema.equals(ACCOUNTS_SCHEMA)
    assert any_run.labels.schema.equals(LABELS_SCHEMA)


def test_every_exchange_account_is_labelled_and_recorded(any_run) -> None:
    ex_accounts = set(pc.unique(any_run.exchanges["account_id"]).to_pylist())
    labels = any_run.labels.to_pydict()
    labelled = dict(zip(labels["account_id"], labels["group"], strict=True))
    assert len(labelled) == any_run.labels.num_rows, "one label row per account"
    assert ex_accounts <= set(labelled)
    recorded = set(any_run.accounts["account_id"].to_pylist())
    missing = ex_accounts - recorded
    # Only a few ordinary customers lack a record (documented); never an attacker or a trap group.
    assert {labelled[a] for a in missing} <= {"ordinary"}
    assert len(missing) <= 0.03 * len(ex_accounts)
    assert any_run.accounts.num_rows == len(recorded)


def test_campaign_labels_are_consistent(any_run) -> None:
    lab = any_run.labels.to_pydict()
    for is_attack, campaign, group in zip(lab["is_attack"], lab["campaign_id"], lab["group"], strict=True):
        assert is_attack == (campaign is not None) == (group == "campaign")
    summary = any_run.summary
    names = {c for c in lab["campaign_id"] if c}
    assert names == set(summary.accounts_by_campaign)
    for name, n in summary.accounts_by_campaign.items():
        assert lab["campaign_id"].count(name) == n


def test_rows_are_time_ordered_with_unique_request_ids(any_run) -> None:
    ex = any_run.exchanges
    ts = ex["ts"].cast("int64").to_numpy()
    assert (np.diff(ts) >= 0).all()
    # no pile-up at day boundaries (conversations near midnight start earlier rather than being clipped)
    _, repeats = np.unique(ts, return_counts=True)
    assert repeats.max() <= 3
    assert pc.count_distinct(ex["request_id"]).as_py() == ex.num_rows
    assert ex.num_rows == any_run.summary.exchanges


def test_addresses_are_canonical_and_geolocated(demo) -> None:
    ex = demo.exchanges
    nets = [(ipaddress.ip_network(p.cidr), p.asn, p.country) for p in PREFIXES]
    sample = ex.take(np.random.default_rng(0).choice(ex.num_rows, 3000, replace=False)).to_pydict()
    for ip, asn, country in zip(sample["ip"], sample["asn"], sample["country"], strict=True):
        addr = ipaddress.ip_address(ip)
        assert str(addr) == ip, f"{ip} is not in canonical form"
        owners = [(a, c) for net, a, c in nets if addr.version == net.version and addr in net]
        assert (asn, country) in owners, f"{ip} geolocates to {owners}, not {(asn, country)}"
    assert any(":" in ip for ip in pc.unique(ex["ip"]).to_pylist()), "IPv6 clients exist"


def test_conversations_group_turns_of_one_account(demo) -> None:
    ex = demo.exchanges
    per_conv = ex.group_by("conversation_id").aggregate([("account_id", "count_distinct"), ("ts", "count")])
    assert pc.max(per_conv["account_id_count_distinct"]).as_py() == 1
    assert pc.max(per_conv["ts_count"]).as_py() > 3, "multi-turn conversations exist"
