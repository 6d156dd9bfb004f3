"""The score stage of a scan: community evidence for both partitions, then account scores and verdicts.

1. Every community of the three partitions (all accounts; harvesting accounts; harvesting accounts by their
   operator links) is assessed (``score/campaigns.py``).
2. Accounts are scored against every campaign's profile (``score/accounts.py``).
3. Campaigns whose fitting accounts are largely the same accounts are one fleet that community detection cut
   apart (or found once in each partition): they are merged and the accounts re-scored.
4. Each campaign's profile is learned again from the accounts that fit it (``profile_refits`` rounds): a
   community is often half ordinary customers, the fitting accounts are the fleet.
5. A campaign as reported must itself pass the campaign tests on its fitting accounts (``confirmed_campaigns``).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from distillwatch.link.stage import LinkResult
from distillwatch.score.accounts import AccountScores, score_accounts
from distillwatch.score.campaigns import (
    CampaignEvidence,
    CommunityRules,
    FamilyEdges,
    assess_communities,
    edges_by_family,
)
from distillwatch.signals import AccountSignals
from distillwatch.signals.config import DetectionConfig


def org_codes(features: pa.Table) -> np.ndarray:
    """Each account's declared organisation as an integer code (-1 for none)."""
    org = features.column("org").combine_chunks().cast(pa.string())
    codes = pc.fill_null(pc.cast(pc.index_in(org, value_set=pc.unique(org).drop_null()), pa.int64()), -1)
    return codes.to_numpy(zero_copy_only=False)


def score_stage(
    signals: AccountSignals,
    fam_scores: dict[str, np.ndarray],
    graph: LinkResult,
    orgs: np.ndarray,
    cfg: DetectionConfig,
) -> tuple[list[CampaignEvidence], AccountScores]:
    rules = CommunityRules(
        min_accounts=cfg.link.min_accounts,
        min_families=cfg.link.min_families,
        family_level=cfg.link.family_coverage,
        harvest_level=cfg.link.harvest_level,
        link_share=cfg.link.link_share,
        org_discount=cfg.link.org_discount,
        target_fpr=cfg.score.target_fpr,
        permutations=cfg.score.permutations,
        seed=cfg.score.seed,
    )
    fam_edges = edges_by_family(graph.src, graph.dst, graph.strength, graph.family)
    harvest = signals.harvest_scores()
    evidence: list[CampaignEvidence] = []
    offset = 0
    partitions = (graph.membership, graph.sub_membership, graph.operator_membership)
    for part in (p for p in partitions if p is not None):
        shifted = np.where(part >= 0, part + offset, -1)
        evidence += assess_communities(shifted, fam_scores, fam_edges, orgs, rules, harvest)
        offset = int(shifted.max()) + 1 if shifted.max() >= 0 else offset
    scores = _score(signals, evidence, graph, fam_edges, orgs, cfg)
    merged = merge_overlapping(evidence, scores.fitting, cfg.score.merge_overlap)
    if merged is not evidence:
        evidence = merged
        scores = _score(signals, evidence, graph, fam_edges, orgs, cfg)
    for _ in range(cfg.score.profile_refits):
        # The fitting accounts become the campaign's members: its profile, its size (the prior) and the links an
        # outside account is measured against are the fleet's, not those of the customers the community swept in.
        core = {cid: acc for cid, acc in scores.fitting.items() if len(acc) >= cfg.link.min_accounts}
        if not core:
            break
        evidence = [
            replace(ev, members=core[ev.community])
            if ev.is_campaign and ev.community in core
            else ev
            for ev in evidence
        ]
        scores = _score(signals, evidence, graph, fam_edges, orgs, cfg)
    # The campaign as reported is the accounts that fit it, not the community it was found in: a community of
    # 52 ordinary accounts where 4 fit is not evidence that the 4 are a fleet.  Each campaign's fitting accounts
    # must pass the same tests (families, harvest, the permutation null at their own size); those that do not
    # are dropped and the accounts re-scored without them.
    fitted = {int(c) for c in np.unique(scores.community[scores.community >= 0])}
    passed = confirmed_campaigns(scores.fitting, fam_scores, graph, orgs, rules, fam_edges, harvest)
    if not fitted <= passed:
        evidence = [
            ev
            if not ev.is_campaign or ev.community in passed
            else replace(ev, is_campaign=False, confidence=0.5 * ev.statistic)
            for ev in evidence
        ]
        scores = _score(signals, evidence, graph, fam_edges, orgs, cfg)
    return evidence, scores


