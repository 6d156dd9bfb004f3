"""The Spark engine: the backend's additions, distributed per-text work, and verdicts equal to DuckDB's on the demo.

Needs the ``spark`` extra (pyspark + Java 17); skipped cleanly without it.
Spark runs in local mode (``local[2]``), so no cluster is needed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

pytest.importorskip("pyspark")

pytestmark = pytest.mark.spark

# The demo preset at a third of its size: the same groups, campaigns and hard cases, a CI-sized run.
DEMO_SCALE = 0.35


@pytest.fixture(scope="module")
def con():
    from distillwatch import spark

    backend = spark.connect("local[2]")
    yield backend
    backend.disconnect()


def test_temp_tables_are_materialised_views(con) -> None:
    t = con.create_table("dw_t", pa.table({"k": [3, 1, 2], "s": ["c", "a", "b"]}), temp=True, overwrite=True)
    assert t.order_by("k").to_pyarrow().column("s").to_pylist() == ["a", "b", "c"]
    # overwriting replaces the rows; refusing to overwrite is an error, as on DuckDB
    t2 = con.create_table("dw_t", t.filter(t.k > 1), temp=True, overwrite=True)
    assert sorted(t2.to_pyarrow().column("k").to_pylist()) == [2, 3]
    with pytest.raises(ValueError, match="exists"):
        con.create_table("dw_t", t2, temp=True)


def test_hash_is_64_bit_and_mode_compiles(con) -> None:
    t = con.create_table("dw_h", pa.table({"g": ["a", "a", "a", "b"], "v": ["x", "y", "y", "z"]}), temp=True, overwrite=True)
    h = t.mutate(h=t.v.hash()).to_pyarrow().column("h")
    assert h.type == pa.int64()
    # xxhash64 values outside the 32-bit range appear for ordinary strings; the 32-bit hash() never does
    assert any(abs(x) > 2**31 for x in h.to_pylist())
    m = t.group_by("g").aggregate(top=t.v.mode()).order_by("g").to_pyarrow()
    assert m.column("top").to_pylist() == ["y", "z"]


def test_map_arrow_runs_every_batch(con) -> None:
    from distillwatch.features import enrichment
    from distillwatch.spark import map_arrow
    from distillwatch.spark.text import SYSTEM_FACTS_SCHEMA, _system_facts

    n = 25_000  # several Arrow batches (Spark's default is 10,000 rows each)
    texts = np.where(np.arange(n) % 3 == 0, "Think step by step before answering.", "You are a helpful assistant.")
    texts = np.char.add(texts, np.arange(n).astype(str))
    t = con.create_table(
        "dw_m", pa.table({"system_key": np.arange(n, dtype=np.int64), "system": pa.array(texts)}), temp=True, overwrite=True
    )
    # A library function: test-module functions are not importable on the Python workers.
    out = map_arrow(con, t, _system_facts, SYSTEM_FACTS_SCHEMA, "dw_m_out").to_pyarrow().sort_by("system_key")
    assert out.column("system_key").to_pylist() == list(range(n))
    want = enrichment.system_cot(pa.array(texts)).to_pylist()
    assert out.column("system_cot").to_pylist() == want
    assert 0 < sum(want) < n


def test_text_facts_equal_local_path(con) -> None:
    """The executors' per-text facts equal the local path's for the same texts."""
    from distillwatch.features import enrichment
    from distillwatch.spark.text import text_tables

    prompts = [
        "Think step by step: write a Python function that parses 42 JSON files",
        "Write a poem about autumn in Lisbon",
        "Explain your reasoning, then implement an LRU cache in Rust with tests",
        None,
    ]
    keyed = con.create_table(
        "dw_keyed",
        pa.table(
            {
                "prompt": pa.array(prompts, pa.string()),
                "prompt_key": pa.array([11, 12, 13, 14], pa.int64()),
                "system": pa.array(["Show your chain of thought.", None, None, None], pa.string()),
                "system_key": pa.array([21, None, None, None], pa.int64()),
            }
        ),
        temp=True,
        overwrite=True,
    )
    pf, sf, bt = text_tables(con, keyed, num_perm=64, bands=16)
    got = pf.order_by("prompt_key").to_pyarrow()
    local = enrichment.prompt_facts(pa.array(prompts[:3], pa.string()))
    assert got.column("prompt_key").to_pylist() == [11, 12, 13]
    for col in ("capability", "cot", "template_hash"):
        assert got.column(col).to_pylist() == local.column(col).to_pylist(), col
    assert sf.to_pyarrow().column("system_cot").to_pylist() == enrichment.system_cot(pa.array(["Show your chain of thought."])).to_pylist()
    rows, band = enrichment.prompt_band_keys(pa.array(prompts[:3], pa.string()))
    want = sorted(zip(np.array([11, 12, 13])[rows].tolist(), band.tolist(), strict=True))
    b = bt.to_pyarrow()
    assert sorted(zip(b.column("prompt_key").to_pylist(), b.column("band").to_pylist(), strict=True)) == want


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    from distillwatch.simulate import preset, simulate

    out = tmp_path_factory.mktemp("demo")
    simulate(preset("demo", scale=DEMO_SCALE, seed=5), out)
    return out


def _results(path: Path) -> dict[str, tuple]:
    t = pq.read_table(path / "accounts.parquet", columns=["account_id", "verdict", "campaign_id", "score"])
    return {a: (v, c, s) for a, v, c, s in zip(*(t.column(i).to_pylist() for i in range(4)), strict=True)}


@pytest.mark.slow
def test_spark_verdicts_match_duckdb(demo: Path, tmp_path: Path) -> None:
    from distillwatch.pipeline import scan

    kw = {"accounts": demo / "accounts.parquet", "track": False, "report": False}
    duck = scan(demo / "exchanges.parquet", tmp_path / "duck", db=tmp_path / "duck.duckdb", engine="duckdb", **kw)
    spark = scan(demo / "exchanges.parquet", tmp_path / "spark", db=tmp_path / "spark.duckdb", engine="spark", **kw)
    d, s = _results(tmp_path / "duck"), _results(tmp_path / "spark")
    assert d.keys() == s.keys()
    assert duck.verdicts["attack"] > 0, "the demo's campaigns must be found for the comparison to mean anything"
    differing = {a: (d[a][0], s[a][0]) for a in d if d[a][0] != s[a][0]}
    assert not differing, f"{len(differing)} accounts differ, e.g. {list(differing.items())[:5]}"
    # Same campaigns with the same members (labels are assigned by size, so equal partitions give equal ids).
    assert {a: v[1] for a, v in d.items()} == {a: v[1] for a, v in s.items()}
    assert len(duck.campaigns) == len(spark.campaigns)
    assert duck.exchanges == spark.exchanges
