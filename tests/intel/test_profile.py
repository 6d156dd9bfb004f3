from datetime import timedelta

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from distillwatch.intel.fingerprint import compare
from distillwatch.intel.track import read_fingerprints, track_results
from tests.intel.intel_factory import T0, make_campaign, write_results

TEMPLATES = [
    "Write a Python function that parses {n} log files and reports every error with its line number",
    "Explain step by step how to implement a {n}-way merge sort in Rust, then give the full code",
    "You are an autonomous agent. Plan {n} steps to refactor the repository, call the tools, and report",
]
OTHER = [
    "What should I cook tonight with {n} eggs and some spinach",
    "Translate this paragraph about {n} holidays into French",
]


def _tables(tmp_path, cid: str, templates: list[str], seed: int, hours: range, n_accounts: int = 30):
    rng = np.random.default_rng(seed)
    per = 20
    acc = np.repeat([f"{cid}-acct-{k}" for k in range(n_accounts)], per)
    prompts = [
        templates[i % len(templates)].format(n=int(x)) for i, x in enumerate(rng.integers(2, 999, len(acc)))
    ]
    ts = [
        T0 + timedelta(days=int(d), hours=int(h), minutes=int(m))
        for d, h, m in zip(
            rng.integers(0, 10, len(acc)),
            rng.choice(list(hours), len(acc)),
            rng.integers(0, 60, len(acc)),
            strict=True,
        )
    ]
    ex = pa.table(
        {
            "request_id": [f"r{seed}-{i}" for i in range(len(acc))],
            "account_id": acc,
            "ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
            "ip": ["203.0.113.5"] * len(acc),
            "prompt": prompts,
        }
    )
    ids = [f"{cid}-acct-{k}" for k in range(n_accounts)]
    accounts = pa.table(
        {
            "account_id": ids,
            "created_at": pa.array(
                [T0 - timedelta(days=3, hours=-(k % 3)) for k in range(n_accounts)],
                pa.timestamp("us", tz="UTC"),
            ),
            "email": [f"user{1000 + k}@mailbox.example" for k in range(n_accounts)],
        }
    )
    pq.write_table(ex, tmp_path / f"ex_{seed}.parquet")
    pq.write_table(accounts, tmp_path / f"acc_{seed}.parquet")
    return tmp_path / f"ex_{seed}.parquet", tmp_path / f"acc_{seed}.parquet"


def test_fingerprint_gains_timing_sketch_and_registration_from_tables(con, tmp_path):
    ex, acc = _tables(tmp_path, "C1", TEMPLATES, 1, range(24))
    d = write_results(tmp_path / "r1", [make_campaign("C1", accounts=30, exchanges=600)], run_id="run1")
    track_results(d, con, exchanges=ex, accounts=acc)
    fp = read_fingerprints(d)["C1"]
    assert len(fp.hour_profile) == 24 and abs(sum(fp.hour_profile) - 1) < 1e-6
    assert min(fp.hour_profile) > 0  # round the clock
    assert len(fp.template_sketch) == 64
    assert fp.email_patterns  # local-part shapes, not the addresses
    assert not any("user10" in k for k in fp.email_patterns)
    assert len(fp.signup_hours) == 24 and fp.signup_hours[0] > 0


def test_sketch_recognises_the_same_templates_and_separates_others(con, tmp_path):
    ex1, acc1 = _tables(tmp_path, "C1", TEMPLATES, 1, range(24))
    ex2, acc2 = _tables(tmp_path, "C1", TEMPLATES, 2, range(24))  # same operator, new slot values
    ex3, acc3 = _tables(tmp_path, "C1", OTHER, 3, range(9, 17))  # different prompts, office hours
    fps = []
    for i, (ex, acc) in enumerate([(ex1, acc1), (ex2, acc2), (ex3, acc3)]):
        # the scan listed no template hashes: the sketch and the sample's hashes carry the evidence
        d = write_results(tmp_path / f"r{i}", [make_campaign("C1", accounts=30, exchanges=600, templates=())])
        mapping = track_results(d, con, run_id=f"probe{i}", exchanges=ex, accounts=acc)
        fps.append(read_fingerprints(d)[mapping["C1"]])
    same = compare(fps[0], fps[1])
    other = compare(fps[0], fps[2])
    assert same.by_type["templates"] > 0.9
    assert other.by_type["templates"] < 0.2
    assert same.by_type["timing"] > other.by_type["timing"]


def test_precomputed_email_shapes_are_used(con, tmp_path):
    """Detection's account records carry `email_pattern` (no addresses); the fingerprint takes it as is."""
    ex, acc = _tables(tmp_path, "C1", TEMPLATES, 1, range(24))
    shapes = pq.read_table(acc).drop_columns(["email"]).append_column("email_pattern", pa.array(["a9"] * 30))
    pq.write_table(shapes, tmp_path / "shapes.parquet")
    d = write_results(tmp_path / "r1", [make_campaign("C1", accounts=30, exchanges=600)], run_id="run1")
    track_results(d, con, exchanges=ex, accounts=tmp_path / "shapes.parquet")
    assert read_fingerprints(d)["C1"].email_patterns == {"a9": 1.0}


def test_campaign_indicators_list_every_shared_value_with_its_specificity():
    import ibis

    from distillwatch.intel.profile import campaign_indicators

    members = pa.table(
        {"account_id": ["a", "b", "c", "d", "e"], "campaign_id": ["C1", "C1", "C2", None, None]}
    )
    ts = pa.array([T0 + timedelta(hours=h) for h in range(7)], pa.timestamp("us", tz="UTC"))
    ex = ibis.memtable(
        pa.table(
            {
                "account_id": ["a", "a", "b", "c", "d", "e", "b"],
                "ts": ts,
                "prefix": ["203.0.113.0/24"] * 3
                + ["198.51.100.0/24"] * 2
                + ["192.0.2.0/24", "2001:db8:1::/48"],
                "asn": pa.array([16509] * 6 + [64500], pa.int64()),
            }
        )
    )
    facts = ibis.memtable(pa.table({"account_id": ["a", "b", "d"], "template_hash": ["1", "1", "2"]}))
    recs = ibis.memtable(pa.table({"account_id": ["a", "b", "e"], "email_domain": ["x.example"] * 3}))
    rows = campaign_indicators(members, ex, facts, recs).to_pylist()
    got = {
        (r["campaign_id"], r["type"], r["value"]): (r["campaign_accounts"], r["other_accounts"], r["count"])
        for r in rows
    }
    assert got == {
        ("C1", "ipv4-prefix", "203.0.113.0/24"): (2, 0, 3),  # only the campaign uses it: shareable
        ("C1", "asn", "16509"): (2, 2, 3),  # a cloud ASN: as many users in no campaign
        ("C1", "template-hash", "1"): (2, 0, 2),
        ("C1", "email-domain", "x.example"): (2, 1, 2),
    }  # one carrier is not enough: C2's prefix, b's IPv6 /48 and ASN 64500 are not listed
    first = next(r for r in rows if r["type"] == "ipv4-prefix")
    assert first["first_seen"] == T0 and first["last_seen"] == T0 + timedelta(hours=2)