def merge_overlapping(
    evidence: list[CampaignEvidence], fitting: dict[int, np.ndarray], overlap: float
) -> list[CampaignEvidence]:
    """Campaigns whose fitting accounts are largely the same accounts, merged (``evidence`` itself when none are).

    Two campaigns are one fleet when at least ``overlap`` of the smaller one's fitting accounts also fit the
    other (the groups are closed transitively).  The merged campaign keeps the lowest community id, the
    accounts that fit any of its parts as members, the families any part showed and the highest confidence (its
    ``size`` and statistics stay those of the community they were measured on); the others stop being
    campaigns.  Without this, the pieces of one fleet compete for its accounts and each learns its profile
    from a fraction of it.  The members are the fitting accounts, not every member of the parts' communities:
    a part found in a community of customers that share an office address with a few fleet accounts would
    otherwise bring all those customers in as members, whom the merged profile then half fits (demo, strong
    evasion, 264 h into the log: 59 customers made members that way, 4 of them flagged).
    """
    ids = sorted(cid for cid, acc in fitting.items() if len(acc))
    parent = {cid: cid for cid in ids}

    def root(c: int) -> int:
        while parent[c] != c:
            c = parent[c]
        return c

    for i, a in enumerate(ids):
        for b in ids[i + 1 :]:
            shared = len(np.intersect1d(fitting[a], fitting[b], assume_unique=True))
            if shared >= overlap * min(len(fitting[a]), len(fitting[b])):
                ra, rb = root(a), root(b)
                parent[max(ra, rb)] = min(ra, rb)
    groups: dict[int, list[int]] = {}
    for cid in ids:
        groups.setdefault(root(cid), []).append(cid)
    if all(len(g) == 1 for g in groups.values()):
        return evidence
    by_id = {ev.community: ev for ev in evidence}
    absorbed = {cid for g in groups.values() for cid in g[1:]}
    out = []
    for ev in evidence:
        if ev.community in absorbed:
            out.append(replace(ev, is_campaign=False, confidence=0.5 * ev.statistic))
        elif len(groups.get(ev.community, ())) > 1:
            parts = [by_id[c] for c in groups[ev.community]]
            members = np.unique(np.concatenate([fitting[c] for c in groups[ev.community]]))
            families = [f for f in ev.evidence if any(f in p.families for p in parts)]
            out.append(
                replace(
                    ev,
                    members=members,
                    families=families,
                    confidence=max(p.confidence for p in parts),
                    merged_from=sum(p.merged_from for p in parts),
                )
            )
        else:
            out.append(ev)
    return out


def confirmed_campaigns(
    fitting: dict[int, np.ndarray],
    fam_scores: dict[str, np.ndarray],
    graph: LinkResult,
    orgs: np.ndarray,
    rules: CommunityRules,
    fam_edges: FamilyEdges | None = None,
    harvest_scores: dict[str, np.ndarray] | None = None,
) -> set[int]:
    """The campaigns (community id -> the accounts that fit it) whose fitting accounts pass the campaign tests.

    Each campaign is tested on every account that fits it, not only on those it keeps when the campaigns compete
    for accounts: a piece of a fleet that loses most of its accounts to a sibling is no less a fleet for it.
    """
    n = len(orgs)
    if fam_edges is None:
        fam_edges = edges_by_family(graph.src, graph.dst, graph.strength, graph.family)
    passed: set[int] = set()
    for cid, accounts in fitting.items():
        labels = np.full(n, -1, dtype=np.int64)
        labels[accounts] = 0
        checked = assess_communities(labels, fam_scores, fam_edges, orgs, rules, harvest_scores)
        if any(ev.is_campaign for ev in checked):
            passed.add(int(cid))
    return passed


def _score(
    signals: AccountSignals,
    evidence: list[CampaignEvidence],
    graph: LinkResult,
    fam_edges: FamilyEdges,
    orgs: np.ndarray,
    cfg: DetectionConfig,
) -> AccountScores:
    return score_accounts(
        signals,
        evidence,
        target_fpr=cfg.score.target_fpr,
        suspect_factor=cfg.score.suspect_fpr_factor,
        own_cap=cfg.score.own_evidence_cap,
        min_accounts=cfg.link.min_accounts,
        org_codes=orgs,
        org_discount=cfg.link.org_discount,
        edges=(graph.pair_src, graph.pair_dst, graph.pair_weight),
        extend_attachment=cfg.link.extend_attachment,
        typed_edges=fam_edges,
        profile_bins=cfg.score.profile_bins,
        profile_iterations=cfg.score.profile_iterations,
        profile_decorrelation=cfg.score.profile_decorrelation,
    )
