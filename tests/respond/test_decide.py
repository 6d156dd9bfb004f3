import duckdb
import pyarrow.parquet as pq
import pytest

from distillwatch.respond import records
from distillwatch.respond.decide import decide
from distillwatch.respond.policy import load_policy
from distillwatch.respond.results import ResultsError, read_results
from tests.respond.helpers import BASE_ACCOUNTS, BASE_ROWS, NOW, campaign, write_accounts, write_results


@pytest.fixture
def env(tmp_path):
    results = write_results(tmp_path / "r", BASE_ROWS, signals={"shared_prefix": [1.0] * 5 + [0.0, 0.0]})
    accounts = write_accounts(tmp_path / "accounts.parquet", BASE_ACCOUNTS)
    return tmp_path, results, accounts, tmp_path / "store.duckdb"


def _run(results, accounts, db, **kw):
    return decide(read_results(results), load_policy(), db, accounts_path=accounts, now=NOW, **kw)


def _actions(out):
    return {r["account_id"]: r for r in out.actions.to_pylist()}


def test_decide_writes_actions_records_and_diffs(env):
    tmp, results, accounts, db = env
    out = _run(results, accounts, db)
    acts = _actions(out)
    assert set(acts) == {"atk-1", "atk-2", "atk-3", "ent-1", "sus-1"}  # clean accounts have no row
    assert acts["atk-1"]["action"] == "block"
    assert acts["ent-1"]["action"] == "flag" and "EXEMPT-ENTERPRISE" in acts["ent-1"]["reason_codes"]
    assert acts["sus-1"]["action"] == "throttle"  # suspect and 2 days old
    assert acts["atk-1"]["evidence_signals"] == ["shared_prefix"]
    assert pq.read_table(results / "actions.parquet").num_rows == 5
    assert out.counts["new"] == 5 and records.read_marker(db) == out.run_id
    # the same evidence again: nothing new, changed or expired
    again = _run(results, accounts, db)
    assert again.changes.num_rows == 0
    # sus-1 escalates to attack, clean-2 drops out of the results entirely, atk-3 becomes benign
    rows = [dict(r) for r in BASE_ROWS]
    rows[3] = {"account_id": "sus-1", "score": 0.9, "verdict": "attack", "campaign_id": None}
    rows[2] = {"account_id": "atk-3", "score": 0.1, "verdict": "benign", "campaign_id": None}
    write_results(results, rows)
    third = _run(results, accounts, db)
    change = {r["account_id"]: r["change"] for r in third.changes.to_pylist()}
    assert change == {"sus-1": "changed", "atk-3": "expired"}
    with records.short_connection(db, read_only=True) as con:
        audit = records.query_audit(con, kind="decision", limit=1000).to_pylist()
    assert {(a["account_id"], a["change"]) for a in audit} >= {("sus-1", "changed"), ("atk-3", "expired")}


def test_dry_run_is_recorded_but_not_served(env):
    _, results, accounts, db = env
    served = _run(results, accounts, db)
    dry = _run(results, accounts, db, dry_run=True)
    assert dry.dry_run and not dry.actions["enforced"].to_pylist()[0]
    assert records.read_marker(db) == served.run_id  # the service keeps the enforced run
    with records.short_connection(db, read_only=True) as con:
        assert records.latest_run(con)["run_id"] == served.run_id
        assert records.latest_run(con, enforced_only=False)["run_id"] == dry.run_id


