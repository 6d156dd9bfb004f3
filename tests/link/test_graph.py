"""The account graph: key groups become edges without all-pairs work; communities are seeded."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from distillwatch import engine
from distillwatch.link import EdgeOptions, build_edges, find_communities, merge_dense_neighbours
from distillwatch.link.minhash import set_band_keys


def _keys(con, rows: list[tuple[str, str]], name: str):
    return con.create_table(name, pa.table({"account_id": [r[0] for r in rows], "key": [r[1] for r in rows]}), temp=True)


def test_small_group_is_a_clique_big_group_is_sparse_and_weak() -> None:
    con = engine.connect()
    small = [(f"s{i}", "shared-proxy") for i in range(5)]
    big = [(f"b{i:03d}", "university-nat") for i in range(300)]
    filler = [(f"f{i:04d}", f"own-{i}") for i in range(2000)]  # accounts with keys nobody shares
    keys = _keys(con, small + big + filler, "k")
    edges = build_edges(con, [("link_ip", "infrastructure", keys, EdgeOptions(max_group=40, neighbours=6))], 2305)
    t = edges.to_pandas()
    s = t[t.src.str.startswith("s")]
    b = t[t.src.str.startswith("b")]
    assert len(s) == 10  # 5 choose 2
    assert len(b) <= 300 * 6  # circulant, not 300 choose 2 = 44,850
    assert b.weight.max() < s.weight.min()  # a key 300 accounts share is weaker evidence
    assert not t.src.str.startswith("f").any()
    assert (t.src < t.dst).all()


def test_every_kind_keeps_its_own_keys() -> None:
    con = engine.connect()
    a = _keys(con, [("x", "k1"), ("y", "k1")], "ka")
    b = _keys(con, [("y", "k2"), ("z", "k2")], "kb")
    opts = EdgeOptions()
    edges = build_edges(con, [("one", "infrastructure", a, opts), ("two", "content", b, opts)], 100)
    got = sorted(zip(edges.column("src").to_pylist(), edges.column("dst").to_pylist(), edges.column("kind").to_pylist(), strict=True))
    assert got == [("x", "y", "one"), ("y", "z", "two")]


def test_more_shared_keys_means_a_stronger_edge() -> None:
    con = engine.connect()
    rows = [("p", f"t{i}") for i in range(5)] + [("q", f"t{i}") for i in range(5)] + [("r", "t0"), ("s", "t0")]
    edges = build_edges(con, [("tpl", "content", _keys(con, rows, "kt"), EdgeOptions(key_scale=0.3))], 1000).to_pandas()
    pq = edges[(edges.src == "p") & (edges.dst == "q")].weight.iloc[0]
    rs = edges[(edges.src == "r") & (edges.dst == "s")].weight.iloc[0]
    assert pq > rs


def test_leiden_is_seeded_and_finds_two_groups() -> None:
    src, dst = [], []
    for group in (range(0, 5), range(5, 10)):
        for i in group:
            for j in group:
                if i < j:
                    src.append(i)
                    dst.append(j)
    src.append(0)
    dst.append(5)  # one weak bridge
    w = np.ones(len(src))
    w[-1] = 0.1
    a = find_communities(11, np.array(src), np.array(dst), w, seed=1)
    b = find_communities(11, np.array(src), np.array(dst), w, seed=1)
    assert np.array_equal(a, b)
    assert len(set(a[:5])) == 1 and len(set(a[5:10])) == 1
    assert a[0] != a[5]
    assert a[10] == -1  # no edge, no community


def test_merge_joins_fragments_of_one_fleet_not_a_sparse_giant() -> None:
    # Two dense fragments (0-3, 4-7) densely linked to each other, one sparse chain (8-15).
    membership = np.array([0] * 4 + [1] * 4 + [2] * 8)
    src, dst = [], []
    for i in range(8):
        for j in range(i + 1, 8):
            src.append(i)
            dst.append(j)
    for i in range(8, 15):
        src.append(i)
        dst.append(i + 1)
    src.append(7)
    dst.append(8)
    merged = merge_dense_neighbours(membership, np.array(src), np.array(dst), np.ones(len(src)))
    assert merged[0] == merged[4]
    assert merged[8] != merged[0]


def test_set_band_keys_similar_sets_collide() -> None:
    con = engine.connect()
    base = list(range(100))
    rows = {"account_id": [], "token": []}
    for acc, toks in (("a", base), ("b", base[:95] + [500, 501, 502, 503, 504]), ("c", list(range(1000, 1100)))):
        rows["account_id"] += [acc] * len(toks)
        rows["token"] += toks
    t = con.create_table("toks", pa.table(rows), temp=True)
    keys = set_band_keys(con, t, "bands", num_perm=48, rows=4).to_pyarrow().to_pandas()
    by = keys.groupby("account_id").key.apply(set)
    assert by["a"] & by["b"]
    assert not (by["a"] & by["c"])
    with pytest.raises(ValueError):
        set_band_keys(con, t, "x", num_perm=10, rows=4)
