"""Which communities are campaigns, and how sure we are.

A community of linked accounts is judged on its *families* of evidence
(behaviour, content, infrastructure, registration, coordination).  A family's
evidence mixes what the members do (the mean of their own signals of that
family) with how they are linked (the share of members tied to the others by
that family's edges): ``(1 - link_share) x member mean + link_share x coverage``,
so links alone never make a family whole.  The community statistic is the mean
of its ``min_families`` strongest families, so several must be high at once.

Two further rules keep real customers out:

* the members' own content or behaviour signals must say *harvest* on average
  (``harvest_level``): shared infrastructure, registration and even shared
  templates describe a team or a class, not a distillation;
* accounts declared under one customer organisation are a known customer, not a
  fleet of fakes (a fleet spreads over throwaway sign-ups), so the statistic is
  discounted by the share of members in the community's main organisation.

The threshold is calibrated at the target false-positive rate against random
groups of the same size drawn from the accounts outside candidate communities
(a permutation null, scored with the real edges and signals).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from distillwatch.signals.base import FAMILIES

HARVEST_FAMILIES = ("content", "behaviour")


@dataclass
class CampaignEvidence:
    """One community (``community`` = its id) with its evidence, threshold and decision."""

    community: int
    size: int
    evidence: dict[str, float]  # family -> 0..1
    link_coverage: dict[str, float]
    member_mean: dict[str, float]
    families: list[str]  # families at or above ``family_level``
    org_share: float
    statistic: float
    null_threshold: float
    confidence: float
    is_campaign: bool
    merged_from: int = 1  # communities whose fitting accounts overlapped and were merged into this campaign
    members: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0, dtype=np.int64))


@dataclass
class CommunityRules:
    min_accounts: int = 3
    min_families: int = 2
    family_level: float = 0.5
    harvest_level: float = 0.3
    link_share: float = 0.4
    org_discount: float = 1.0
    covered_at: float = 0.5  # internal edge weight of a family that counts an account as linked by it
    target_fpr: float = 0.001
    permutations: int = 60
    seed: int = 0


@dataclass(frozen=True)
class FamilyEdges:
    """The typed edges grouped by family (``FAMILIES`` order), each family's edges in their original order.

    ``family``: index into ``FAMILIES``; ``present``: the families that have edges in the scan (a subset keeps
    the flags of the set it was cut from).  One set of arrays for all families lets a group assessment find the
    edges inside groups with one pass over the edges instead of one per family.
    """

    src: np.ndarray
    dst: np.ndarray
    weight: np.ndarray
    family: np.ndarray
    present: np.ndarray

    def subset(self, keep: np.ndarray) -> FamilyEdges:
        return FamilyEdges(self.src[keep], self.dst[keep], self.weight[keep], self.family[keep], self.present)


def edges_by_family(
    edge_src: np.ndarray, edge_dst: np.ndarray, edge_weight: np.ndarray, edge_family: np.ndarray
) -> FamilyEdges:
    """The typed edges grouped by family; edges of a family outside ``FAMILIES`` are left out.

    Made once per scan by the score stage and handed to every ``assess_communities`` call: comparing the
    edges' family strings costs as much as the assessment itself at full scale.
    """
    code = np.full(len(edge_src), -1, dtype=np.int64)
    for i, fam in enumerate(FAMILIES):
        code[edge_family == fam] = i
    order = np.argsort(code, kind="stable")
    order = order[code[order] >= 0]
    present = np.bincount(code[order], minlength=len(FAMILIES)) > 0
    # Ends as native indices: numpy converts int32 indices on every gather, and the permutation null gathers
    # both ends of every edge in each of its passes (twice as fast, for 8 more bytes an edge).
    src, dst = edge_src[order].astype(np.intp), edge_dst[order].astype(np.intp)
    return FamilyEdges(src, dst, edge_weight[order], code[order], present)


def _internal_degree(n: int, edges: FamilyEdges, labels: np.ndarray) -> np.ndarray:
    """Families x accounts: sum of the weights of each family's internal edges (edges whose ends share a label).

    One bincount over (family, source end) then (family, destination end) adds each account's weights in
    the same order as ``np.add.at`` over a family's source ends, then its destination ends, did: the same
    sums to the last bit, at a fraction of the cost.
    """
    # Accounts in no group get a label of their own (-1 - position), so one comparison finds the edges inside
    # groups; an edge from such an account to itself (none in a scan's graph) is dropped afterwards.
    key = np.where(labels >= 0, labels, -1 - np.arange(len(labels), dtype=labels.dtype))
    inside = np.flatnonzero(key[edges.src] == key[edges.dst])
    inside = inside[labels[edges.src[inside]] >= 0]
    base = edges.family[inside] * n
    w = edges.weight[inside]
    keys = np.concatenate((base + edges.src[inside], base + edges.dst[inside]))
    deg = np.bincount(keys, weights=np.concatenate((w, w)), minlength=len(FAMILIES) * n)
    return deg.reshape(len(FAMILIES), n)


def _group_evidence(
    labels: np.ndarray,
    n_groups: int,
    fam_scores: dict[str, np.ndarray],
    edges: FamilyEdges,
    rules: CommunityRules,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(link coverage, member mean) per family for every group label 0..n_groups-1 (label -1 ignored)."""
    n = len(labels)
    valid = labels >= 0
    sizes = np.maximum(np.bincount(labels[valid], minlength=n_groups).astype(np.float64), 1.0)
    hit = (_internal_degree(n, edges, labels) >= rules.covered_at) & valid & edges.present[:, None]
    fam_of_hit, account_of_hit = np.nonzero(hit)
    hits = np.bincount(fam_of_hit * n_groups + labels[account_of_hit], minlength=len(FAMILIES) * n_groups)
    hits = hits.reshape(len(FAMILIES), n_groups)
    coverage = {
        fam: hits[i] / sizes if edges.present[i] else np.zeros(n_groups) for i, fam in enumerate(FAMILIES)
    }
    return coverage, _member_means(labels, n_groups, fam_scores, FAMILIES)


