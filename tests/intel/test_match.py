from datetime import UTC, datetime

import ibis
import pyarrow as pa
import pytest
import stix2

from distillwatch.intel.match import match_accounts, match_addresses
from distillwatch.intel.stix_import import import_bundle

NOW = datetime(2026, 6, 10, tzinfo=UTC)


@pytest.fixture
def partner_store(con, tmp_path):
    ident = stix2.Identity(name="Provider A", identity_class="organization")
    common = {"created_by_ref": ident.id, "valid_from": "2026-01-01T00:00:00Z"}
    objs = [
        ident,
        stix2.Indicator(
            pattern="[ipv4-addr:value ISSUBSET '203.0.113.0/24']",
            pattern_type="stix",
            confidence=100,
            **common,
        ),
        stix2.Indicator(
            pattern="[ipv6-addr:value ISSUBSET '2001:db8:1::/48']",
            pattern_type="stix",
            confidence=100,
            **common,
        ),
        stix2.Indicator(
            pattern="[autonomous-system:number = 64500]", pattern_type="stix", confidence=100, **common
        ),
        stix2.Indicator(
            pattern="[x-distillwatch-prompt-template:hash = '-4242']",
            pattern_type="stix",
            confidence=100,
            **common,
        ),
        stix2.Indicator(
            pattern="[email-addr:value MATCHES '@mailbox\\\\.example$']", pattern_type="stix", **common
        ),
        stix2.Indicator(
            pattern="[ipv4-addr:value = '198.51.100.9']",
            pattern_type="stix",
            valid_until="2026-07-01T00:00:00Z",
            **common,
        ),
    ]
    path = tmp_path / "a.json"
    path.write_text(stix2.Bundle(objects=objs).serialize())
    import_bundle(con, path, now=NOW)
    return con


def test_address_matching_handles_both_families_and_nesting(partner_store):
    from distillwatch.intel.match import active_indicators

    ind = active_indicators(partner_store, NOW)
    ips = pa.array(
        [
            "203.0.113.7",
            "203.0.114.7",
            "2001:db8:1:ffff::1",
            "2001:db8:2::1",
            "198.51.100.9",
            "not-an-ip",
            None,
        ]
    )
    got = match_addresses(ips, ind)
    assert sorted(zip(got["ip"].to_pylist(), got["value"].to_pylist(), strict=True)) == [
        ("198.51.100.9", "198.51.100.9/32"),
        ("2001:db8:1:ffff::1", "2001:db8:1::/48"),
        ("203.0.113.7", "203.0.113.0/24"),
    ]
    # after its valid_until the single-address indicator no longer matches
    later = active_indicators(partner_store, datetime(2026, 8, 1, tzinfo=UTC))
    assert "198.51.100.9" not in match_addresses(ips, later)["ip"].to_pylist()


def test_accounts_get_values_and_reasons_with_the_partner_name(partner_store):
    ex = ibis.memtable(
        pa.table(
            {
                "account_id": ["a1"] * 4 + ["a2"] * 4 + ["a3"] * 2 + ["a4"] * 3,
                "ip": ["203.0.113.1"] * 4
                + ["2001:db8:1::5", "2001:db8:1::6", "192.0.2.1", "192.0.2.2"]
                + ["192.0.2.3"] * 2
                + ["192.0.2.4"] * 3,
                "asn": pa.array([64500] * 4 + [None] * 4 + [64500, 64501] + [64501] * 3, pa.int64()),
            }
        )
    )
    facts = ibis.memtable(
        pa.table({"account_id": ["a5", "a5", "a4"], "template_hash": ["-4242", "17", "18"]})
    )
    recs = ibis.memtable(
        pa.table({"account_id": ["a6", "a4"], "email_domain": ["mailbox.example", "gmail.com"]})
    )
    got = {r["account_id"]: r for r in match_accounts(partner_store, ex, facts, recs, now=NOW).to_pylist()}
    assert set(got) == {"a1", "a2", "a3", "a5", "a6"}  # a4 matches nothing
    assert got["a1"]["value"] == pytest.approx(1.0)  # all traffic from the reported prefix
    assert got["a2"]["value"] == pytest.approx(0.5)  # half of it
    assert got["a3"]["value"] == pytest.approx(0.4 * 0.5)  # weak ASN evidence, half of its traffic
    assert got["a5"]["value"] == pytest.approx(0.5)
    assert got["a6"]["value"] == pytest.approx(0.6 * 0.8)  # e-mail domain, default confidence 80
    assert got["a1"]["partners"] == "Provider A"
    assert (
        "partner Provider A reported ipv4-prefix 203.0.113.0/24 (100% of its exchanges)"
        in got["a1"]["reason"]
    )
    assert "asn 64500" in got["a1"]["reason"]
    assert "(50% of its sampled prompts)" in got["a5"]["reason"]
    assert "(its e-mail domain)" in got["a6"]["reason"]


