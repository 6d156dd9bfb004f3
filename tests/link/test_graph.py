"""The account graph: key groups become edges without all-pairs work; communities are seeded."""

from __future__ import annotations

import random

import igraph as ig
import numpy as np
import pyarrow as pa
import pytest

from distillwatch import engine
from distillwatch.link import (
    EdgeOptions,
    PairSource,
    build_edges,
    find_communities,
    graph,
    merge_dense_neighbours,
    partition,
)
from distillwatch.link.minhash import set_band_keys


def _keys(con, rows: list[tuple[str, str]], name: str):
    return con.create_table(
        name, pa.table({"account_id": [r[0] for r in rows], "key": [r[1] for r in rows]}), temp=True
    )


def _source(kind: str, keys, family: str = "infrastructure", weight: float = 1.0, **opts) -> PairSource:
    return PairSource(kind, family, weight, keys, EdgeOptions(**opts))


def _ids(*names: str) -> pa.Array:
    return pa.array(list(names), pa.string())


def _named(edges, ids: pa.Array) -> list[tuple[str, str, str]]:
    names = ids.to_pylist()
    return sorted(
        (names[s], names[d], edges.kinds[k]) for s, d, k in zip(edges.src, edges.dst, edges.kind, strict=True)
    )


def test_small_group_is_a_clique_big_group_is_sparse_and_weak() -> None:
    con = engine.connect()
    small = [(f"s{i}", "shared-proxy") for i in range(5)]
    big = [(f"b{i:03d}", "university-nat") for i in range(300)]
    filler = [(f"f{i:04d}", f"own-{i}") for i in range(2000)]  # accounts with keys nobody shares
    rows = small + big + filler
    ids = _ids(*[r[0] for r in rows])
    keys = _keys(con, rows, "k")
    edges = build_edges(con, [_source("link_ip", keys, max_group=40, neighbours=6, max_partners=0)], ids)
    names = np.array(ids.to_pylist())
    src = names[edges.src]
    s = np.char.startswith(src.astype(str), "s")
    b = np.char.startswith(src.astype(str), "b")
    assert s.sum() == 10  # 5 choose 2
    assert b.sum() <= 300 * 6  # circulant, not 300 choose 2 = 44,850
    assert edges.strength[b].max() < edges.strength[s].min()  # a key 300 accounts share is weaker evidence
    assert not np.char.startswith(src.astype(str), "f").any()
    assert (edges.src < edges.dst).all()
    assert edges.src.dtype == np.int32 and edges.kind.dtype == np.int8


def test_every_kind_keeps_its_own_keys() -> None:
    con = engine.connect()
    a = _keys(con, [("x", "k1"), ("y", "k1")], "ka")
    b = _keys(con, [("y", "k2"), ("z", "k2")], "kb")
    ids = _ids("x", "y", "z")
    edges = build_edges(con, [_source("one", a), _source("two", b, family="content")], ids)
    assert _named(edges, ids) == [("x", "y", "one"), ("y", "z", "two")]
    assert edges.families == ["infrastructure", "content"]


def test_more_shared_keys_means_a_stronger_edge() -> None:
    con = engine.connect()
    rows = (
        [("p", f"t{i}") for i in range(5)] + [("q", f"t{i}") for i in range(5)] + [("r", "t0"), ("s", "t0")]
    )
    filler = [(f"f{i}", f"own-{i}") for i in range(996)]
    ids = _ids("p", "q", "r", "s", *[f[0] for f in filler])
    edges = build_edges(con, [_source("tpl", _keys(con, rows + filler, "kt"), key_scale=0.3)], ids)
    strength = {(int(s), int(d)): w for s, d, w in zip(edges.src, edges.dst, edges.strength, strict=True)}
    assert strength[(0, 1)] > strength[(2, 3)]


def test_min_shared_drops_pairs_sharing_too_few_keys() -> None:
    con = engine.connect()
    rows = [("p", "t0"), ("p", "t1"), ("q", "t0"), ("q", "t1"), ("r", "t0")]
    ids = _ids("p", "q", "r")
    edges = build_edges(con, [_source("nd", _keys(con, rows, "km"), min_shared=2)], ids)
    assert _named(edges, ids) == [("p", "q", "nd")]


