"""The account graph: typed weighted edges from shared keys, and communities (Leiden, seeded).

No all-pairs comparison anywhere.  For each pair signal, accounts are grouped
by key in the engine.  A group of at most ``max_group`` accounts links all its
members; a larger group links each member to ``neighbours`` others only (a
circulant over a key-specific shuffle), so a university NAT or a popular user
agent becomes sparse, weak evidence instead of a clique.  A key's weight falls
with its group size like an inverse document frequency: ln(N/size)/ln(N/2) for
N accounts, 1 for a key two accounts share, near 0 for a key everyone has.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import ibis
import ibis.expr.types as ir
import igraph as ig
import numpy as np
import pyarrow as pa
from ibis import _
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

EDGE_SCHEMA = pa.schema(
    [("src", pa.string()), ("dst", pa.string()), ("kind", pa.string()), ("family", pa.string()), ("weight", pa.float64())]
)


@dataclass
class EdgeOptions:
    max_group: int = 40
    neighbours: int = 6
    key_scale: float = 1.0


def key_edges(con, keys: ir.Table, n_accounts: int, opts: EdgeOptions, name: str = "keys") -> ir.Table:
    """(account_id, key) -> (src, dst, strength) with src < dst, strength in 0..1 (noisy-or of shared keys)."""
    keys = keys.select("account_id", key=keys.key.cast("string")).distinct()
    sizes = keys.group_by("key").aggregate(size=_.count())
    n = max(n_accounts, 3)
    idf = ((n / sizes.size.cast("float64")).ln() / float(np.log(n / 2.0))).clip(lower=0.0, upper=1.0)
    sizes = sizes.filter(sizes.size >= 2).mutate(w=idf)
    k = keys.join(sizes, "key")
    # Shuffle within a key by a key-specific hash, so big groups link different neighbours per key.
    w = ibis.window(group_by="key", order_by=[(k.account_id.concat("|", k.key)).hash(), k.account_id])
    # A table per signal: the expressions below stay lazy until all kinds are unioned.
    k = con.create_table(f"dw_keyrank_{name}", k.mutate(rank=ibis.row_number().over(w)), temp=True, overwrite=True)

    small = k.filter(k.size <= opts.max_group)
    a, b = small.view(), small.view()
    small_pairs = a.join(b, [a.key == b.key, a.account_id < b.account_id]).select(
        src=a.account_id, dst=b.account_id, w=a.w
    )

    big = k.filter(k.size > opts.max_group)
    offsets = ibis.memtable({"off": list(range(1, opts.neighbours + 1))})
    reach = big.cross_join(offsets)
    reach = reach.mutate(target=(reach["rank"] + reach.off) % reach.size)
    other = big.view()
    big_pairs = reach.join(other, [reach.key == other.key, reach.target == other["rank"]]).select(
        src=ibis.least(reach.account_id, other.account_id),
        dst=ibis.greatest(reach.account_id, other.account_id),
        w=reach.w,
    )
    pairs = small_pairs.union(big_pairs, distinct=False)
    pairs = pairs.filter(pairs.src != pairs.dst)
    agg = pairs.group_by(["src", "dst"]).aggregate(total=pairs.w.sum())
    return agg.mutate(strength=1.0 - (-opts.key_scale * agg.total).exp()).select("src", "dst", "strength")


def build_edges(con, pair_keys: list[tuple[str, str, ir.Table, EdgeOptions]], n_accounts: int) -> pa.Table:
    """Edges of every pair signal: ``pair_keys`` holds (signal id, family, keys table, options)."""
    parts = []
    for kind, family, keys, opts in pair_keys:
        e = key_edges(con, keys, n_accounts, opts, name=kind)
        parts.append(e.mutate(kind=ibis.literal(kind), family=ibis.literal(family)).select(
            "src", "dst", "kind", "family", weight=e.strength
        ))
    if not parts:
        return pa.Table.from_pylist([], schema=EDGE_SCHEMA)
    allp = parts[0].union(*parts[1:], distinct=False) if len(parts) > 1 else parts[0]
    table = allp.order_by(["src", "dst", "kind"]).to_pyarrow()
    return table.select(EDGE_SCHEMA.names).cast(EDGE_SCHEMA)


def find_communities(
    n: int,
    src: np.ndarray,
    dst: np.ndarray,
    weight: np.ndarray,
    seed: int = 0,
    resolution: float = 1.0,
) -> np.ndarray:
    """Leiden communities (modularity objective, seeded) of a weighted graph of ``n`` accounts.

    ``src``/``dst`` are account indices.  Returns the community of each account;
    accounts without an edge get -1.
    """
    membership = np.full(n, -1, dtype=np.int64)
    if len(src) == 0:
        return membership
    g = ig.Graph(n=n, edges=np.column_stack([src, dst]).astype(np.int64), directed=False)
    g.es["weight"] = np.asarray(weight, dtype=float).tolist()
    # igraph draws from Python's `random` once it is installed as its generator: seed it for repeatable runs.
    state = random.getstate()
    random.seed(seed)
    ig.set_random_number_generator(random)
    try:
        part = g.community_leiden(objective_function="modularity", weights="weight", resolution=resolution, n_iterations=-1)
    finally:
        random.setstate(state)
    membership = np.asarray(part.membership, dtype=np.int64)
    membership[np.asarray(g.degree()) == 0] = -1
    return membership


def merge_dense_neighbours(
    membership: np.ndarray, src: np.ndarray, dst: np.ndarray, weight: np.ndarray, ratio: float = 0.5
) -> np.ndarray:
    """Merges communities whose mutual edges are about as dense as their insides.

    Modularity has a resolution limit: a tight group that carries much of the
    graph's weight scores higher when cut in pieces, so one fleet can come back
    as several communities.  Two communities are merged when the weight per
    account pair between them is at least ``ratio`` times the larger of their
    internal weights per pair, and the denser side decides, so a sparse giant
    community does not absorb a tight one.  ``src``/``dst`` are account indices.
    """
    labels = membership.copy()
    valid = (labels[src] >= 0) & (labels[dst] >= 0)
    if not np.any(valid):
        return labels
    a, b, w = labels[src][valid], labels[dst][valid], weight[valid]
    k = int(labels.max()) + 1
    sizes = np.bincount(labels[labels >= 0], minlength=k).astype(np.float64)
    inside = np.bincount(a[a == b], weights=w[a == b], minlength=k)
    density = np.divide(inside, sizes * (sizes - 1) / 2, out=np.zeros(k), where=sizes > 1)
    cross = a != b
    lo, hi = np.minimum(a[cross], b[cross]), np.maximum(a[cross], b[cross])
    pair_key = lo * k + hi
    keys, inv = np.unique(pair_key, return_inverse=True)
    between = np.bincount(inv, weights=w[cross])
    pl, ph = keys // k, keys % k
    between_density = between / (sizes[pl] * sizes[ph])
    # Against the denser side: a sparse giant community must not swallow a tight fleet.
    merge = between_density >= ratio * np.maximum(density[pl], density[ph])
    # Connected components over the (few) community pairs that qualify.
    link = coo_matrix((np.ones(int(merge.sum())), (pl[merge], ph[merge])), shape=(k, k))
    _, roots = connected_components(link, directed=False)
    out = labels.copy()
    out[labels >= 0] = roots[labels[labels >= 0]]
    return out
