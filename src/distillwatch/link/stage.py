"""The link stage of a scan: pair keys -> typed weighted edges -> three Leiden partitions.

``link_accounts`` is what ``pipeline.scan`` calls; everything about how the
account graph is built and held lives here, so the graph's representation can
change without touching the rest of the pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import igraph as ig
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from distillwatch.link.graph import EdgeOptions, Edges, PairSource, build_edges
from distillwatch.link.partition import (
    account_graph,
    edge_subgraph,
    leiden,
    merge_dense_neighbours,
)
from distillwatch.signals import SignalContext, pair_keys
from distillwatch.signals.config import DetectionConfig


@dataclass
class LinkResult:
    """The account graph, indexed by position in the scan's account list.

    Typed edges (one per pair signal and account pair, ``src < dst``): ``src``,
    ``dst`` (int32 positions), ``strength`` (0..1), ``family`` and ``kind``
    (signal id; object arrays of str), ``weighted`` (strength x the signal's
    weight).  Combined pairs (one per account pair):
    ``pair_src``, ``pair_dst``, ``pair_weight``.  ``membership`` is the Leiden
    partition of the whole graph, ``sub_membership`` the partition of the
    harvesting accounts only (-1 outside it), ``operator_membership`` the
    partition of the harvesting accounts by their operator links only (every
    family but content; -1 outside it, ``None`` when not computed).
    """

    src: np.ndarray
    dst: np.ndarray
    strength: np.ndarray
    family: np.ndarray
    kind: np.ndarray
    weighted: np.ndarray
    pair_src: np.ndarray
    pair_dst: np.ndarray
    pair_weight: np.ndarray
    membership: np.ndarray
    sub_membership: np.ndarray
    operator_membership: np.ndarray | None = None


# Families whose links say what accounts ask, not who runs them: left out of the operator partition.
CONTENT_LINK_FAMILIES = ("content",)


def link_accounts(
    con,
    ctx: SignalContext,
    cfg: DetectionConfig,
    account_ids: pa.Array,
    fam_scores: dict[str, np.ndarray],
) -> LinkResult:
    sources = []
    for sig, weight, params in pair_keys(ctx, cfg):
        keys = sig.keys(ctx, params)
        if keys is None:
            continue
        opts = EdgeOptions(
            max_group=int(params["max_group"]),
            neighbours=int(params["neighbours"]),
            key_scale=float(params["key_scale"]),
            min_shared=int(params.get("min_shared", 1)),
            max_partners=int(params.get("max_partners", EdgeOptions.max_partners)),
            max_keys=int(params.get("max_keys", EdgeOptions.max_keys)),
        )
        sources.append(PairSource(sig.meta.id, sig.meta.family, float(weight), keys, opts))
    edges = build_edges(con, sources, account_ids, min_pair_weight=cfg.link.min_edge_weight)
    return link_edges(edges, len(account_ids), cfg, fam_scores)


def link_edges(edges: Edges, n: int, cfg: DetectionConfig, fam_scores: dict[str, np.ndarray]) -> LinkResult:
    """The three Leiden partitions of the combined pairs, and the result in the score stage's terms."""
    ks, kd, kw = edges.pair_src, edges.pair_dst, edges.pair_weight
    seed, resolution = cfg.link.seed, cfg.link.resolution
    graph = account_graph(n, ks, kd)
    membership = leiden(graph, ks, kd, kw, seed=seed, resolution=resolution)
    membership = merge_dense_neighbours(membership, ks, kd, kw, cfg.link.merge_ratio)
    # Second partition, of the accounts that harvest only (own content or behaviour evidence at the
    # harvest level): in the full graph a careful fleet drowns in the links of ordinary customers
    # (shared ISPs, common prompts); among harvesting accounts its links stand out.
    harvesting = np.max(
        np.column_stack([fam_scores.get(f, np.zeros(n)) for f in ("content", "behaviour")]), axis=1
    )
    harvests = harvesting >= cfg.link.harvest_level
    sub = harvests[ks] & harvests[kd]
    # Its graph is cut from the full one inside igraph (the same graph as one built from the kept pairs).
    sub_graph = edge_subgraph(graph, sub)
    del graph
    sub_membership = leiden(sub_graph, ks[sub], kd[sub], kw[sub], seed=seed, resolution=resolution)
    sub_membership = merge_dense_neighbours(sub_membership, ks[sub], kd[sub], kw[sub], cfg.link.merge_ratio)
    # Third partition, of the harvesting accounts by their operator links only (registration, coordination,
    # infrastructure, behaviour: how the accounts were made and run).  A careful fleet asks what customers
    # ask, so among harvesting accounts its prompt links tie it to customers as often as to itself (demo,
    # strong evasion, 168 h into the log: 7.0 near-duplicate links per fleet account inside the fleet, 48.6
    # to harvesting customers) and both partitions above mix it with them; the links an operator cannot
    # avoid (accounts brought online together, active in the same hours) separate it (10.4 onset links per
    # account inside, 0.9 to those customers).  A community found here is judged like any other: on every
    # family, content included, against the same permutation null.
    op_src, op_dst, op_weight = operator_pairs(edges, harvests, cfg.link.min_edge_weight)
    op_graph = _operator_graph(sub_graph, ks[sub], kd[sub], op_src, op_dst, n)
    del sub_graph
    operator_membership = leiden(op_graph, op_src, op_dst, op_weight, seed=seed, resolution=resolution)
    del op_graph
    operator_membership = merge_dense_neighbours(operator_membership, op_src, op_dst, op_weight, cfg.link.merge_ratio)
    # Kind and family as object arrays of shared str objects (8 bytes an edge, not a fixed-width unicode cell).
    kind_names = np.array(edges.kinds, dtype=object)
    family_names = np.array(edges.families, dtype=object)
    return LinkResult(
        src=edges.src,
        dst=edges.dst,
        strength=edges.strength,
        family=family_names[edges.kind],
        kind=kind_names[edges.kind],
        weighted=edges.weighted,
        pair_src=ks,
        pair_dst=kd,
        pair_weight=kw,
        membership=membership,
        sub_membership=sub_membership,
        operator_membership=operator_membership,
    )


