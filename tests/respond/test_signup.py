from datetime import timedelta

import pyarrow as pa
import pytest

from distillwatch.enrich.email import EmailLists
from distillwatch.enrich.network import NetworkLists
from distillwatch.respond import records, signup
from distillwatch.respond.decide import decide
from distillwatch.respond.policy import load_policy
from distillwatch.respond.results import read_results
from tests.respond.helpers import BASE_ACCOUNTS, BASE_ROWS, NOW, write_accounts, write_results


@pytest.fixture(scope="module")
def lists(tmp_path_factory):
    d = tmp_path_factory.mktemp("lists")
    (d / "tor.txt").write_text("# category: tor\n185.220.101.0/24\n", encoding="utf-8")
    (d / "dc.txt").write_text("# category: datacenter\n192.0.2.0/24 TestCloud\n", encoding="utf-8")
    (d / "patterned.txt").write_text("mailbox-farm.example\n", encoding="utf-8")
    # defaults off: the test decides exactly what is listed
    net = NetworkLists.load(extra_paths=[d / "tor.txt", d / "dc.txt"], use_defaults=False)
    mail = EmailLists.load(extra_paths=[d / "patterned.txt"], use_defaults=False)
    return net, mail


def _batch(rows):
    ts = pa.timestamp("us", tz="UTC")
    return pa.table(
        {
            "account_id": [r["account_id"] for r in rows],
            "created_at": pa.array([r.get("created_at") for r in rows], ts),
            "email": pa.array([r.get("email") for r in rows], pa.string()),
            "signup_ip": pa.array([r.get("signup_ip") for r in rows], pa.string()),
            "payment_fingerprint": pa.array([r.get("payment_fingerprint") for r in rows], pa.string()),
        }
    )


def _by_id(t):
    return {r["account_id"]: r for r in t.to_pylist()}


def test_each_signal_and_the_policy_outcome(lists):
    net, mail = lists
    ctx = signup.SignupContext(
        signup.HISTORY_COLUMNS.empty_table(),
        frozenset({"pay-bad"}),
        frozenset({"203.0.113.0/24"}),
        frozenset({"campaign-mail.example"}),
    )
    rows = [
        {"account_id": "ok", "email": "jane@uni.example", "signup_ip": "198.51.100.7", "created_at": NOW},
        {"account_id": "tor", "email": "x@uni.example", "signup_ip": "185.220.101.9", "created_at": NOW},
        {"account_id": "dc", "email": "y@corp.example", "signup_ip": "192.0.2.5", "created_at": NOW},
        {
            "account_id": "farm",
            "email": "q@mailbox-farm.example",
            "signup_ip": "198.51.100.8",
            "created_at": NOW,
        },
        {
            "account_id": "pay",
            "email": "z@corp.example",
            "signup_ip": "198.51.100.9",
            "payment_fingerprint": "pay-bad",
            "created_at": NOW,
        },
        {
            "account_id": "camp",
            "email": "w@campaign-mail.example",
            "signup_ip": "198.51.100.10",
            "created_at": NOW,
        },
        {"account_id": "camp-ip", "email": "v@corp.example", "signup_ip": "203.0.113.50", "created_at": NOW},
        {"account_id": "empty"},
    ]
    out = _by_id(signup.score_signups(_batch(rows), load_policy(), ctx, net, mail, NOW))
    assert out["ok"]["action"] == "allow" and out["ok"]["reason_codes"] == []
    assert out["tor"]["action"] == "verify" and out["tor"]["reason_codes"] == ["SIGNUP-ANON-NETWORK"]
    assert out["dc"]["reason_codes"] == ["SIGNUP-DATACENTER"]
    assert out["farm"]["action"] == "verify" and out["farm"]["disposable_email"]
    assert out["pay"]["action"] == "deny" and out["pay"]["reason_codes"] == ["SIGNUP-FLAGGED-PAYMENT"]
    assert out["camp"]["action"] == "deny" and out["camp-ip"]["action"] == "deny"
    assert out["empty"]["action"] == "allow"  # nothing known, nothing held against it


