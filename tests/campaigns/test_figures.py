"""Campaign figures against a direct computation over the exchanges (seeded synthetic data)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import ibis
import numpy as np
import pyarrow as pa
import pytest

from distillwatch.campaigns import build
from distillwatch.campaigns.build import SAMPLE_PROMPTS, build_campaigns

DAY = 86_400


def _exchanges(rng: np.random.Generator, rows: int, accounts: int) -> pa.Table:
    start = datetime(2026, 3, 1, tzinfo=UTC)
    ts = [start + timedelta(seconds=int(s)) for s in rng.integers(0, 6 * DAY, rows)]
    ips = rng.integers(0, 40, rows)
    prompts = [None if rng.random() < 0.6 else f"prompt {i}\x1b[31m" for i in range(rows)]
    return pa.table(
        {
            "request_id": [f"r{i}" for i in range(rows)],
            "account_id": [f"a{k}" for k in rng.integers(0, accounts, rows)],
            "ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
            "daynum": [int(t.timestamp()) // DAY for t in ts],
            "ip": [f"10.0.{i % 7}.{i}" for i in ips],
            "prefix": [f"10.0.{i % 7}.0/24" for i in ips],
            "asn": pa.array([None if i % 11 == 0 else 64_500 + i % 5 for i in ips], pa.int64()),
            "country": [["US", "DE", "FR"][i % 3] for i in ips],
            "is_datacenter": pa.array([bool(i % 2) if i % 13 else None for i in ips]),
            "is_vpn": [bool(i % 3 == 0) for i in ips],
            "is_tor": [bool(i == 5) for i in ips],
            "user_agent": [["python-requests/2.31", "curl/8", None][k] for k in rng.integers(0, 3, rows)],
            "model": [["m-large", "m-small"][k] for k in rng.integers(0, 2, rows)],
            "prompt": prompts,
        }
    )


@pytest.fixture(scope="module", params=[4.0, 0.02], ids=["oversampled", "cut-too-low"])
def scanned(request) -> tuple[pa.Table, pa.Table, list]:
    """Campaign records of synthetic exchanges; ``cut-too-low``: so few exchanges pass the candidates' hash cut-off
    that every large campaign is ranked again over all its exchanges."""
    rng = np.random.default_rng(7)
    ex = _exchanges(rng, 3_000, 60)
    accounts = [f"a{k}" for k in range(60)]
    # Three campaigns and accounts outside any; campaign C003 has one account, so few candidate exchanges.
    campaign = ["C001"] * 20 + ["C002"] * 15 + ["C003"] + [None] * 24
    membership = pa.table({"account_id": accounts, "campaign_id": campaign}).filter(pa.array([c is not None for c in campaign]))
    facts = pa.table(
        {
            "account_id": accounts,
            "capability": [["coding", "math", None][k % 3] for k in range(60)],
            "cot": [k % 4 == 0 for k in range(60)],
            "template_hash": [f"t{k % 5}" for k in range(60)],
        }
    )
    records = pa.table(
        {
            "account_id": accounts,
            "created_at": pa.array([datetime(2026, 2, 1, k % 24, tzinfo=UTC) for k in range(60)], pa.timestamp("us", tz="UTC")),
            "email_domain": [f"d{k % 4}.example" for k in range(60)],
            "email_disposable": [k % 2 == 0 for k in range(60)],
            "payment_accounts": [k % 3 for k in range(60)],
            "payment_fingerprint": [f"p{k % 9}" for k in range(60)],
        }
    )
    con = ibis.duckdb.connect()
    t = con.create_table("ex", ex)
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setattr(build, "CANDIDATE_OVERSAMPLE", request.param)
    records_out = build_campaigns(
        con, t.drop("prompt"), con.create_table("facts", facts), con.create_table("records", records), membership,
        evidence={}, families={}, confidence={"C001": 0.9}, total_exchanges=ex.num_rows, texts=t,
    )
    monkeypatch.undo()
    return ex, membership, records_out


def test_volume_dates_and_infrastructure_match_the_exchanges(scanned) -> None:
    ex, membership, records = scanned
    camp = dict(zip(membership["account_id"].to_pylist(), membership["campaign_id"].to_pylist(), strict=True))
    rows = [r | {"campaign_id": camp.get(r["account_id"])} for r in ex.to_pylist()]
    assert [c.campaign_id for c in records] == ["C001", "C002", "C003"]
    for c in records:
        mine = [r for r in rows if r["campaign_id"] == c.campaign_id]
        assert c.exchanges == len(mine)
        assert c.accounts == len({r["account_id"] for r in mine})
        assert c.first_seen == min(r["ts"] for r in mine) and c.last_seen == max(r["ts"] for r in mine)
        assert c.exchanges_per_account_per_day == len(mine) / len({(r["account_id"], r["daynum"]) for r in mine})
        assert c.infrastructure.addresses == len({r["ip"] for r in mine})
        assert c.infrastructure.asns == len({r["asn"] for r in mine if r["asn"] is not None})
        assert c.infrastructure.datacenter_share == sum(bool(r["is_datacenter"]) for r in mine) / len(mine)
        assert c.infrastructure.tor_share == sum(r["is_tor"] for r in mine) / len(mine)
        days = {}
        for r in mine:
            day = r["ts"].date().isoformat()
            n, accs = days.get(day, (0, set()))
            days[day] = (n + 1, accs | {r["account_id"]})
        assert [(d.day, d.exchanges, d.accounts) for d in c.daily] == [(d, n, len(a)) for d, (n, a) in sorted(days.items())]
        # Top values: most exchanges first, ties by value; nulls never listed.
        for column, listed in (("asn", c.infrastructure.top_asns), ("user_agent", c.infrastructure.user_agents)):
            counts: dict = {}
            for r in mine:
                if r[column] is not None:
                    counts[r[column]] = counts.get(r[column], 0) + 1
            expected = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
            assert [(x.value, x.count) for x in listed] == [(str(v), n) for v, n in expected]
        for ind in (i for i in c.indicators if i.type == "asn"):
            seen = [r["ts"] for r in mine if str(r["asn"]) == ind.value]
            assert (ind.first_seen, ind.last_seen) == (min(seen), max(seen))


def test_sample_prompts_are_the_first_by_request_hash_among_those_with_a_prompt(scanned) -> None:
    ex, membership, records = scanned
    con = ibis.duckdb.connect()
    con.create_table("ex", ex)
    con.create_table("m", membership)
    # The definition, in one query: rank every campaign exchange that has a prompt (by the hash as ibis orders it).
    expected: dict[str, list[str]] = {}
    for cid, prompt in con.raw_sql(
        "SELECT campaign_id, prompt FROM (SELECT m.campaign_id, ex.prompt, row_number() OVER (PARTITION BY m.campaign_id "
        "ORDER BY CAST(CAST(hash(ex.request_id) AS BIT) AS BIGINT), ex.request_id) AS r FROM ex JOIN m USING (account_id) WHERE ex.prompt IS NOT NULL) "
        "WHERE r <= ? ORDER BY campaign_id, r",
        parameters=[SAMPLE_PROMPTS],
    ).fetchall():
        expected.setdefault(cid, []).append(prompt.replace("\x1b", " "))
    assert {c.campaign_id: c.sample_prompts for c in records} == expected
    assert all(len(v) == SAMPLE_PROMPTS for v in expected.values())


def test_sample_prompts_fall_back_when_the_candidates_lack_prompts() -> None:
    rng = np.random.default_rng(3)
    ex = _exchanges(rng, 400, 4)
    # Only 2 exchanges of the whole campaign carry a prompt: the candidates (first SAMPLE_CANDIDATES by hash)
    # hold fewer than SAMPLE_PROMPTS, so the campaign is ranked again over the exchanges with a prompt.
    keep = {"r10", "r391"}
    ex = ex.set_column(
        ex.schema.get_field_index("prompt"), "prompt",
        pa.array([f"p {r}" if r in keep else None for r in ex["request_id"].to_pylist()], pa.string()),
    )
    membership = pa.table({"account_id": ["a0", "a1", "a2", "a3"], "campaign_id": ["C001"] * 4})
    con = ibis.duckdb.connect()
    t = con.create_table("ex", ex)
    facts = con.create_table("facts", pa.table({"account_id": ["a0"], "capability": ["coding"], "cot": [False], "template_hash": ["t"]}))
    records = con.create_table(
        "records",
        pa.table({
            "account_id": ["a0"], "created_at": pa.array([None], pa.timestamp("us", tz="UTC")), "email_domain": ["x.example"],
            "email_disposable": [False], "payment_accounts": [1], "payment_fingerprint": ["p"],
        }),
    )
    (c,) = build_campaigns(con, t.drop("prompt"), facts, records, membership, {}, {}, {}, ex.num_rows, texts=t)
    assert sorted(c.sample_prompts) == ["p r10", "p r391"]
