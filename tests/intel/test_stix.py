import json
from collections import Counter
from datetime import UTC, datetime

import pytest
import stix2

from distillwatch.campaigns.model import Indicator
from distillwatch.intel.stix_export import TLP2_IDS, export_results, indicator_pattern
from distillwatch.intel.stix_import import import_bundle
from distillwatch.intel.track import track_results
from tests.intel.intel_factory import make_campaign, write_results

NOW = datetime(2026, 6, 10, tzinfo=UTC)


@pytest.fixture
def results(tmp_path, con):
    camp = make_campaign("C1", domains=("mailbox.example", "gmail.com"))
    d = write_results(
        tmp_path / "r",
        [camp, make_campaign("C2", prefixes=("192.0.2.0/24",), ipv6=(), templates=("9999",))],
        run_id="run1",
    )
    track_results(d, con)
    return d


def _objects(path):
    bundle = stix2.parse(path.read_text(), allow_custom=True)
    return bundle, Counter(o.type for o in bundle.objects)


def test_export_parses_back_and_has_every_object_type(results, tmp_path):
    out = tmp_path / "b.json"
    res = export_results(results, out, now=NOW)
    bundle, kinds = _objects(out)
    assert res.campaigns == 2
    for t in (
        "identity",
        "marking-definition",
        "attack-pattern",
        "campaign",
        "infrastructure",
        "indicator",
        "relationship",
        "sighting",
        "extension-definition",
    ):
        assert kinds[t] >= 1, t
    # TLP:AMBER (TLP 2.0) by default on every object the producer made
    assert all(
        TLP2_IDS["amber"] in o.object_marking_refs
        for o in bundle.objects
        if getattr(o, "created_by_ref", None) == bundle.objects[2].id
    )
    attack = next(o for o in bundle.objects if o.type == "attack-pattern")
    assert "AML.T0024.002" in {r.external_id for r in attack.external_references}
    patterns = {o.pattern for o in bundle.objects if o.type == "indicator"}
    assert "[ipv4-addr:value ISSUBSET '203.0.113.0/24']" in patterns
    assert "[ipv6-addr:value ISSUBSET '2001:db8:1::/48']" in patterns
    assert "[autonomous-system:number = 64500]" in patterns
    assert "[email-addr:value MATCHES '@mailbox\\\\.example$']" in patterns
    assert not any("gmail" in p for p in patterns)  # free-mail domains are never indicators
    sightings = [o for o in bundle.objects if o.type == "sighting"]
    assert all(s.count >= 1 and s.first_seen <= s.last_seen for s in sightings)
    rel_types = {o.relationship_type for o in bundle.objects if o.type == "relationship"}
    assert {"indicates", "uses"} <= rel_types