def test_registration_only_accounts_count_in_group_sizes_but_get_no_edges() -> None:
    con = engine.connect()
    # "ghost" has an account record (so a key) but no traffic: it is not among the scanned accounts.
    rows = [("a", "card"), ("b", "card"), ("ghost", "card")]
    ids = _ids("a", "b", "c")
    with_ghost = build_edges(con, [_source("pay", _keys(con, rows, "kg"))], ids)
    without = build_edges(con, [_source("pay", _keys(con, rows[:2], "kn"))], ids)
    assert _named(with_ghost, ids) == [("a", "b", "pay")]
    # The key three accounts share is weaker than one only two share.
    assert with_ghost.strength[0] < without.strength[0]


def test_each_account_keeps_its_strongest_partners_only() -> None:
    con = engine.connect()
    # A hub shares one key with each of 10 accounts; with h0..h3 it shares more keys (stronger edges).
    rows = [("hub", f"k{i}") for i in range(10)] + [(f"h{i}", f"k{i}") for i in range(10)]
    rows += [("hub", f"x{i}") for i in range(4)] + [(f"h{i}", f"x{i}") for i in range(4)]
    filler = [(f"f{i}", f"own-{i}") for i in range(100)]
    ids = _ids("hub", *[f"h{i}" for i in range(10)], *[f[0] for f in filler])
    capped = build_edges(con, [_source("k", _keys(con, rows + filler, "kc"), max_partners=3)], ids)
    full = build_edges(con, [_source("k", _keys(con, rows + filler, "kf"), max_partners=0)], ids)
    assert len(full.src) == 10
    # Each h_i has the hub as its only partner, so it keeps that edge even where the hub would drop it.
    assert len(capped.src) == 10
    # Within the hub's own top 3 are only accounts that share two keys with it.
    two_keys = capped.strength >= np.sort(capped.strength)[-4]
    assert set(capped.dst[two_keys].tolist()) <= {1, 2, 3, 4}


def test_cap_bounds_the_edges_of_a_dense_group() -> None:
    con = engine.connect()
    rows = [(f"a{i:02d}", "k") for i in range(30)]  # one clique of 30 (max_group 40): 435 pairs
    ids = _ids(*[r[0] for r in rows], *[f"f{i}" for i in range(500)])
    keys = _keys(con, rows, "kd")
    capped = build_edges(con, [_source("k", keys, max_partners=5)], ids)
    degree = np.bincount(capped.src, minlength=30) + np.bincount(capped.dst, minlength=30)
    assert len(capped.src) < 435
    assert degree[:30].min() >= 5 - 1  # every account keeps its own top 5 (its rank counts from 0)


def test_combined_pairs_sum_weighted_kinds_and_drop_weak_ones() -> None:
    con = engine.connect()
    a = _keys(con, [("x", "k1"), ("y", "k1"), ("z", "k3"), ("w", "k3")], "ca")
    b = _keys(con, [("x", "k2"), ("y", "k2")], "cb")
    ids = _ids("x", "y", "z", "w", *[f"f{i}" for i in range(50)])
    edges = build_edges(
        con, [_source("one", a, weight=0.5), _source("two", b, weight=0.01)], ids, min_pair_weight=0.2
    )
    typed = {
        (int(s), int(d), edges.kinds[k]): w
        for s, d, k, w in zip(edges.src, edges.dst, edges.kind, edges.weighted, strict=True)
    }
    assert set(zip(edges.pair_src.tolist(), edges.pair_dst.tolist(), strict=True)) == {(0, 1), (2, 3)}
    assert edges.pair_weight[0] == pytest.approx(typed[(0, 1, "one")] + typed[(0, 1, "two")])
    dropped = build_edges(con, [_source("two", b, weight=0.01)], ids, min_pair_weight=0.2)
    assert (
        len(dropped.src) == 1 and len(dropped.pair_src) == 0
    )  # typed edges stay; the weak pair is not combined


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
    for acc, toks in (
        ("a", base),
        ("b", base[:95] + [500, 501, 502, 503, 504]),
        ("c", list(range(1000, 1100))),
    ):
        rows["account_id"] += [acc] * len(toks)
        rows["token"] += toks
    t = con.create_table("toks", pa.table(rows), temp=True)
    keys = set_band_keys(con, t, "bands", num_perm=48, rows=4).to_pyarrow().to_pandas()
    by = keys.groupby("account_id").key.apply(set)
    assert by["a"] & by["b"]
    assert not (by["a"] & by["c"])
    with pytest.raises(ValueError):
        set_band_keys(con, t, "x", num_perm=10, rows=4)


