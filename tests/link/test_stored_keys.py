"""Keys read from stored tables (incremental scans) carry NOT NULL account ids; edges must not depend on it."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from distillwatch import engine
from distillwatch.link import EdgeOptions, PairSource, build_edges


def _rows() -> list[tuple[str, str]]:
    shared = [(f"a{i}", "proxy-1") for i in range(6)] + [(f"a{i}", "proxy-2") for i in range(3, 9)]
    # Two accounts only the registration records know: they count towards their key's group, no edges.
    unseen = [("z1", "proxy-2"), ("z2", "proxy-2")]
    return shared + unseen + [(f"a{i}", f"own-{i}") for i in range(9)]


def _edges(con, schema: pa.Schema, name: str):
    rows = _rows()
    keys = con.create_table(
        name,
        pa.table({"account_id": [r[0] for r in rows], "key": [r[1] for r in rows]}, schema=schema),
        temp=True,
    )
    ids = pa.array([f"a{i}" for i in range(9)], pa.string())
    return build_edges(con, [PairSource("link_ip", "infrastructure", 1.0, keys, EdgeOptions())], ids)


def test_not_null_account_ids_give_the_same_edges() -> None:
    con = engine.connect()
    nullable = pa.schema([("account_id", pa.string()), ("key", pa.string())])
    not_null = pa.schema([pa.field("account_id", pa.string(), nullable=False), ("key", pa.string())])
    plain = _edges(con, nullable, "k_nullable")
    stored = _edges(con, not_null, "k_not_null")
    assert len(plain.src) > 0
    for attr in ("src", "dst", "strength", "kind"):
        np.testing.assert_array_equal(getattr(plain, attr), getattr(stored, attr))