def _member_means(
    labels: np.ndarray, n_groups: int, scores: dict[str, np.ndarray], families: tuple[str, ...]
) -> dict[str, np.ndarray]:
    """Per family of ``families``, the members' mean score in each group (0 where the family is absent)."""
    valid = labels >= 0
    sizes = np.maximum(np.bincount(labels[valid], minlength=n_groups).astype(np.float64), 1.0)
    return {
        f: np.bincount(labels[valid], weights=scores[f][valid], minlength=n_groups) / sizes
        if f in scores
        else np.zeros(n_groups)
        for f in families
    }


def _statistic(
    coverage: dict[str, np.ndarray], mean: dict[str, np.ndarray], org_share: np.ndarray, rules: CommunityRules
) -> tuple[np.ndarray, np.ndarray]:
    """Per group: (statistic 0..1, evidence matrix groups x families)."""
    ev = np.column_stack([(1 - rules.link_share) * mean[f] + rules.link_share * coverage[f] for f in FAMILIES])
    top = -np.sort(-ev, axis=1)[:, : rules.min_families]
    return top.mean(axis=1) * (1.0 - rules.org_discount * org_share), ev


def _org_share(labels: np.ndarray, n_groups: int, org_codes: np.ndarray) -> np.ndarray:
    """Per group, the share of members whose declared organisation (code >= 0) has another member there.

    Several teams of known customers in one community (two companies' coding
    agents on one cloud range) are as legitimate as one.
    """
    ok = (labels >= 0) & (org_codes >= 0)
    sizes = np.maximum(np.bincount(labels[labels >= 0], minlength=n_groups), 1)
    if not ok.any():
        return np.zeros(n_groups)
    width = int(org_codes.max()) + 1
    pair = labels[ok].astype(np.int64) * width + org_codes[ok]
    keys, inverse, counts = np.unique(pair, return_inverse=True, return_counts=True)
    shared = counts[inverse] >= 2
    return np.bincount(labels[ok][shared], minlength=n_groups) / sizes


