"""Campaigns that claim largely the same accounts are one fleet: merged before the accounts are scored again."""

from __future__ import annotations

import numpy as np

from distillwatch.pipeline import _evidence_words
from distillwatch.score.campaigns import CampaignEvidence
from distillwatch.score.stage import merge_overlapping


def _campaign(cid: int, members: range | list[int], families: list[str], confidence: float) -> CampaignEvidence:
    evidence = dict.fromkeys(("behaviour", "content", "infrastructure", "registration", "coordination"), 0.0)
    return CampaignEvidence(
        community=cid, size=len(members), evidence=evidence, link_coverage=evidence, member_mean=evidence,
        families=families, org_share=0.0, statistic=0.7, null_threshold=0.2, confidence=confidence,
        is_campaign=True, members=np.array(list(members)),
    )


def test_overlapping_campaigns_merge_and_a_separate_one_stays() -> None:
    evidence = [
        _campaign(4, range(0, 30), ["behaviour", "content"], 0.6),
        _campaign(9, range(25, 60), ["content", "coordination"], 0.7),
        _campaign(12, range(100, 120), ["behaviour", "content"], 0.5),
    ]
    # Both 4 and 9 fit accounts 0..59 (the two halves of one fleet); 12 fits its own.
    fitting = {4: np.arange(60), 9: np.arange(10, 60), 12: np.arange(100, 120)}
    merged = {ev.community: ev for ev in merge_overlapping(evidence, fitting, 0.5)}
    assert merged[4].is_campaign and not merged[9].is_campaign and merged[12].is_campaign
    assert list(merged[4].members) == list(range(60)) and merged[4].size == 30  # size: the community measured
    assert set(merged[4].families) == {"behaviour", "content", "coordination"}
    assert merged[4].confidence == 0.7
    assert merged[4].merged_from == 2 and merged[12].merged_from == 1
    assert list(merged[12].members) == list(range(100, 120))


def test_a_merged_campaign_says_its_figures_are_those_of_the_community_it_was_found_in() -> None:
    evidence = [
        _campaign(4, range(0, 30), ["behaviour", "content"], 0.6),
        _campaign(9, range(25, 60), ["content", "coordination"], 0.7),
    ]
    merged = merge_overlapping(evidence, {4: np.arange(60), 9: np.arange(10, 60)}, 0.5)
    words = _evidence_words(merged[0], [])
    assert "the 30 accounts of the community it was found in" in words[0]
    assert words[-1] == "merged from 2 communities whose fitting accounts largely overlap"
    alone = _evidence_words(evidence[0], [])
    assert "its 30 accounts" in alone[0] and not any("merged" in w for w in alone)


def test_no_overlap_leaves_the_evidence_as_it_is() -> None:
    evidence = [_campaign(1, range(0, 10), ["content"], 0.5), _campaign(2, range(10, 20), ["content"], 0.5)]
    fitting = {1: np.arange(10), 2: np.arange(10, 20)}
    assert merge_overlapping(evidence, fitting, 0.5) is evidence


def test_a_merged_campaign_keeps_the_accounts_that_fit_its_parts_not_every_member_of_their_communities() -> None:
    # Community 7 is an office of 40 customers (100..139) where 20 fleet accounts (0..19) also work: its campaign
    # fits the fleet's accounts, so it merges with the fleet's own campaign, but its customers fit neither.
    evidence = [_campaign(3, range(0, 30), ["content", "registration"], 0.6),
                _campaign(7, list(range(0, 20)) + list(range(100, 140)), ["content", "infrastructure"], 0.5)]
    merged = merge_overlapping(evidence, {3: np.arange(30), 7: np.arange(20)}, 0.5)
    assert merged[0].is_campaign and not merged[1].is_campaign
    assert list(merged[0].members) == list(range(30))