def test_no_indicators_no_matches(con):
    ex = ibis.memtable(pa.table({"account_id": ["a"], "ip": ["203.0.113.1"]}))
    assert match_accounts(con, ex).num_rows == 0


def test_partner_signal_aligns_with_the_feature_rows(partner_store):
    import numpy as np

    from distillwatch.signals.base import REGISTRY, SignalContext
    from distillwatch.signals.partner_indicators import PartnerIndicators

    ex = ibis.memtable(
        pa.table({"account_id": ["a", "a", "b"], "ip": ["203.0.113.1", "192.0.2.1", "192.0.2.2"]})
    )
    features = pa.table({"account_id": ["b", "a", "c"]})
    ctx = SignalContext(features=features, hours=np.zeros((3, 24)), population={}, ex=ex, store=partner_store)
    sig = REGISTRY[PartnerIndicators.meta.id]
    res = sig.compute(ctx, sig.meta.params)
    assert res.value.tolist() == pytest.approx([0.0, 0.5, 0.0])
    assert res.reason.to_pylist()[0] is None and "Provider A" in res.reason.to_pylist()[1]
    # without a store (a scan run with no --db) the signal is silent, not an error
    ctx.store = None
    assert sig.compute(ctx, sig.meta.params).value.tolist() == [0.0, 0.0, 0.0]


def test_campaign_keys_link_only_strong_majority_matches():
    from distillwatch.intel.match import campaign_keys

    details = pa.table(
        {
            "account_id": ["a", "b", "c", "d", "e"],
            "partner": ["P"] * 5,
            "kind": ["ipv4-prefix", "template-hash", "ipv4-prefix", "asn", "ipv4-prefix"],
            "campaign_ref": ["campaign--1", "campaign--1", "campaign--1", "campaign--1", ""],
            "hits": [9, 5, 2, 10, 10],
            "total": [10, 10, 10, 10, 10],
        }
    )
    keys = campaign_keys(details, min_coverage=0.5).to_pylist()
    # c: too little of its traffic; d: an ASN is no link; e: the indicator names no campaign
    assert keys == [
        {"account_id": "a", "key": "partner:P|campaign--1"},
        {"account_id": "b", "key": "partner:P|campaign--1"},
    ]


def test_partner_campaigns_sharing_a_range_or_template_are_one_group(con):
    from distillwatch.intel.match import active_indicators

    rows = [
        ("P", "i1", "ipv4-prefix", "203.0.113.0/24", "campaign--a"),
        ("P", "i2", "ipv4-prefix", "203.0.113.0/24", "campaign--b"),  # b shares a range with a
        ("P", "i3", "template-hash", "7", "campaign--c"),
        ("P", "i4", "template-hash", "7", "campaign--b"),  # c shares a template with b
        ("P", "i5", "ipv4-prefix", "192.0.2.0/24", "campaign--d"),  # d shares nothing
        ("P", "i6", "asn", "64500", "campaign--d"),
        ("P", "i7", "asn", "64500", "campaign--e"),  # an ASN in common is no evidence of one operation
    ]
    for partner, iid, kind, value, ref in rows:
        con.execute(
            "INSERT INTO intel_partner_indicators (partner, indicator_id, kind, value, imported_at, campaign_ref) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [partner, iid, kind, value, NOW, ref],
        )
    got = {(r["kind"], r["value"], r["campaign_ref"]) for r in active_indicators(con, NOW).to_pylist()}
    assert got == {
        ("ipv4-prefix", "203.0.113.0/24", "campaign--a"),
        ("template-hash", "7", "campaign--a"),
        ("ipv4-prefix", "192.0.2.0/24", "campaign--d"),
        ("asn", "64500", "campaign--d"),
        ("asn", "64500", "campaign--e"),
    }
