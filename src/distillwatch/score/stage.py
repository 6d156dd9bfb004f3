"""The score stage of a scan: community evidence for both partitions, then account scores and verdicts."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from distillwatch.link.stage import LinkResult
from distillwatch.score.accounts import AccountScores, score_accounts
from distillwatch.score.campaigns import CampaignEvidence, CommunityRules, assess_communities
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
    evidence: list[CampaignEvidence] = []
    offset = 0
    for part in (graph.membership, graph.sub_membership):
        shifted = np.where(part >= 0, part + offset, -1)
        evidence += assess_communities(shifted, fam_scores, graph.src, graph.dst, graph.strength, graph.family, orgs, rules)
        offset = int(shifted.max()) + 1 if shifted.max() >= 0 else offset
    scores = _score(signals, evidence, graph, orgs, cfg)
    # The campaign as reported is the accounts that fit it, not the community it was found in: a community of
    # 52 ordinary accounts where 4 fit is not evidence that the 4 are a fleet.  Each campaign's fitting members
    # must pass the same tests (families, harvest, the permutation null at their own size); those that do not
    # are dropped and the accounts re-scored without them.
    fitted = np.unique(scores.community[scores.community >= 0])
    passed = confirmed_campaigns(scores.community, fam_scores, graph, orgs, rules)
    if len(passed) < len(fitted):
        evidence = [
            ev
            if not ev.is_campaign or ev.community in passed
            else replace(ev, is_campaign=False, confidence=0.5 * ev.statistic)
            for ev in evidence
        ]
        scores = _score(signals, evidence, graph, orgs, cfg)
    return evidence, scores


def confirmed_campaigns(
    community: np.ndarray,
    fam_scores: dict[str, np.ndarray],
    graph: LinkResult,
    orgs: np.ndarray,
    rules: CommunityRules,
) -> set[int]:
    """The campaigns (community ids in ``community``, -1 = none) whose members, as assigned, pass the campaign tests."""
    fitted = np.unique(community[community >= 0])
    if not len(fitted):
        return set()
    relabel = np.full(int(fitted.max()) + 1, -1, dtype=np.int64)
    relabel[fitted] = np.arange(len(fitted))
    labels = np.where(community >= 0, relabel[np.maximum(community, 0)], -1)
    checked = assess_communities(labels, fam_scores, graph.src, graph.dst, graph.strength, graph.family, orgs, rules)
    return {int(fitted[ev.community]) for ev in checked if ev.is_campaign}


def _score(signals: AccountSignals, evidence: list[CampaignEvidence], graph: LinkResult, orgs: np.ndarray, cfg: DetectionConfig) -> AccountScores:
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
        typed_edges=(graph.src, graph.dst, graph.strength, graph.family),
        profile_bins=cfg.score.profile_bins,
        profile_iterations=cfg.score.profile_iterations,
    )