def test_edges_are_the_same_on_every_run() -> None:
    # Many keys per pair and a tight cap: any order dependence in the engine's sums would move a
    # strength in its last bits, and with it a rank or a threshold decision.
    rng = np.random.default_rng(3)
    accounts = [f"a{i:04d}" for i in range(600)]
    rows = [(accounts[int(i)], f"k{int(rng.integers(0, 400))}") for i in rng.integers(0, 600, 20_000)]
    ids = _ids(*accounts)
    runs = []
    for attempt in range(2):
        con = engine.connect()
        keys = _keys(con, rows, f"kr{attempt}")
        e = build_edges(
            con, [_source("k", keys, max_partners=5, key_scale=0.3, weight=0.7)], ids, min_pair_weight=0.1
        )
        runs.append(e)
    a, b = runs
    for field in ("src", "dst", "kind", "strength", "weighted", "pair_src", "pair_dst", "pair_weight"):
        assert np.array_equal(getattr(a, field), getattr(b, field)), field


def test_key_cap_keeps_each_accounts_rarest_keys() -> None:
    con = engine.connect()
    # "p" shares a rare key with "q" (group of 2) and common keys with 20 others (groups of 21).
    rows = [("p", "rare"), ("q", "rare")] + [("p", f"common{j}") for j in range(3)]
    rows += [(f"o{i:02d}", f"common{j}") for i in range(20) for j in range(3)]
    ids = _ids("p", "q", *[f"o{i:02d}" for i in range(20)], *[f"f{i}" for i in range(100)])
    capped = build_edges(con, [_source("k", _keys(con, rows, "kk"), max_keys=1, max_partners=0)], ids)
    names = np.array(ids.to_pylist())
    partners_of_p = set(names[capped.dst[capped.src == 0]].tolist())
    assert partners_of_p == {"q"}  # p kept only its rarest key
    full = build_edges(con, [_source("k", _keys(con, rows, "kn"), max_partners=0)], ids)
    assert len(set(full.dst[full.src == 0].tolist())) == 21


def test_pairs_made_in_slices_of_accounts_give_the_same_edges() -> None:
    # Small and big groups (circulant), a partner cap, a shared-key floor and registration-only accounts:
    # every step that ranks or sums per account must see all of an account's pair rows in its slice.
    rng = np.random.default_rng(11)
    accounts = [f"a{i:04d}" for i in range(500)]
    # Rare keys (groups of about 8, cliques) and popular ones (about 100 accounts, circulants).
    keys_drawn = np.concatenate([rng.integers(0, 1_500, 12_000), rng.integers(1_500, 1_540, 4_000)])
    rows = [
        (f"x{int(i):04d}", f"k{int(k)}")
        for i, k in zip(rng.integers(0, 700, 16_000), keys_drawn, strict=True)
    ]
    rows = [(a.replace("x", "a") if int(a[1:]) < 500 else a, k) for a, k in rows]
    ids = _ids(*accounts)
    runs = {}
    for budget in (0, 25_000, 4_500):  # one slice of the first signal, a few, many
        con = engine.connect()
        keys = _keys(con, rows, "ks")
        opts = {
            "max_group": 20,
            "neighbours": 4,
            "max_partners": 7,
            "min_shared": 2,
            "pair_rows_per_slice": budget,
        }
        second = _source("m", _keys(con, rows[::3], "km"), weight=0.4, max_group=12, neighbours=3)
        runs[budget] = build_edges(con, [_source("k", keys, **opts), second], ids, min_pair_weight=0.2)
    one = runs[0]
    assert len(one.src) > 1_000 and len(set(one.kind.tolist())) == 2
    for budget in (25_000, 4_500):
        for field in ("src", "dst", "kind", "strength", "weighted", "pair_src", "pair_dst", "pair_weight"):
            assert np.array_equal(getattr(one, field), getattr(runs[budget], field)), (budget, field)