def test_round_trip_is_stable_and_ids_are_deterministic(results, tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    export_results(results, a, now=NOW)
    export_results(results, b, now=NOW)
    bundle_a, _ = _objects(a)
    bundle_b, _ = _objects(b)
    # same objects, same ids (a partner's copy is updated, not duplicated)
    assert [o.id for o in bundle_a.objects] == [o.id for o in bundle_b.objects]
    # serialising the parsed bundle gives back the same objects
    again = stix2.parse(bundle_a.serialize(), allow_custom=True)
    assert json.loads(again.serialize())["objects"] == json.loads(bundle_a.serialize())["objects"]


def test_privacy_by_default_and_raw_on_request(results, tmp_path):
    plain, raw = tmp_path / "plain.json", tmp_path / "raw.json"
    export_results(results, plain, campaign_id="C1", now=NOW)
    text = plain.read_text()
    assert "C1-acct-" not in text and "parses" not in text and "python-httpx" not in text
    export_results(results, raw, campaign_id="C1", include_raw=True, now=NOW)
    bundle, kinds = _objects(raw)
    assert kinds["campaign"] == 1
    camp = next(o for o in bundle.objects if o.type == "campaign")
    ext = next(iter(camp.extensions.values()))
    assert len(ext["account_ids"]) == 100 and ext["sample_prompts"]


@pytest.mark.parametrize("level", ["clear", "green", "amber", "amber+strict", "red"])
def test_tlp_levels(results, tmp_path, level):
    out = tmp_path / "b.json"
    export_results(results, out, tlp=level, now=NOW)
    bundle, _ = _objects(out)
    marking = next(o for o in bundle.objects if o.type == "marking-definition")
    assert marking.id == TLP2_IDS[level] and marking.name == f"TLP:{level.upper()}"


def test_unknown_campaign_and_bad_tlp_are_clear_errors(results, tmp_path):
    with pytest.raises(KeyError, match="no campaign 'C404'"):
        export_results(results, tmp_path / "b.json", campaign_id="C404")
    with pytest.raises(ValueError, match="TLP level"):
        export_results(results, tmp_path / "b.json", tlp="purple")


def test_hostile_indicator_values_are_escaped_or_dropped():
    assert indicator_pattern(Indicator(type="email-domain", value="x.com' OR 1=1 --")) is None
    assert indicator_pattern(Indicator(type="template-hash", value="abc'] OR [x:y = 'z")) is None
    assert indicator_pattern(Indicator(type="user-agent", value="curl/8")) is None
    assert indicator_pattern(Indicator(type="asn", value="AS-1")) is None
    spec = indicator_pattern(Indicator(type="ipv4-prefix", value="203.0.113.77/24"))
    assert spec.pattern == "[ipv4-addr:value ISSUBSET '203.0.113.0/24']"


def test_import_stores_matchable_indicators(results, tmp_path, con):
    out = tmp_path / "b.json"
    export_results(results, out, producer="Provider A", now=NOW)
    res = import_bundle(con, out, now=NOW)
    assert res.partner == "Provider A"
    assert res.kinds == Counter(
        {"ipv4-prefix": 3, "template-hash": 4, "ipv6-prefix": 1, "asn": 2, "email-domain": 2}
    )
    rows = con.execute(
        "SELECT DISTINCT kind, value FROM intel_partner_indicators WHERE kind = 'email-domain'"
    ).fetchall()
    assert rows == [("email-domain", "mailbox.example")]
    # importing again replaces, it does not duplicate
    import_bundle(con, out, now=NOW)
    assert con.execute("SELECT count(*) FROM intel_partner_indicators").fetchone() == (res.stored,)
    assert con.execute("SELECT count(*) FROM intel_imports").fetchone() == (2,)


def test_import_of_a_foreign_bundle_skips_what_it_cannot_match(tmp_path, con):
    ident = stix2.Identity(name="Partner <b>B</b>", identity_class="organization")
    common = {"created_by_ref": ident.id, "valid_from": "2026-01-01T00:00:00Z"}
    objs = [
        ident,
        stix2.Indicator(
            pattern="[ipv4-addr:value = '198.51.100.7'] OR [domain-name:value = 'Burner.example']",
            pattern_type="stix",
            **common,
        ),
        stix2.Indicator(
            pattern="[ipv4-addr:value = '198.51.100.7' AND ipv4-addr:value = '198.51.100.8']",
            pattern_type="stix",
            **common,
        ),
        stix2.Indicator(
            pattern="[file:hashes.'SHA-256' = 'aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f']",
            pattern_type="stix",
            **common,
        ),
        stix2.Indicator(pattern="[ipv4-addr:value ISSUBSET '10.0.0.0/4']", pattern_type="stix", **common),
        stix2.Indicator(pattern='alert tcp any any -> any any (msg:"x";)', pattern_type="snort", **common),
        stix2.Indicator(
            pattern="[ipv4-addr:value = '192.0.2.1']",
            pattern_type="stix",
            valid_until="2026-02-01T00:00:00Z",
            **common,
        ),
    ]
    path = tmp_path / "foreign.json"
    path.write_text(stix2.Bundle(objects=objs).serialize())
    res = import_bundle(con, path, now=NOW)
    assert res.partner == "Partner bB/b"  # markup characters removed
    assert res.kinds == Counter({"ipv4-prefix": 1, "email-domain": 1})
    assert res.skipped["expired"] == 1 and res.skipped["range too broad"] == 1
    assert res.skipped["pattern type snort"] == 1
    assert sum(res.skipped.values()) == 5
    assert con.execute("SELECT value FROM intel_partner_indicators ORDER BY value").fetchall() == [
        ("198.51.100.7/32",),
        ("burner.example",),
    ]


def test_import_of_a_non_json_file_names_the_file(tmp_path, con):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json: not JSON"):
        import_bundle(con, bad)


def test_partner_attributions_become_actor_fingerprints(tmp_path):
    from distillwatch import store
    from distillwatch.intel import attribution
    from distillwatch.intel.track import match_campaigns

    with store.open_store(tmp_path / "a.duckdb") as con_a:
        d = write_results(tmp_path / "r", [make_campaign("C1")], run_id="run1")
        track_results(d, con_a)
        attribution.add_actor(con_a, "Lab X")
        attribution.label_campaign(con_a, "C1", "Lab X")
        track_results(d, con_a)  # re-track: now attributed (labelled)
    out = tmp_path / "b.json"
    export_results(d, out, producer="Provider A", now=NOW)
    assert '"attributed-to"' in out.read_text()
    with store.open_store(tmp_path / "b.duckdb") as con_b:
        res = import_bundle(con_b, out, now=NOW)
        assert res.actors == Counter({"Lab X": 1})
        import_bundle(con_b, out, now=NOW)  # idempotent
        (row,) = attribution.list_actors(con_b)
        assert row["name"] == "Lab X" and row["fingerprints"] == 1 and row["campaigns"] == ["Provider A:C1"]
        # Provider B's own scan later meets the same operator: attributed through Provider A's fingerprint
        (c,) = match_campaigns(con_b, [make_campaign("C4")], "runB")
        from distillwatch.intel.attribution import attribute_campaigns
        from distillwatch.intel.fingerprint import from_campaign

        (c,) = attribute_campaigns(con_b, [c], {"C4": from_campaign(make_campaign("C4"))})
        assert c.attribution.actor == "Lab X" and not c.attribution.labelled


def test_indicators_honest_customers_share_are_not_exported(results, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from distillwatch.intel.profile import INDICATOR_SCHEMA
    from distillwatch.intel.track import INDICATORS_FILE

    rows = [
        ("asn", "64500", 100, 900),  # also listed in the campaign record; honest users carry it
        ("ipv4-prefix", "203.0.113.0/24", 100, 2),
        ("ipv4-prefix", "100.64.3.0/24", 40, 0),  # beyond the record's top list: exported from the tables
        ("ipv4-prefix", "100.64.4.0/24", 1, 0),  # one carrier
    ]
    table = pa.Table.from_pylist(
        [
            {
                "campaign_id": "C1",
                "type": t,
                "value": v,
                "campaign_accounts": i,
                "other_accounts": o,
                "count": 10 * i,
                "first_seen": NOW,
                "last_seen": NOW,
            }
            for t, v, i, o in rows
        ],
        schema=INDICATOR_SCHEMA,
    )
    pq.write_table(table, results / INDICATORS_FILE)
    out = tmp_path / "b.json"
    res = export_results(results, out, campaign_id="C1", now=NOW)
    bundle, _ = _objects(out)
    patterns = {o.pattern: o for o in bundle.objects if o.type == "indicator"}
    assert "[autonomous-system:number = 64500]" not in patterns
    assert res.skipped["asn also carried by accounts outside any campaign"] == 1
    assert res.skipped["ipv4-prefix carried by fewer than 2 of the campaign's accounts"] == 1
    kept = patterns["[ipv4-addr:value ISSUBSET '203.0.113.0/24']"]
    assert "Seen on 100 of its accounts and 2 others." in kept.description
    assert "[ipv4-addr:value ISSUBSET '100.64.3.0/24']" in patterns
    sighting = next(
        o
        for o in bundle.objects
        if o.type == "sighting"
        and o.sighting_of_ref == patterns["[ipv4-addr:value ISSUBSET '100.64.3.0/24']"].id
    )
    assert sighting.count == 400


def test_oversized_bundles_and_fingerprints_are_refused(tmp_path, con, monkeypatch):
    from pydantic import ValidationError

    from distillwatch.intel import stix_export
    from distillwatch.intel.fingerprint import Fingerprint

    big = tmp_path / "big.json"
    big.write_text("{}" + " " * 100)
    monkeypatch.setattr(stix_export, "MAX_BUNDLE_BYTES", 50)
    with pytest.raises(ValueError, match="big.json: 102 bytes, more than the 50"):
        import_bundle(con, big)
    with pytest.raises(ValidationError):
        Fingerprint(template_sketch=[1] * 5000)
    with pytest.raises(ValidationError):
        Fingerprint(hour_profile=[0.1] * 25)
