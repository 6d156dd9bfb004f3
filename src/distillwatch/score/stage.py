"""The score stage of a scan: community evidence for both partitions, then account scores and verdicts."""

from __future__ import annotations

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
    scores = score_accounts(
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
    return evidence, scores