def test_cleared_account_stays_cleared_on_same_evidence_and_returns_on_new(env):
    tmp, results, accounts, db = env
    _run(results, accounts, db)
    records.add_override(db, "atk-1", "clear", "alice", "verified researcher")
    out = _run(results, accounts, db)
    row = _actions(out)["atk-1"]
    assert (
        row["action"] == "allow"
        and row["policy_action"] == "block"
        and "ANALYST-CLEARED" in row["reason_codes"]
    )
    assert out.superseded.num_rows == 0
    # same evidence again, still cleared
    assert _actions(_run(results, accounts, db))["atk-1"]["action"] == "allow"
    # new evidence: a new signal fires for the account
    write_results(
        results, BASE_ROWS, signals={"shared_prefix": [1.0] * 5 + [0.0, 0.0], "template_reuse": [1.0] * 7}
    )
    out = _run(results, accounts, db)
    assert _actions(out)["atk-1"]["action"] == "block"
    (sup,) = out.superseded.to_pylist()
    assert "new signals: template_reuse" in sup["why_new"]
    with records.short_connection(db, read_only=True) as con:
        ended = records.fetch_one(
            con, "SELECT active, ended_reason FROM respond_overrides WHERE account_id = 'atk-1'"
        )
        audit = records.query_audit(con, account="atk-1", kind="clear-superseded").to_pylist()
    assert ended[0] is False and "template_reuse" in ended[1]
    assert len(audit) == 1


def test_clear_ends_on_higher_score_band_and_on_a_different_campaign(env):
    tmp, results, accounts, db = env
    rows = [dict(r) for r in BASE_ROWS]
    rows[0]["score"] = 0.75  # band 2 of [0.5, 0.7, 0.9]
    write_results(results, rows)
    _run(results, accounts, db)
    records.add_override(db, "atk-1", "clear", "alice", "ok")
    rows[0]["score"] = 0.95
    write_results(results, rows)
    out = _run(results, accounts, db)
    assert "score band rose from 2 to 3" in out.superseded.to_pylist()[0]["why_new"]

    records.add_override(db, "atk-2", "clear", "bob", "ok")
    other = campaign("C9", prefixes=("198.51.100.0/24",), templates=("t-zzz",), domains=("other.example",))
    rows[1]["campaign_id"] = "C9"
    write_results(results, rows, campaigns=[campaign(), other])
    out = _run(results, accounts, db)
    sup = {r["account_id"]: r["why_new"] for r in out.superseded.to_pylist()}
    assert "different campaign (C9)" in sup["atk-2"]


def test_set_override_forces_action_even_for_unseen_account(env):
    _, results, accounts, db = env
    _run(results, accounts, db)
    records.add_override(
        db, "clean-1", "set", "carol", "confirmed reseller of harvested output", action="block"
    )
    records.add_override(
        db, "ghost'; DROP TABLE respond_audit; --", "set", "carol", "seen elsewhere", action="throttle"
    )
    acts = _actions(_run(results, accounts, db))
    assert acts["clean-1"]["action"] == "block" and "ANALYST-SET" in acts["clean-1"]["reason_codes"]
    ghost = acts["ghost'; DROP TABLE respond_audit; --"]
    assert (
        ghost["action"] == "throttle"
        and ghost["throttle_rpm"] == load_policy().default_throttle.requests_per_minute
    )
    with records.short_connection(db, read_only=True) as con:
        assert records.fetch_one(con, "SELECT count(*) FROM respond_audit")[0] > 0


def test_override_needs_analyst_and_note(env):
    _, _, _, db = env
    with pytest.raises(ValueError, match="analyst"):
        records.add_override(db, "a", "clear", " ", "x")
    with pytest.raises(ValueError, match="action"):
        records.add_override(db, "a", "set", "x", "y", action="nuke")


@pytest.mark.parametrize(
    "rows, needle",
    [
        ([{"account_id": "a", "score": 1.5, "verdict": "attack"}], "row 0: field `score`"),
        (
            [
                {"account_id": "a", "score": 0.5, "verdict": "attack"},
                {"account_id": "b", "score": 0.5, "verdict": "evil"},
            ],
            "row 1: field `verdict`",
        ),
        ([{"account_id": "a", "score": 0.5, "verdict": "benign"}] * 2, "repeats"),
    ],
)
def test_bad_results_name_file_row_and_field(tmp_path, rows, needle):
    write_results(tmp_path / "r", rows)
    with pytest.raises(ResultsError, match=needle) as err:
        read_results(tmp_path / "r")
    assert "accounts.parquet" in str(err.value)


def test_store_is_not_held_open(env):
    _, results, accounts, db = env
    _run(results, accounts, db)
    # another process-style writer can open the file right after decide returns
    duckdb.connect(str(db)).close()
