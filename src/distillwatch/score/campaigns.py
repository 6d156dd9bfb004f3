"""Which communities are campaigns, and how sure we are.

A community of linked accounts becomes a campaign only when several
*independent families* of evidence cover it (behaviour, content,
infrastructure, registration, coordination).  A family covers a community when
most of its members are linked by that family's edges (shared prefixes, shared
templates, a registration burst...) or, on average, show that family's account
signals (flat timing, capability focus, datacenter egress...).  One shared NAT,
one employer's org or one batch job is a single family and never a campaign;
and at least one family must say *harvest* (content or behaviour): infrastructure
and registration alone describe a team or a class, not a distillation.

Confidence is calibrated against a permutation null: the same statistic for
random groups of accounts of the same size (random partitions of the
population, edges kept), so it reads as "how unlike a random group of this size
it is", at the target false-positive rate.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from distillwatch.signals.base import FAMILIES

HARVEST_FAMILIES = ("content", "behaviour")


@dataclass
class CampaignEvidence:
    """Per community (index = community id): evidence per family, statistic, verdict."""

    community: int
    size: int
    evidence: dict[str, float]  # family -> 0..1
    link_coverage: dict[str, float]
    member_mean: dict[str, float]
    families: list[str]  # families at or above the coverage threshold
    statistic: float
    null_threshold: float
    confidence: float
    is_campaign: bool
    attachment: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))  # per member, 0..1
    members: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0, dtype=np.int64))


def _family_degree(n: int, src: np.ndarray, dst: np.ndarray, w: np.ndarray, same: np.ndarray) -> np.ndarray:
    """Sum of internal edge weights per account (edges whose ends share a label)."""
    deg = np.zeros(n)
    np.add.at(deg, src[same], w[same])
    np.add.at(deg, dst[same], w[same])
    return deg


def _group_stats(
    labels: np.ndarray,
    n_groups: int,
    fam_scores: dict[str, np.ndarray],
    fam_edges: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
    covered_at: float,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(link coverage, member mean) per family for every group label 0..n_groups-1 (label -1 ignored)."""
    valid = labels >= 0
    sizes = np.bincount(labels[valid], minlength=n_groups).astype(np.float64)
    sizes = np.maximum(sizes, 1.0)
    coverage: dict[str, np.ndarray] = {}
    mean: dict[str, np.ndarray] = {}
    n = len(labels)
    for fam in FAMILIES:
        if fam in fam_edges:
            s, d, w = fam_edges[fam]
            same = (labels[s] == labels[d]) & (labels[s] >= 0)
            deg = _family_degree(n, s, d, w, same)
            hit = (deg >= covered_at) & valid
            coverage[fam] = np.bincount(labels[hit], minlength=n_groups) / sizes
        else:
            coverage[fam] = np.zeros(n_groups)
        if fam in fam_scores:
            mean[fam] = np.bincount(labels[valid], weights=fam_scores[fam][valid], minlength=n_groups) / sizes
        else:
            mean[fam] = np.zeros(n_groups)
    return coverage, mean


def _statistic(coverage: dict[str, np.ndarray], mean: dict[str, np.ndarray], k: int, need: float) -> tuple[np.ndarray, np.ndarray]:
    """Per group: mean of the top-k family evidences (0..1), and how many families reach ``need``."""
    ev = np.column_stack([np.maximum(coverage[f], mean[f]) for f in FAMILIES])
    top = -np.sort(-ev, axis=1)[:, :k]
    return top.mean(axis=1), (ev >= need).sum(axis=1)


