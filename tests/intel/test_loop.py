"""The sharing loop end to end: provider A detects a campaign and exports it as STIX; provider B
imports the bundle into a fresh store and catches the same operator sooner than without it.

Simulated traffic (demo preset, moderate evasion, seeded) is split in time: A scans the days
before the cut, B the first three hours after it.  Detection code never sees the labels; the test
reads them only to count.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from distillwatch import store
from distillwatch.intel.stix_export import export_results
from distillwatch.intel.stix_import import import_bundle
from distillwatch.pipeline import scan
from distillwatch.simulate.config import preset
from distillwatch.simulate.engine import run as simulate

CUT = datetime(2026, 5, 12, tzinfo=UTC)
TS = pa.timestamp("us", tz="UTC")


def _window(ex: pa.Table, start: datetime | None, end: datetime) -> pa.Table:
    keep = pc.less(ex["ts"], pa.scalar(end, TS))
    if start is not None:
        keep = pc.and_(keep, pc.greater_equal(ex["ts"], pa.scalar(start, TS)))
    return ex.filter(keep)


def _counts(results: Path, labels: dict[str, str | None]) -> dict[str, int]:
    rows = pq.read_table(
        results / "accounts.parquet", columns=["account_id", "verdict", "reasons"]
    ).to_pylist()
    out = {"campaign_attack": 0, "campaign_seen": 0, "benign": 0, "benign_attack": 0, "partner_reasons_benign": 0}
    for r in rows:
        attack = r["verdict"] == "attack"
        if labels.get(r["account_id"]) == "C-demo-1":
            out["campaign_seen"] += 1
            out["campaign_attack"] += attack
        elif labels.get(r["account_id"]) is None:
            out["benign"] += 1
            out["benign_attack"] += attack
            out["partner_reasons_benign"] += "shared by partners" in r["reasons"]
    return out


@pytest.mark.slow
def test_an_imported_bundle_catches_the_campaign_sooner(tmp_path):
    data = tmp_path / "sim"
    simulate(preset("demo", seed=0, evasion="moderate"), data)
    ex = pq.read_table(data / "exchanges.parquet")
    labels = {r["account_id"]: r["campaign_id"] for r in pq.read_table(data / "labels.parquet").to_pylist()}

    # Provider A: the days before the cut; it detects, tracks and exports.
    pq.write_table(_window(ex, None, CUT), tmp_path / "a.parquet")
    scan(
        tmp_path / "a.parquet",
        tmp_path / "ra",
        accounts=data / "accounts.parquet",
        db=tmp_path / "a.duckdb",
        report=False,
    )
    bundle = tmp_path / "bundle.json"
    exported = export_results(tmp_path / "ra", bundle, producer="Provider A")
    assert exported.campaigns >= 1 and exported.indicators > 0

    # Provider B: the first three hours after the cut, in a fresh store, without and with A's bundle.
    b = _window(ex, CUT, CUT + timedelta(hours=3))
    pq.write_table(b, tmp_path / "b.parquet")
    got = {}
    for cond in ("without", "with"):
        db = tmp_path / f"b_{cond}.duckdb"
        if cond == "with":
            with store.open_store(db) as con:
                assert import_bundle(con, bundle).stored > 0
        scan(
            tmp_path / "b.parquet",
            tmp_path / f"rb_{cond}",
            accounts=data / "accounts.parquet",
            db=db,
            report=False,
        )
        got[cond] = _counts(tmp_path / f"rb_{cond}", labels)
    members = set(pc.unique(b["account_id"]).to_pylist()) & {a for a, c in labels.items() if c == "C-demo-1"}
    exchanges = int(pc.sum(pc.is_in(b["account_id"], value_set=pa.array(sorted(members)))).as_py())
    print(f"first three hours after the cut: {len(members)} campaign accounts, {exchanges} of its exchanges; {got}")

    # Measured with the detector of 24 Nov 06:20 (demo, moderate evasion, seed 0): in the first three hours
    # (91 accounts of C-demo-1 active) 30 are flagged without the bundle and 33 with it; after one hour neither
    # flags any (the stricter member-fit rules need more of each account's traffic); no benign account either way.
    assert got["with"]["campaign_attack"] > got["without"]["campaign_attack"]
    assert got["with"]["benign_attack"] <= got["without"]["benign_attack"]
    # a partner indicator may touch an honest account (a shared exit); it must stay rare and not decide
    assert got["with"]["partner_reasons_benign"] <= max(1, 0.01 * got["with"]["benign"])