def test_slice_count_follows_the_expected_pair_rows() -> None:
    con = engine.connect()
    # One group of 5 (a clique: 4 partners each) and one of 30 (circulant, 2 x 3 neighbours each); each
    # pair is made once, from its smaller end.
    rows = [(f"s{i}", "small") for i in range(5)] + [(f"b{i:02d}", "big") for i in range(30)]
    ids = _ids(*[r[0] for r in rows])
    opts = EdgeOptions(max_group=10, neighbours=3, pair_rows_per_slice=60)
    ranked = graph._ranked_keys(_keys(con, rows, "kc"), graph.account_index(con, ids), len(ids), opts)
    expected = graph._expected_pair_rows(ranked, opts)
    assert expected == (5 * 4 + 30 * 6) // 2
    assert graph._slice_count(expected, opts) == 2
    assert graph._slice_count(expected, EdgeOptions(pair_rows_per_slice=0)) == 1


def test_graph_built_in_slices_gives_the_same_communities(monkeypatch: pytest.MonkeyPatch) -> None:
    # The reference: the whole edge list in one call and the weights as an edge attribute.
    rng = np.random.default_rng(5)
    n = 400
    src = rng.integers(0, n, 6_000).astype(np.int32)
    dst = rng.integers(0, n, 6_000).astype(np.int32)
    keep = src != dst
    src, dst = src[keep], dst[keep]
    weight = rng.random(len(src))
    g = ig.Graph(n=n, edges=list(zip(src.tolist(), dst.tolist(), strict=True)), directed=False)
    g.es["weight"] = weight.tolist()
    state = random.getstate()
    random.seed(0)
    ig.set_random_number_generator(random)
    try:
        expected = g.community_leiden(
            objective_function="modularity", weights="weight", n_iterations=partition.LEIDEN_ITERATIONS
        ).membership
    finally:
        random.setstate(state)
    monkeypatch.setattr(partition, "GRAPH_EDGES_PER_SLICE", 777)
    got = find_communities(n, src, dst, weight, seed=0)
    assert len(set(expected)) > 3
    assert got.tolist() == expected


def test_partition_of_an_edge_subgraph_is_that_of_the_kept_pairs() -> None:
    # The link stage cuts the harvesting accounts' graph from the full one inside igraph instead of
    # building it again: it must be the same graph, so the same seeded partition.
    rng = np.random.default_rng(8)
    n = 600
    src = rng.integers(0, n, 9_000).astype(np.int32)
    dst = rng.integers(0, n, 9_000).astype(np.int32)
    ok = src != dst
    src, dst = np.minimum(src, dst)[ok], np.maximum(src, dst)[ok]
    weight = rng.random(len(src))
    keep = rng.random(n) < 0.6
    sub = keep[src] & keep[dst]
    full = partition.account_graph(n, src, dst)
    cut = partition.edge_subgraph(full, sub)
    assert cut.vcount() == n and cut.get_edgelist() == list(
        zip(src[sub].tolist(), dst[sub].tolist(), strict=True)
    )
    got = partition.leiden(cut, src[sub], dst[sub], weight[sub], seed=3)
    want = find_communities(n, src[sub], dst[sub], weight[sub], seed=3)
    assert np.array_equal(got, want)
    assert (got[~keep] == -1).all() and len(set(got[got >= 0].tolist())) > 1


def _tables(con) -> set[str]:
    return {r[0] for r in con.con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}


def test_build_edges_leaves_only_its_inputs_in_the_engine() -> None:
    # Sliced pairs (3 slices) make the most working tables; none of them outlives the edges.
    con = engine.connect()
    rows = [(f"a{i % 40:02d}", f"k{i % 13}") for i in range(400)]
    keys = _keys(con, rows, "kw")
    before = _tables(con)
    ids = _ids(*sorted({r[0] for r in rows}))
    edges = build_edges(con, [_source("k", keys, pair_rows_per_slice=2_500, max_partners=3)], ids)
    assert len(edges.src) > 0
    assert _tables(con) == before
    # The keys' table stays readable after the engine handed its memory back.
    assert con.table("kw").to_pyarrow().num_rows == len(rows)