def test_bursts_shared_addresses_and_patterns_look_only_backwards(lists):
    net, mail = lists
    rows = [
        {
            "account_id": f"b{i}",
            "email": f"john.smith{10 + i}@gmail.example",
            "signup_ip": "198.51.100.20" if i < 6 else f"198.51.100.{30 + i}",
            "created_at": NOW + timedelta(minutes=i),
        }
        for i in range(25)
    ]
    rows.append(
        {
            "account_id": "late",
            "email": "solo@else.example",
            "signup_ip": "198.51.100.200",
            "created_at": NOW + timedelta(hours=30),
        }
    )  # outside the 24 h window
    out = _by_id(
        signup.score_signups(_batch(rows), load_policy(), signup.SignupContext.empty(), net, mail, NOW)
    )
    assert out["b0"]["shared_address"] == 0 and out["b5"]["shared_address"] == 5
    assert out["b5"]["action"] == "verify" and "SIGNUP-SHARED-ADDRESS" in out["b5"]["reason_codes"]
    assert out["b4"]["local_part_burst"] == 4 and out["b5"]["local_part_burst"] == 5
    assert "SIGNUP-PATTERNED-EMAIL" in out["b5"]["reason_codes"]
    assert out["b19"]["burst"] == 20 and "SIGNUP-BURST" in out["b19"]["reason_codes"]
    assert out["b0"]["action"] == "allow"
    assert out["late"]["shared_prefix"] == 0 and out["late"]["action"] == "allow"


def test_context_from_the_store_and_recording(tmp_path, lists):
    net, mail = lists
    results = write_results(tmp_path / "r", BASE_ROWS)
    accounts = write_accounts(tmp_path / "a.parquet", BASE_ACCOUNTS)
    db = tmp_path / "s.duckdb"
    decide(read_results(results), load_policy(), db, accounts_path=accounts, now=NOW)
    first = [
        {
            "account_id": f"s{i}",
            "email": f"a{i}@x.example",
            "signup_ip": "198.51.100.77",
            "created_at": NOW + timedelta(minutes=i),
        }
        for i in range(5)
    ]
    with records.short_connection(db) as con:
        ctx = signup.load_context(con, NOW - timedelta(days=1))
    assert ctx.flagged_payments == {"pay-x"}  # atk-1 and atk-2 are blocked and share it
    assert "203.0.113.0/24" in ctx.indicator_prefixes and "mailbox.example" in ctx.indicator_domains
    scored = signup.score_signups(_batch(first), load_policy(), ctx, net, mail, NOW)
    signup.record_signups(db, scored, "test")
    later = [
        {
            "account_id": "s-next",
            "email": "b@y.example",
            "signup_ip": "198.51.100.77",
            "payment_fingerprint": "pay-x",
            "created_at": NOW + timedelta(hours=1),
        }
    ]
    with records.short_connection(db) as con:
        ctx = signup.load_context(con, NOW - timedelta(days=1))
    (row,) = signup.score_signups(_batch(later), load_policy(), ctx, net, mail, NOW).to_pylist()
    assert row["shared_address"] == 5 and row["action"] == "deny"
    assert set(row["reason_codes"]) == {"SIGNUP-FLAGGED-PAYMENT", "SIGNUP-SHARED-ADDRESS"}


def test_one_card_many_signups(lists):
    net, mail = lists
    rows = [
        {
            "account_id": f"p{i}",
            "email": f"p{i}@org{i}.example",
            "signup_ip": f"2001:db8:{i}::1",
            "payment_fingerprint": "card-1",
            "created_at": NOW + timedelta(minutes=i),
        }
        for i in range(3)
    ]
    out = _by_id(
        signup.score_signups(_batch(rows), load_policy(), signup.SignupContext.empty(), net, mail, NOW)
    )
    assert [out[f"p{i}"]["shared_payment"] for i in range(3)] == [0, 1, 2]
    assert out["p1"]["action"] == "allow" and out["p2"]["reason_codes"] == ["SIGNUP-SHARED-PAYMENT"]