def assess_communities(
    membership: np.ndarray,
    fam_scores: dict[str, np.ndarray],
    fam_edges: FamilyEdges,
    org_codes: np.ndarray,
    rules: CommunityRules,
    harvest_scores: dict[str, np.ndarray] | None = None,
) -> list[CampaignEvidence]:
    """Evidence, calibrated threshold and decision for each community of at least ``rules.min_accounts``.

    ``fam_edges``: the typed edges grouped by family (``edges_by_family``, made once per scan).
    ``harvest_scores``: the family scores the harvest test reads (``AccountSignals.harvest_scores``:
    without the signals of what an account shares with others); ``fam_scores`` when not given.
    """
    n = len(membership)
    labels = membership
    n_groups = int(labels.max()) + 1 if n and labels.max() >= 0 else 0
    if n_groups == 0:
        return []
    sizes = np.bincount(labels[labels >= 0], minlength=n_groups)
    coverage, mean = _group_evidence(labels, n_groups, fam_scores, fam_edges, rules)
    harvest_mean = mean if harvest_scores is None else _member_means(labels, n_groups, harvest_scores, HARVEST_FAMILIES)
    orgs = _org_share(labels, n_groups, org_codes)
    stat, ev = _statistic(coverage, mean, orgs, rules)
    candidates = np.flatnonzero(sizes >= rules.min_accounts)

    # Permutation null from the accounts outside candidate communities (the bulk).
    in_candidate = np.isin(labels, candidates)
    bulk = np.flatnonzero(~in_candidate)
    if len(bulk) < max(10 * rules.min_accounts, n // 4):
        bulk = np.arange(n)
    rng = np.random.default_rng(rules.seed)
    null_cache: dict[int, float] = {}
    # Random groups are cut from the bulk only, so only edges with both ends in it can ever join two accounts of
    # one random group: the null is scored on those (at full scale a small share of the edges, most of which tie
    # the candidate communities together).
    in_bulk = np.zeros(n, dtype=bool)
    in_bulk[bulk] = True
    bulk_edges = fam_edges.subset(in_bulk[fam_edges.src] & in_bulk[fam_edges.dst])

    out: list[CampaignEvidence] = []
    for c in candidates:
        size = int(sizes[c])
        # Sizes share a null within 10% of each other (the statistic of random groups barely moves);
        # the null uses the bucket's smallest size, the more permissive for random groups.
        bucket = int(np.floor(np.log(size) / np.log(1.1)))
        if bucket not in null_cache:
            null_size = max(rules.min_accounts, int(np.ceil(1.1**bucket)))
            null_cache[bucket] = _permutation_threshold(null_size, n, bulk, fam_scores, bulk_edges, org_codes, rules, rng)
        thr = null_cache[bucket]
        evidence = {f: float(ev[c, i]) for i, f in enumerate(FAMILIES)}
        families = [f for f in FAMILIES if evidence[f] >= rules.family_level]
        harvest = max(harvest_mean[f][c] for f in HARVEST_FAMILIES) >= rules.harvest_level
        # Several *independent* families: one that says harvest and at least one other.
        harvest_family = any(f in families for f in HARVEST_FAMILIES)
        is_campaign = bool(len(families) >= rules.min_families and harvest and harvest_family and stat[c] > thr)
        # Confidence: the statistic, discounted by how close it is to the threshold.
        margin = float(np.clip((stat[c] - thr) / max(1.0 - thr, 1e-9), 0.0, 1.0))
        confidence = float(np.clip(stat[c] * (0.5 + 0.5 * margin), 0.0, 1.0)) if is_campaign else float(0.5 * stat[c])
        members = np.flatnonzero(labels == c)
        out.append(
            CampaignEvidence(
                community=int(c),
                size=size,
                evidence=evidence,
                link_coverage={f: float(coverage[f][c]) for f in FAMILIES},
                member_mean={f: float(mean[f][c]) for f in FAMILIES},
                families=families,
                org_share=float(orgs[c]),
                statistic=float(stat[c]),
                null_threshold=float(thr),
                confidence=confidence,
                is_campaign=is_campaign,
                members=members,
            )
        )
    return out


def _permutation_threshold(
    size: int,
    n: int,
    pool: np.ndarray,
    fam_scores: dict[str, np.ndarray],
    fam_edges: FamilyEdges,
    org_codes: np.ndarray,
    rules: CommunityRules,
    rng: np.random.Generator,
) -> float:
    """The (1 - target_fpr) quantile of the statistic over random groups of ``size`` accounts.

    Each permutation shuffles the ``pool`` of accounts and cuts it into groups
    of ``size``, so one pass yields len(pool) // size null groups, scored with
    the real edges and signals (``fam_edges`` need only hold the edges inside the pool).
    """
    if size > len(pool) // 2:
        return 1.0  # no two random groups of this size: refuse to call it significant
    groups_per = len(pool) // size
    # Enough null groups to resolve the target rate (10 / target_fpr), within ``permutations`` passes.
    wanted = max(rules.permutations, int(np.ceil(10 / rules.target_fpr)))
    stats, drawn = [], 0
    for _ in range(rules.permutations):
        order = pool[rng.permutation(len(pool))]
        # int32: the labels are gathered at both ends of every edge in the pool, twice as fast as int64.
        labels = np.full(n, -1, dtype=np.int32)
        labels[order[: groups_per * size]] = np.repeat(np.arange(groups_per), size)
        coverage, mean = _group_evidence(labels, groups_per, fam_scores, fam_edges, rules)
        stats.append(_statistic(coverage, mean, _org_share(labels, groups_per, org_codes), rules)[0])
        drawn += groups_per
        if drawn >= wanted:
            break
    return float(np.quantile(np.concatenate(stats), 1.0 - rules.target_fpr))
