"""The link stage of a scan: pair keys -> typed weighted edges -> two Leiden partitions.

``link_accounts`` is what ``pipeline.scan`` calls; everything about how the
account graph is built and held lives here, so the graph's representation can
change without touching the rest of the pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from distillwatch.link.graph import EdgeOptions, build_edges, find_communities, merge_dense_neighbours
from distillwatch.signals import SignalContext, pair_keys
from distillwatch.signals.config import DetectionConfig


@dataclass
class LinkResult:
    """The account graph, indexed by position in the scan's account list.

    Typed edges (one per pair signal and account pair): ``src``, ``dst``,
    ``strength`` (0..1), ``family`` and ``kind`` (signal id), ``weighted``
    (strength x the signal's weight).  Combined pairs (one per account pair):
    ``pair_src``, ``pair_dst``, ``pair_weight``.  ``membership`` is the Leiden
    partition of the whole graph, ``sub_membership`` the partition of the
    harvesting accounts only (-1 outside it).
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


def link_accounts(
    con,
    ctx: SignalContext,
    cfg: DetectionConfig,
    account_ids: pa.Array,
    fam_scores: dict[str, np.ndarray],
) -> LinkResult:
    n = len(account_ids)
    key_tables = []
    weights: dict[str, float] = {}
    for sig, weight, params in pair_keys(ctx, cfg):
        keys = sig.keys(ctx, params)
        if keys is None:
            continue
        opts = EdgeOptions(max_group=int(params["max_group"]), neighbours=int(params["neighbours"]), key_scale=float(params["key_scale"]))
        key_tables.append((sig.meta.id, sig.meta.family, keys, opts))
        weights[sig.meta.id] = weight
    edges = build_edges(con, key_tables, n)
    # Registration keys cover every account record; only accounts seen in the traffic are scored.
    seen = pc.and_(pc.is_in(edges.column("src"), value_set=account_ids), pc.is_in(edges.column("dst"), value_set=account_ids))
    edges = edges.filter(seen)
    src_i = pc.index_in(edges.column("src"), value_set=account_ids).to_numpy(zero_copy_only=False).astype(np.int64)
    dst_i = pc.index_in(edges.column("dst"), value_set=account_ids).to_numpy(zero_copy_only=False).astype(np.int64)
    fam = edges.column("family").to_numpy(zero_copy_only=False).astype(str)
    kind = edges.column("kind").to_numpy(zero_copy_only=False).astype(str)
    strength = edges.column("weight").to_numpy()
    ew = strength * np.array(list(weights.values()) or [0.0])[_codes(kind, list(weights))]
    ks, kd, kw = _combine_pairs(src_i, dst_i, ew, n)
    keep = kw >= cfg.link.min_edge_weight
    ks, kd, kw = ks[keep], kd[keep], kw[keep]
    membership = find_communities(n, ks, kd, kw, seed=cfg.link.seed, resolution=cfg.link.resolution)
    membership = merge_dense_neighbours(membership, ks, kd, kw, cfg.link.merge_ratio)
    # Second partition, of the accounts that harvest only (own content or behaviour evidence at the
    # harvest level): in the full graph a careful fleet drowns in the links of ordinary customers
    # (shared ISPs, common prompts); among harvesting accounts its links stand out.
    harvesting = np.max(np.column_stack([fam_scores.get(f, np.zeros(n)) for f in ("content", "behaviour")]), axis=1)
    sub = (harvesting >= cfg.link.harvest_level)[ks] & (harvesting >= cfg.link.harvest_level)[kd]
    sub_membership = find_communities(n, ks[sub], kd[sub], kw[sub], seed=cfg.link.seed, resolution=cfg.link.resolution)
    sub_membership = merge_dense_neighbours(sub_membership, ks[sub], kd[sub], kw[sub], cfg.link.merge_ratio)
    return LinkResult(src_i, dst_i, strength, fam, kind, ew, ks, kd, kw, membership, sub_membership)


def write_edges(path: Path, graph: LinkResult, ids: pa.Array, campaign_col: pa.Array, limit: int) -> None:
    """edges.parquet: typed edges between members of the same campaign, strongest first, at most ``limit``."""
    camp = np.asarray(campaign_col.to_pylist(), dtype=object)
    same = np.array([c is not None for c in camp[graph.src]], dtype=bool) if len(graph.src) else np.zeros(0, dtype=bool)
    if same.any():
        same &= camp[graph.src] == camp[graph.dst]
    idx = np.flatnonzero(same)
    src_ids = pc.take(ids, pa.array(graph.src[idx]))
    dst_ids = pc.take(ids, pa.array(graph.dst[idx]))
    t = pa.table(
        {
            "src": src_ids,
            "dst": dst_ids,
            "kind": pa.array(graph.kind[idx].tolist(), pa.string()),
            "family": pa.array(graph.family[idx].tolist(), pa.string()),
            "weight": pa.array(graph.strength[idx], pa.float64()),
            "campaign_id": pa.array(camp[graph.src[idx]].tolist(), pa.string()),
            "weighted": pa.array(graph.weighted[idx], pa.float64()),
        }
    )
    t = t.sort_by([("weighted", "descending"), ("src", "ascending"), ("dst", "ascending"), ("kind", "ascending")]).slice(0, limit)
    pq.write_table(t.drop(["weighted"]), path)


def _codes(values: np.ndarray, names: list[str]) -> np.ndarray:
    """Position of each value in ``names`` (all values must be there)."""
    lookup = {name: i for i, name in enumerate(names)}
    uniq, inverse = np.unique(values, return_inverse=True)
    return np.array([lookup[u] for u in uniq], dtype=np.int64)[inverse] if len(values) else np.zeros(0, dtype=np.int64)


def _combine_pairs(src: np.ndarray, dst: np.ndarray, weighted: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One weight per account pair: the sum of its typed edges' weighted strengths."""
    if len(src) == 0:
        return src, dst, weighted
    pair = src * n + dst
    keys, inverse = np.unique(pair, return_inverse=True)
    return keys // n, keys % n, np.bincount(inverse, weights=weighted)
