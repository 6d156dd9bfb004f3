"""Communities of the account graph: Leiden (igraph, seeded), and merging a fleet that modularity cut apart.

The edges come from ``graph.build_edges`` as numpy arrays of account positions; this module turns
them into an igraph graph and partitions it.  It is separate from the edge building so the two can
change (and be profiled) independently.
"""

from __future__ import annotations

import itertools
import random

import igraph as ig
import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

# Edges made into Python int pairs at a time while building the Leiden graph (see ``find_communities``).
GRAPH_EDGES_PER_SLICE = 1_000_000

# Leiden stops after four iterations (-1 would run until an iteration changes nothing: 34+ minutes on one
# thread at 1x, 289,701 accounts).  Measured on 24 November with the detector of 839132e (three partitions,
# the third by operator links), against convergence; load average 4 to 12:
# - two iterations (igraph's default; at 0.2 of the reported campaign 18.1 CPU s against 140.6, modularity
#   0.30209 against 0.30242, before the operator partition): the daily replay of demo (bench/timeliness.py)
#   at moderate evasion flagged four benign datacenter customers as a campaign at 48 h (benign FPR 0.32%,
#   the bar is 0.1%; convergence: 0 at 48 h).  Not kept.  (Before the operator partition, two iterations
#   flagged the first strong fleet at 240 h instead of 72 h.)
# - four iterations: the daily replay of demo flags both fleets at the same hours as convergence (none and
#   moderate 72 h and 144 h, strong 72 h and 168 h) and no step has a benign FPR above 0 (convergence: one
#   customer at 144 h, moderate).  Batch (bench data, seed 0, and seed 1 strong) P/R/FPR are the same but
#   reported-campaign strong 1/0.972/0 -> 0.996/0.976/0.00037 (one more fleet account; one customer with
#   strong harvest evidence of its own, `suspect` at convergence, joins the fleet's campaign) and seed-1 demo
#   strong recall 0.933 -> 0.928 (one fleet account fewer); every bar of bench/detection.py holds.
# At 0.05 (1.05M pairs, 11,440 accounts) the three runs cost 2.7-3.3 CPU s either way (the two larger graphs
# converge within two iterations there).  At 0.2 (56,654 accounts; 5.27M, 4.09M and 1.40M pairs in the three
# graphs, captured from a scan at 4a387fc) they cost 47.1 CPU s against 152.0 at convergence (full graph 25.4
# against 123.4; modularity 0.30224 against 0.30242); at 1x not yet measured.
LEIDEN_ITERATIONS = 4


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
    accounts without an edge get -1.  igraph's own C implementation
    (``community_leiden``), run for ``LEIDEN_ITERATIONS`` iterations.
    """
    if len(src) == 0:
        return np.full(n, -1, dtype=np.int64)
    return leiden(account_graph(n, src, dst), src, dst, weight, seed=seed, resolution=resolution)


def account_graph(n: int, src: np.ndarray, dst: np.ndarray) -> ig.Graph:
    """The undirected igraph graph of ``n`` accounts with the edges ``src``-``dst``, in their order."""
    # igraph copies int pairs about 3x faster than it walks the rows of a 2-D numpy array, but a list of
    # every pair costs ~120 bytes an edge: the pairs are made a slice at a time by a generator that
    # igraph consumes in one call (same edges, same order; at 25M edges 1.7 GB peak instead of 5.0 GB,
    # and no slower).  Adding the slices with one add_edges call each re-indexed the graph every time.
    step = GRAPH_EDGES_PER_SLICE
    pairs = itertools.chain.from_iterable(
        zip(src[lo : lo + step].tolist(), dst[lo : lo + step].tolist(), strict=True)
        for lo in range(0, len(src), step)
    )
    return ig.Graph(n=n, edges=pairs, directed=False)


def edge_subgraph(g: ig.Graph, keep: np.ndarray) -> ig.Graph:
    """The graph ``g`` with only the edges where ``keep`` is true, every vertex kept, edges in their order.

    The same graph as ``account_graph`` of the kept edges (so the same Leiden partition), made inside
    igraph instead of from Python pairs again.
    """
    return g.subgraph_edges(np.flatnonzero(keep).tolist(), delete_vertices=False)


def leiden(
    g: ig.Graph, src: np.ndarray, dst: np.ndarray, weight: np.ndarray, seed: int = 0, resolution: float = 1.0
) -> np.ndarray:
    """``find_communities`` of a graph already built: ``src``/``dst``/``weight`` are its edges, in its order."""
    n = g.vcount()
    if len(src) == 0:
        return np.full(n, -1, dtype=np.int64)
    # The weights go to Leiden as a numpy array (copied into igraph's own vector), not as an edge
    # attribute, which igraph keeps as a list of Python floats (32 bytes an edge).
    weights = np.ascontiguousarray(weight, dtype=np.float64)
    # igraph draws from Python's `random` once it is installed as its generator: seed it for repeatable runs.
    state = random.getstate()
    random.seed(seed)
    ig.set_random_number_generator(random)
    try:
        part = g.community_leiden(
            objective_function="modularity",
            weights=weights,
            resolution=resolution,
            n_iterations=LEIDEN_ITERATIONS,
        )
    finally:
        random.setstate(state)
    membership = np.asarray(part.membership, dtype=np.int64)
    degree = np.bincount(src, minlength=n) + np.bincount(dst, minlength=n)
    membership[degree == 0] = -1
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
