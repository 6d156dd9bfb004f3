"""Campaign decisions and account verdicts on constructed communities."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from distillwatch.score import CommunityRules, assess_communities, score_accounts
from distillwatch.score.accounts import calibrated_threshold
from distillwatch.score.campaigns import edges_by_family
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
    (ev,) = assess_communities(membership, fam, edges_by_family(src, dst, np.ones(len(src)), famv), orgs, CommunityRules())
    assert ev.is_campaign
    assert {"content", "coordination"} <= set(ev.families)
    assert ev.statistic > ev.null_threshold
    assert 0 < ev.confidence <= 1


def test_linked_accounts_that_do_not_harvest_are_not_a_campaign() -> None:
    # A class behind one NAT: linked by infrastructure and timing, ordinary content.
    fam, src, dst, famv, membership, orgs = _setup(0.05)
    (ev,) = assess_communities(membership, fam, edges_by_family(src, dst, np.ones(len(src)), famv), orgs, CommunityRules())
    assert not ev.is_campaign


def test_templates_shared_with_the_population_are_not_harvest_evidence() -> None:
    # Customers behind one VPN exit whose prompts follow common templates: their content family is high,
    # but only through a signal of what they share with others; the signals of what they extract are low.
    fam, src, dst, famv, membership, orgs = _setup(0.9)
    harvest = {f: v.copy() for f, v in fam.items()}
    harvest["content"][:20] = 0.05
    edges = edges_by_family(src, dst, np.ones(len(src)), famv)
    (counted,) = assess_communities(membership, fam, edges, orgs, CommunityRules())
    (ev,) = assess_communities(membership, fam, edges, orgs, CommunityRules(), harvest_scores=harvest)
    assert counted.is_campaign and not ev.is_campaign
    # The family evidence (the statistic) is the same: only the harvest test reads the harvest scores.
    assert ev.statistic == counted.statistic and ev.evidence == counted.evidence


def test_one_customer_organisation_is_not_a_campaign() -> None:
    fam, src, dst, famv, membership, orgs = _setup(0.9, org=True)
    (ev,) = assess_communities(membership, fam, edges_by_family(src, dst, np.ones(len(src)), famv), orgs, CommunityRules())
    assert ev.org_share == 1.0
    assert not ev.is_campaign


def test_account_verdicts_need_a_campaign_for_attack() -> None:
    fam, src, dst, famv, membership, orgs = _setup(0.9)
    evidence = assess_communities(membership, fam, edges_by_family(src, dst, np.ones(len(src)), famv), orgs, CommunityRules())
    values = np.column_stack([fam["content"], fam["coordination"]])
    values[25] = 1.0  # a heavy lone account: strong own evidence, no fleet
    signals = AccountSignals(ids=["c", "k"], families=["content", "coordination"], weights=np.ones(2), values=values,
                             raw=values, reasons=[pa.array([None] * N, pa.string())] * 2)
    # The two columns restate one trait; plain naive Bayes here (the decorrelation has its own test).
    s = score_accounts(signals, evidence, target_fpr=0.01, suspect_factor=10, own_cap=0.6, org_codes=orgs,
                       edges=(src, dst, np.ones(len(src))), profile_decorrelation=0.0)
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


def test_calibrated_threshold_never_lets_a_mass_of_tied_scores_past_the_rate() -> None:
    # 97% of the null below 0.5, 2% tied at a capped 0.52, 1% above: a 1% bar must not take in the 2% tie.
    null = np.concatenate([np.linspace(0.0, 0.5, 970), np.full(20, 0.52), np.linspace(0.6, 0.9, 10)])
    t = calibrated_threshold(null, 0.01)
    assert np.count_nonzero(null >= t) <= 0.01 * len(null)
    assert 0.52 < t <= 0.6
    # Without a tie the bar is the quantile itself.
    spread = np.linspace(0.0, 1.0, 1001)
    assert np.count_nonzero(spread >= calibrated_threshold(spread, 0.01)) == 10


def _profile_population(rng: np.random.Generator, n: int = 600) -> np.ndarray:
    """Raw measurements (accounts x 7): a fleet (0-39) with a shared profile, ordinary customers elsewhere."""
    raw = np.column_stack([rng.uniform(0, 0.05, n), rng.exponential(3.0, n), rng.uniform(0, 0.1, n),
                           rng.uniform(0, 0.2, n), rng.uniform(0, 1, n)])
    raw[:40, 0] = rng.uniform(0.15, 0.3, 40)  # the fleet asks for reasoning in 15-30% of its prompts,
    raw[:40, 1] = rng.uniform(20, 30, 40)  # sends 20-30 exchanges a day,
    raw[:40, 2] = rng.uniform(0.6, 0.9, 40)  # moved most of its traffic to a new release
    raw[:40, 3] = rng.uniform(0.3, 0.5, 40)  # and shares templates with other accounts;
    extra = rng.uniform(0, 1, (n, 2))  # two more traits the fleet shares (steady days, one-shot turns)
    extra[:40] = rng.uniform(0.9, 1.0, (40, 2))
    return np.column_stack([raw, extra])


def test_profile_ratio_separates_the_fleet_from_the_population() -> None:
    from distillwatch.score.profile import binned, profile_bar, profile_llr

    rng = np.random.default_rng(1)
    raw = _profile_population(rng)
    n = len(raw)
    member = np.zeros(n, dtype=bool)
    member[:30] = True  # community detection found 30 of the 40
    member[100:105] = True  # and swept in 5 ordinary customers
    population = ~member
    columns = binned(raw, [population, member], 8)
    llr = profile_llr(columns, member, population, iterations=3, decorrelation=0.0)  # plain naive Bayes
    bar = profile_bar(0.001, int(member.sum()), n)
    assert (llr[:30] >= bar).all()  # members, each judged without its own values
    assert (llr[30:40] >= bar).all()  # the rest of the fleet resembles them
    assert (llr[100:105] < 0).all()  # swept-in customers do not: re-weighting drops them from the profile
    assert (llr[200:] < bar).all()
    # Decorrelated (the default), the ratio is smaller (the fleet's ten outside accounts make its traits look
    # correlated in the population) but still ranks every fleet account above every ordinary one.
    dec = profile_llr(columns, member, population, iterations=3)
    assert (dec <= llr + 1e-9)[:40].all()
    assert dec[:40].min() > dec[40:].max()


def test_profile_bar_needs_more_for_a_smaller_campaign() -> None:
    from distillwatch.score.profile import profile_bar

    assert profile_bar(0.001, 10, 10_000) > profile_bar(0.001, 1_000, 10_000) > 0
    assert profile_bar(0.01, 100, 10_000) < profile_bar(0.001, 100, 10_000)


def test_quantile_bins_keep_nan_apart_and_resolve_both_groups() -> None:
    from distillwatch.score.profile import quantile_bins

    raw = np.array([0.0] * 90 + [0.2] * 5 + [0.25] * 5 + [np.nan])
    population = np.arange(101) < 90
    campaign = (np.arange(101) >= 90) & (np.arange(101) < 100)
    bins, n_bins = quantile_bins(raw, [population, campaign], 4)
    assert bins[-1] == n_bins - 1  # not measured: its own bin
    assert len({bins[0], bins[90], bins[95]}) == 3  # 0, 0.2 and 0.25 are told apart


def _fleet_graph(n: int, fleet: list[int], recruits: dict[int, list[str]]):
    """Typed edges: the fleet linked in content and behaviour; each recruit linked to every fleet member by the
    families given."""
    s, d, f = [], [], []
    for fam_name in ("content", "behaviour"):
        cs, cd, cf = _clique(fleet, fam_name)
        s, d, f = s + cs, d + cd, f + cf
    for r, fams in recruits.items():
        for m in fleet:
            for fam_name in fams:
                s, d, f = s + [r], d + [m], f + [fam_name]
    return np.array(s), np.array(d), np.array(f)


def test_a_tied_account_that_fits_the_profile_joins_the_campaign() -> None:
    rng = np.random.default_rng(2)
    raw = _profile_population(rng)
    n = len(raw)
    fleet = list(range(30))
    # 30-34: the rest of the fleet, tied in both families; 35: fleet-like but tied by prompts only;
    # 300: an ordinary customer tied in both families (a shared prompt library, the same release day).
    # 301: an ordinary customer tied by prompts only.
    recruits = {30: ["content", "behaviour"], 31: ["content", "behaviour"], 32: ["content", "behaviour"],
                33: ["content", "behaviour"], 34: ["content", "behaviour"], 35: ["content"], 300: ["content", "behaviour"],
                301: ["content"]}
    src, dst, famv = _fleet_graph(n, fleet, recruits)
    ones = np.ones(len(src))
    membership = np.full(n, -1)
    membership[fleet] = 0
    fam = {f: np.zeros(n) for f in ("behaviour", "content", "infrastructure", "registration", "coordination")}
    fam["content"][:40] = 0.6
    fam["behaviour"][:40] = 0.6
    evidence = assess_communities(membership, fam, edges_by_family(src, dst, ones, famv), np.full(n, -1), CommunityRules())
    assert evidence[0].is_campaign
    values = np.column_stack([fam["content"], fam["behaviour"]] + [np.zeros(n)] * 5)
    families = ["content", "behaviour", "behaviour", "coordination", "content", "behaviour", "behaviour"]
    signals = AccountSignals(ids=list("abcdefg"), families=families, weights=np.ones(7), values=values, raw=raw,
                             reasons=[pa.array([None] * n, pa.string())] * 7)
    s = score_accounts(signals, evidence, target_fpr=0.001, suspect_factor=10, own_cap=0.6,
                       edges=(src, dst, ones), typed_edges=(src, dst, ones, famv), extend_attachment=0.01,
                       profile_decorrelation=0.0)  # the tie rules; decorrelation: its own test
    # Members and tied fleet accounts join (an account at the very edge of the fleet's range may fall short:
    # each is judged against the others only).
    assert (s.community[:35] == 0).sum() >= 32
    assert (s.community[36:] == -1).all()
    assert s.community[300] == -1  # tied, but an ordinary customer
    assert s.community[301] == -1  # tied by prompts only, and ordinary
    # 35 resembles the fleet in every measurement but is tied to it by prompts only: one family of links, where a
    # recruit needs two, as a member does (a customer asking what a fleet asks is tied to it that way too).
    assert s.community[35] == -1
    assert "log-likelihood ratio" in s.reasons[31].as_py()


def test_decorrelation_counts_copies_of_one_measurement_once() -> None:
    from distillwatch.score.profile import decorrelation_weights

    rng = np.random.default_rng(3)
    base = rng.normal(size=500)
    contrib = np.column_stack([base, base, base, rng.normal(size=500)])  # three copies and one independent term
    w = decorrelation_weights(contrib, power=4.0)
    assert np.allclose(w[:3], 1 / 3, atol=0.01)
    assert w[3] > 0.99
    assert np.allclose(decorrelation_weights(contrib, power=0.0), 1.0)  # off


def test_recruit_bar_falls_as_the_tie_grows_and_with_the_members_share_among_the_tied() -> None:
    from distillwatch.score.profile import recruit_bar

    tie = np.array([1.2, 1.0, 1.0, 0.9, 0.5, 0.3] + [0.12] * 200)
    member = np.zeros(len(tie), dtype=bool)
    member[:3] = True
    bar = recruit_bar(0.001, tie, member)
    assert bar[3] < bar[4] < bar[5] < bar[10]
    # Tied as firmly as the members are, among few outsiders: the prior is the members' share there (3 : 1).
    assert np.isclose(bar[3], np.log(999) - np.log(3.0))


def test_untied_penalty_is_the_measured_ratio_of_lacking_the_tie() -> None:
    from distillwatch.score.accounts import untied_penalty

    # 20 fitting members, 2 of them without the tie; 80 candidates that do not fit, 72 without it.
    like = np.array([1.0] * 18 + [0.0] * 2 + [1.0] * 8 + [0.0] * 72)
    fits = np.array([True] * 20 + [False] * 80)
    is_member = np.array([True] * 20 + [False] * 80)
    assert np.isclose(untied_penalty(like, fits, is_member), np.log((3 / 22) / (73 / 82)))
    assert untied_penalty(like, fits, is_member) < 0


def test_lacking_the_tie_is_never_a_bonus() -> None:
    from distillwatch.score.accounts import untied_penalty

    # A young campaign: 5 fitting members, 4 of them untied; 40 candidates that do not fit, 10 untied. The smoothed
    # shares (5/7 against 11/42) would make lacking the tie evidence *for* belonging.
    like = np.array([1.0] + [0.0] * 4 + [1.0] * 30 + [0.0] * 10)
    fits = np.array([True] * 5 + [False] * 40)
    is_member = np.array([True] * 5 + [False] * 40)
    assert untied_penalty(like, fits, is_member) == 0.0
