"""Simulated traffic -> scan -> decide -> the real decision service: campaign accounts are refused."""

import duckdb
import httpx
import pyarrow as pa
import pytest

from distillwatch.pipeline import scan
from distillwatch.respond.decide import decide
from distillwatch.respond.policy import load_policy
from distillwatch.respond.results import read_results
from distillwatch.respond.service import create_app
from distillwatch.simulate import preset, simulate
from tests.respond.server import running

TOKEN = "e2e-token-0123456789abcdef"


@pytest.mark.slow
def test_simulated_campaign_is_blocked_at_the_gateway(tmp_path):
    sim, res, db = tmp_path / "sim", tmp_path / "results", tmp_path / "store.duckdb"
    simulate(preset("demo", scale=0.2, seed=3), sim)
    scan(sim / "exchanges.parquet", res, accounts=sim / "accounts.parquet", db=db, report=False)
    results = read_results(res)
    out = decide(results, load_policy(), db, accounts_path=sim / "accounts.parquet")
    con = duckdb.connect()
    con.register("actions", out.actions)
    con.register("verdicts", results.accounts)
    con.register(
        "conf",
        pa.table(
            {
                "campaign_id": [c.campaign_id for c in results.campaigns],
                "confidence": [c.confidence for c in results.campaigns],
            }
        ),
    )
    rows = con.execute(
        "SELECT v.account_id, l.is_attack, v.verdict, c.confidence, coalesce(a.action, 'allow') "
        "FROM verdicts v JOIN read_parquet(?) l USING (account_id) LEFT JOIN conf c ON c.campaign_id = v.campaign_id "
        "LEFT JOIN actions a ON a.account_id = v.account_id",
        [str(sim / "labels.parquet")],
    ).fetchall()
    # The default policy, applied to what detection found:
    for account, _, verdict, confidence, action in rows:
        if verdict == "attack" and confidence is not None and confidence >= 0.8:
            assert action == "block", account
        elif verdict == "attack":
            assert action in ("verify", "flag"), account  # flag: an enterprise/education exemption
        elif verdict == "benign":
            assert action == "allow", account
    # ... and end to end: no real customer refused, the campaign refused at the gateway.
    assert not [r for r in rows if not r[1] and r[4] in ("block", "verify")]
    attacker = next(r[0] for r in rows if r[1] and r[4] == "block")
    benign = next(r[0] for r in rows if not r[1] and r[4] == "allow")
    app = create_app(db, load_policy(), [TOKEN], freeze_gc=False)
    with (
        running(app) as url,
        httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}) as client,
    ):
        got = client.post("/v1/decision", json={"account_id": attacker, "ip": "192.0.2.1"}).json()
        assert got["action"] == "block" and got["campaign_id"]
        assert (
            client.post("/v1/decision", json={"account_id": benign, "ip": "192.0.2.1"}).json()["action"]
            == "allow"
        )
