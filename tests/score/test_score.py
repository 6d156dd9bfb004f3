"""Campaign decisions and account verdicts on constructed communities."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from distillwatch.score import CommunityRules, assess_communities, score_accounts
from distillwatch.score.accounts import calibrated_threshold
from distillwatch.signals import AccountSignals

N = 400
RNG = np.random.default_rng(0)


def _clique(members: list[int], family: str) -> tuple[list[int], list[int], list[str]]:
    s, d, f = [], [], []
    for i in members:
        for j in members:
            if i < j:
                s.append(i)
                d.append(j)
                f.append(family)
    return s, d, f


def _setup(fleet_harvest: float, org: bool = False):
    """Accounts 0-19: a linked fleet (infrastructure + coordination links); the rest: background."""
    fam = {f: RNG.uniform(0, 0.1, N) for f in ("behaviour", "content", "infrastructure", "registration", "coordination")}
    fleet = list(range(20))
    fam["content"][fleet] = fleet_harvest
    fam["coordination"][fleet] = 0.9
    s1, d1, f1 = _clique(fleet, "infrastructure")
    s2, d2, f2 = _clique(fleet, "coordination")
    src, dst, famv = np.array(s1 + s2), np.array(d1 + d2), np.array(f1 + f2)
    membership = np.full(N, -1)
    membership[fleet] = 0
    orgs = np.full(N, -1)
    if org:
        orgs[fleet] = 7
    return fam, src, dst, famv, membership, orgs


def test_a_harvesting_fleet_is_a_campaign() -> None:
    fam, src, dst, famv, membership, orgs = _setup(0.9)
    (ev,) = assess_communities(membership, fam, src, dst, np.ones(len(src)), famv, orgs, CommunityRules())
    assert ev.is_campaign
    assert {"content", "coordination"} <= set(ev.families)
    assert ev.statistic > ev.null_threshold
    assert 0 < ev.confidence <= 1


def test_linked_accounts_that_do_not_harvest_are_not_a_campaign() -> None:
    # A class behind one NAT: linked by infrastructure and timing, ordinary content.
    fam, src, dst, famv, membership, orgs = _setup(0.05)
    (ev,) = assess_communities(membership, fam, src, dst, np.ones(len(src)), famv, orgs, CommunityRules())
    assert not ev.is_campaign


def test_one_customer_organisation_is_not_a_campaign() -> None:
    fam, src, dst, famv, membership, orgs = _setup(0.9, org=True)
    (ev,) = assess_communities(membership, fam, src, dst, np.ones(len(src)), famv, orgs, CommunityRules())
    assert ev.org_share == 1.0
    assert not ev.is_campaign


def test_account_verdicts_need_a_campaign_for_attack() -> None:
    fam, src, dst, famv, membership, orgs = _setup(0.9)
    evidence = assess_communities(membership, fam, src, dst, np.ones(len(src)), famv, orgs, CommunityRules())
    values = np.column_stack([fam["content"], fam["coordination"]])
    values[25] = 1.0  # a heavy lone account: strong own evidence, no fleet
    signals = AccountSignals(ids=["c", "k"], families=["content", "coordination"], weights=np.ones(2), values=values,
                             raw=values, reasons=[pa.array([None] * N, pa.string())] * 2)
    s = score_accounts(signals, evidence, target_fpr=0.01, suspect_factor=10, own_cap=0.6, org_codes=orgs,
                       edges=(src, dst, np.ones(len(src))))
    assert (s.verdict[:20] == "attack").all()
    assert s.verdict[25] != "attack"
    assert (s.verdict[30:] != "attack").all()
    assert s.labels == {0: "C001"}
    assert "member of campaign C001" in s.reasons[0].as_py()
    assert s.score.min() >= 0 and s.score.max() <= 1


def test_calibrated_threshold() -> None:
    null = np.linspace(0, 1, 1001)
    assert calibrated_threshold(null, 0.01) == pytest.approx(0.99, abs=0.002)
    small = np.array([0.1, 0.2, 0.3])
    assert calibrated_threshold(small, 0.001) > 0.3  # cannot resolve the rate: stay above every null score
    assert calibrated_threshold(np.array([]), 0.01) == 1.0


def test_extension_needs_every_harvest_family_that_ties_the_members() -> None:
    from distillwatch.score.accounts import _extend
    from distillwatch.score.campaigns import CampaignEvidence

    members = list(range(10))
    s, d, f = [], [], []
    for fam_name in ("content", "behaviour"):
        cs, cd, cf = _clique(members, fam_name)
        s, d, f = s + cs, d + cd, f + cf
    for m in members:  # account 10 shares the members' prompts only; 11 also moved to a release with them
        s, d, f = s + [10, 11, 11], d + [m, m, m], f + ["content", "content", "behaviour"]
    src, dst, fam = np.array(s), np.array(d), np.array(f)
    w = np.ones(len(src))
    ev = CampaignEvidence(
        community=0, size=10, evidence={}, link_coverage={}, member_mean={}, families=[], org_share=0.0,
        statistic=1.0, null_threshold=0.0, confidence=1.0, is_campaign=True,
        attachment=np.ones(10), members=np.array(members),
    )
    combined = (src, dst, w * 2)
    loose, _ = _extend(ev, combined, 12, 0.1)
    assert {10, 11} <= set(loose.tolist())  # by combined weight alone both join
    strict, attach = _extend(ev, combined, 12, 0.1, typed_edges=(src, dst, w, fam))
    assert set(strict.tolist()) == set(members) | {11}
    assert len(attach) == len(strict)