def assess_communities(
    membership: np.ndarray,
    fam_scores: dict[str, np.ndarray],
    edge_src: np.ndarray,
    edge_dst: np.ndarray,
    edge_weight: np.ndarray,
    edge_family: np.ndarray,
    *,
    min_accounts: int,
    min_families: int,
    family_coverage: float,
    target_fpr: float,
    permutations: int,
    seed: int,
    covered_at: float = 0.5,
) -> list[CampaignEvidence]:
    """Evidence, calibrated confidence and campaign decision for each community of at least ``min_accounts``."""
    n = len(membership)
    fam_edges = {
        fam: (edge_src[edge_family == fam], edge_dst[edge_family == fam], edge_weight[edge_family == fam])
        for fam in FAMILIES
        if np.any(edge_family == fam)
    }
    labels = membership.copy()
    n_groups = int(labels.max()) + 1 if len(labels) and labels.max() >= 0 else 0
    if n_groups == 0:
        return []
    sizes = np.bincount(labels[labels >= 0], minlength=n_groups)
    coverage, mean = _group_stats(labels, n_groups, fam_scores, fam_edges, covered_at)
    stat, nfam = _statistic(coverage, mean, min_families, family_coverage)

    # Internal weighted degree of each account in its own community (all families).
    same = (labels[edge_src] == labels[edge_dst]) & (labels[edge_src] >= 0)
    internal = _family_degree(n, edge_src, edge_dst, edge_weight, same)

    rng = np.random.default_rng(seed)
    null_cache: dict[int, float] = {}
    out: list[CampaignEvidence] = []
    for c in np.flatnonzero(sizes >= min_accounts):
        size = int(sizes[c])
        if size not in null_cache:
            null_cache[size] = _null_threshold(
                size, n, fam_scores, fam_edges, min_families, family_coverage, target_fpr, permutations, rng, covered_at
            )
        thr = null_cache[size]
        evidence = {f: float(max(coverage[f][c], mean[f][c])) for f in FAMILIES}
        families = [f for f in FAMILIES if evidence[f] >= family_coverage]
        harvest = any(f in families for f in HARVEST_FAMILIES)
        is_campaign = bool(nfam[c] >= min_families and harvest and stat[c] > thr)
        # Confidence: the statistic, discounted by how close it is to the null threshold.
        margin = 0.0 if stat[c] <= thr else min(1.0, (stat[c] - thr) / max(1.0 - thr, 1e-9))
        confidence = float(np.clip(stat[c] * (0.5 + 0.5 * margin), 0.0, 1.0)) if is_campaign else float(stat[c] * 0.5)
        members = np.flatnonzero(labels == c)
        med = float(np.median(internal[members])) if len(members) else 0.0
        attachment = np.clip(internal[members] / max(med, 1e-9), 0.0, 1.0) if med > 0 else np.zeros(len(members))
        out.append(
            CampaignEvidence(
                community=int(c),
                size=size,
                evidence=evidence,
                link_coverage={f: float(coverage[f][c]) for f in FAMILIES},
                member_mean={f: float(mean[f][c]) for f in FAMILIES},
                families=families,
                statistic=float(stat[c]),
                null_threshold=thr,
                confidence=confidence,
                is_campaign=is_campaign,
                attachment=attachment,
                members=members,
            )
        )
    return out


def _null_threshold(
    size: int,
    n: int,
    fam_scores: dict[str, np.ndarray],
    fam_edges: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
    k: int,
    need: float,
    target_fpr: float,
    permutations: int,
    rng: np.random.Generator,
    covered_at: float,
) -> float:
    """The (1 - target_fpr) quantile of the statistic over random groups of ``size`` accounts.

    Each permutation shuffles all accounts and cuts them into groups of
    ``size``, so one pass yields n // size null groups with the real edges.
    """
    if size > n // 2:
        return 1.0  # no random group of this size can be drawn twice: refuse to call it significant
    groups_per = n // size
    # Enough null groups to resolve the target rate (10 / target_fpr), within ``permutations`` passes.
    wanted = max(permutations, int(np.ceil(10 / target_fpr)))
    stats, drawn = [], 0
    for _ in range(permutations):
        order = rng.permutation(n)
        labels = np.full(n, -1, dtype=np.int64)
        labels[order[: groups_per * size]] = np.repeat(np.arange(groups_per), size)
        coverage, mean = _group_stats(labels, groups_per, fam_scores, fam_edges, covered_at)
        stats.append(_statistic(coverage, mean, k, need)[0])
        drawn += groups_per
        if drawn >= wanted:
            break
    null = np.concatenate(stats)
    return float(np.quantile(null, 1.0 - target_fpr))
