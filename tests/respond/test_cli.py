import pyarrow.parquet as pq
from typer.testing import CliRunner

from distillwatch.cli.main import app
from tests.respond.helpers import BASE_ACCOUNTS, BASE_ROWS, write_accounts, write_results

runner = CliRunner()


def _invoke(*args):
    result = runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})
    return result.exit_code, result.output


def test_decide_review_audit_round_trip(tmp_path):
    results = write_results(tmp_path / "r", BASE_ROWS)
    accounts = write_accounts(tmp_path / "a.parquet", BASE_ACCOUNTS)
    db = tmp_path / "s.duckdb"
    code, out = _invoke("decide", "--results", results, "--accounts", accounts, "--db", db, "--actor", "ci")
    assert code == 0, out
    assert "5 new, 0 changed, 0 expired" in out and "actions.parquet" in out
    hostile = "evil\u202eTXT.exe[bold]x[/bold]"
    code, out = _invoke(
        "review",
        hostile,
        "--set",
        "block",
        "--note",
        "bidi \u202e note",
        "--analyst",
        "al\x1bice",
        "--db",
        db,
    )
    assert code == 0, out
    assert "\u202e" not in out and "\\u202e" in out and "\x1b" not in out
    code, out = _invoke("review", "atk-1", "--clear", "--note", "ok", "--analyst", "bob", "--db", db)
    assert code == 0 and "was block; now allow" in out
    code, out = _invoke("audit", "--db", db, "--kind", "override")
    assert code == 0 and "bob" in out and "\u202e" not in out and "2 entries" in out
    code, out = _invoke("audit", "--db", db, "--actor", "ci", "--since", "1h")
    assert code == 0 and "6 entries" in out  # five new decisions and the run itself


def test_clear_errors(tmp_path):
    write_results(tmp_path / "r", BASE_ROWS)
    code, out = _invoke("decide", "--results", tmp_path / "missing", "--db", tmp_path / "s.duckdb")
    assert code == 2 and "not a results directory" in out
    bad = tmp_path / "p.yaml"
    bad.write_text("rules: [{name: x, action: nuke, reason_code: X}]\n")
    code, out = _invoke("decide", "--results", tmp_path / "r", "--policy", bad, "--db", tmp_path / "s.duckdb")
    assert code == 2 and "rules.0.action" in out
    code, out = _invoke("review", "a", "--clear", "--set", "block", "--note", "n", "--analyst", "a")
    assert code == 2 and "exactly one" in out
    code, out = _invoke("audit", "--db", tmp_path / "s.duckdb", "--since", "yesterday")
    assert code == 2


def test_signup_risk_batch(tmp_path):
    from datetime import timedelta

    from tests.respond.helpers import NOW

    rows = [
        {
            "account_id": f"n{i}",
            "email": f"x{i}@mailinator.com" if i == 0 else f"u{i}@uni.example",
            "signup_ip": "2001:db8:9::1",
            "created_at": NOW + timedelta(minutes=i),
        }
        for i in range(7)
    ]
    path = write_accounts(tmp_path / "signups.parquet", rows)
    out_path = tmp_path / "risk.parquet"
    code, out = _invoke("signup-risk", path, "--db", tmp_path / "s.duckdb", "--out", out_path)
    assert code == 0, out
    scored = {r["account_id"]: r for r in pq.read_table(out_path).to_pylist()}
    assert scored["n0"]["action"] == "verify" and scored["n0"]["disposable_email"]
    assert scored["n6"]["shared_address"] == 6 and "SIGNUP-SHARED-ADDRESS" in scored["n6"]["reason_codes"]
    assert scored["n1"]["action"] == "allow"
    code, out = _invoke("audit", "--db", tmp_path / "s.duckdb", "--kind", "signup")
    assert code == 0 and "n0" in out