def _operator_graph(
    sub_graph: ig.Graph, sub_src: np.ndarray, sub_dst: np.ndarray, op_src: np.ndarray, op_dst: np.ndarray, n: int
) -> ig.Graph:
    """The graph of the operator pairs, cut from the harvesting accounts' graph inside igraph when it can be.

    Every operator pair is a pair of that graph (both ends harvest, and a pair whose links but content reach the
    minimum weight reaches it with all its links), and both lists are sorted by (src, dst), so the kept edges
    come in the operator pairs' order: the same graph as ``account_graph`` of them (the same partition), without
    making Python pairs again.  Built from the pairs if one is missing (a combined weight whose fixed-point
    rounding fell just under the minimum).
    """
    sub_key = sub_src.astype(np.int64) * n + sub_dst
    op_key = op_src.astype(np.int64) * n + op_dst
    pos = np.searchsorted(sub_key, op_key)
    if len(op_key) and (pos[-1] >= len(sub_key) or not np.array_equal(sub_key[pos], op_key)):
        return account_graph(n, op_src, op_dst)
    keep = np.zeros(len(sub_key), dtype=bool)
    keep[pos] = True
    return edge_subgraph(sub_graph, keep)


def operator_pairs(edges: Edges, keep: np.ndarray, min_weight: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Combined pairs (src, dst, weight) of the accounts in ``keep`` over the typed edges of every family but
    content (``CONTENT_LINK_FAMILIES``), pairs under ``min_weight`` left out.

    The typed edges come sorted by (src, dst, kind), so each pair's edges are one run: its weight is the sum
    of the run, in kind order (no sort, and the same sum on every run).
    """
    content = np.isin(np.array(edges.families, dtype=object), CONTENT_LINK_FAMILIES)
    kept = ~content[edges.kind] & keep[edges.src] & keep[edges.dst]
    src, dst, weighted = edges.src[kept], edges.dst[kept], edges.weighted[kept]
    if len(src) == 0:
        empty = np.zeros(0, dtype=np.int32)
        return empty, empty, np.zeros(0, dtype=np.float64)
    starts = np.flatnonzero(np.r_[True, (src[1:] != src[:-1]) | (dst[1:] != dst[:-1])])
    weight = np.add.reduceat(weighted, starts)
    strong = weight >= min_weight
    return src[starts][strong], dst[starts][strong], weight[strong]


def write_edges(path: Path, graph: LinkResult, ids: pa.Array, campaign_col: pa.Array, limit: int) -> None:
    """edges.parquet: typed edges between members of the same campaign, strongest first, at most ``limit``."""
    # Campaign of each account as an integer code (-1 for none), so the edge filter is one vectorised comparison.
    campaigns = pc.dictionary_encode(pa.array(campaign_col, pa.string()))
    code = pc.fill_null(campaigns.indices.cast(pa.int64()), -1).to_numpy(zero_copy_only=False)
    same = (code[graph.src] >= 0) & (code[graph.src] == code[graph.dst])
    idx = np.flatnonzero(same)
    t = pa.table(
        {
            "src": pc.take(ids, pa.array(graph.src[idx])),
            "dst": pc.take(ids, pa.array(graph.dst[idx])),
            "kind": pa.array(graph.kind[idx].tolist(), pa.string()),
            "family": pa.array(graph.family[idx].tolist(), pa.string()),
            "weight": pa.array(graph.strength[idx], pa.float64()),
            "campaign_id": pc.take(campaign_col, pa.array(graph.src[idx])).cast(pa.string()),
            "weighted": pa.array(graph.weighted[idx], pa.float64()),
        }
    )
    t = t.sort_by(
        [("weighted", "descending"), ("src", "ascending"), ("dst", "ascending"), ("kind", "ascending")]
    ).slice(0, limit)
    pq.write_table(t.drop(["weighted"]), path)
