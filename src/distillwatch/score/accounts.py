"""Account scores, verdicts calibrated to a target false-positive rate, and reasons in words.

score = 1 - (1 - own) x (1 - campaign), where ``own`` is the account's own
evidence (the mean of its strongest signal families, capped so that no single
account is called an attack without coordination) and ``campaign`` is its
campaign's confidence when the account fits the campaign's profile (``profile.py``:
it resembles the campaign's members more than the population, beyond a
calibrated bar) and is tied to the others by two families of links.  Members are
the community's accounts; an outside account tied to the campaign (a *recruit*)
is judged too, with a prior from how firmly it is tied.

Thresholds are not constants: they are quantiles of the score over the accounts
outside any campaign (the bulk of the traffic, which is overwhelmingly benign),
at 1 - target_fpr for `attack` and 1 - target_fpr x factor for `suspect`.
`attack` additionally requires campaign membership: distillation at scale is a
coordinated activity, and a single heavy account is at most a suspect.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from distillwatch.score.campaigns import CampaignEvidence, FamilyEdges, edges_by_family
from distillwatch.score.profile import binned, member_bar, profile_llr, recruit_bar
from distillwatch.signals import AccountSignals
from distillwatch.signals.base import FAMILIES, join_present, num, words

MAX_REASONS = 4


@dataclass
class AccountScores:
    own: np.ndarray
    campaign_part: np.ndarray
    score: np.ndarray
    verdict: np.ndarray  # object array of "attack" / "suspect" / "benign"
    community: np.ndarray  # community id of the campaign the account belongs to, -1 = none
    reasons: pa.Array
    thresholds: dict[str, float]
    labels: dict[int, str]  # community id -> campaign id
    # community id -> every account that fits that campaign, before the campaigns compete for accounts
    fitting: dict[int, np.ndarray] = field(default_factory=dict)


def own_evidence(signals: AccountSignals, top_families: int = 3) -> np.ndarray:
    """Mean of the account's ``top_families`` strongest family scores (several families needed to be high)."""
    fams = signals.family_scores()
    if not fams:
        return np.zeros(signals.values.shape[0])
    m = np.column_stack(list(fams.values()))
    k = min(top_families, m.shape[1])
    return -np.sort(-m, axis=1)[:, :k].mean(axis=1)


def _link_families(members: np.ndarray, typed_edges: FamilyEdges, n: int, covered_at: float = 0.5) -> np.ndarray:
    """For each member, how many families of edges tie it to the other members (weight >= ``covered_at``)."""
    inside = np.zeros(n, dtype=bool)
    inside[members] = True
    both = np.flatnonzero(inside[typed_edges.src] & inside[typed_edges.dst])
    src, dst, w, fam = (typed_edges.src[both], typed_edges.dst[both], typed_edges.weight[both], typed_edges.family[both])
    count = np.zeros(len(members))
    # The edges come grouped by family, so each family is one slice of the internal edges.
    bounds = np.searchsorted(fam, np.arange(len(FAMILIES) + 1))
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        if hi > lo:
            deg = np.bincount(src[lo:hi], weights=w[lo:hi], minlength=n) + np.bincount(dst[lo:hi], weights=w[lo:hi], minlength=n)
            count += deg[members] >= covered_at
    return count


def _ties_by_family(target: np.ndarray, typed_edges: FamilyEdges, n: int) -> Iterator[np.ndarray]:
    """For each family in ``FAMILIES`` order, every account's summed edge weight to the accounts in ``target``
    (a boolean mask over the ``n`` accounts)."""
    bounds = np.searchsorted(typed_edges.family, np.arange(len(FAMILIES) + 1))
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        src, dst, w = typed_edges.src[lo:hi], typed_edges.dst[lo:hi], typed_edges.weight[lo:hi]
        tie = np.zeros(n)
        for a, b in ((src, dst), (dst, src)):
            into = target[b]
            tie += np.bincount(a[into], weights=w[into], minlength=n)
        yield tie


def _families_tying(
    candidates: np.ndarray, target: np.ndarray, typed_edges: FamilyEdges, n: int, covered_at: float
) -> np.ndarray:
    """For each candidate, how many families of edges tie it to the accounts in ``target`` (weight >= ``covered_at``)."""
    count = np.zeros(len(candidates))
    for tie in _ties_by_family(target, typed_edges, n):
        count += tie[candidates] >= covered_at
    return count


def _tied_like_the_members(
    candidates: np.ndarray, fits: np.ndarray, typed_edges: FamilyEdges, n: int, covered_at: float
) -> np.ndarray:
    """1 for candidates tied to the fitting accounts (``fits``: the candidates that fit the profile) in every
    family whose links tie the median fitting account (strength >= ``covered_at``), else 0.

    A fleet's accounts are tied to each other the same way (their prompts *and* their synchronised move to a new
    release, or their coming online together); a customer who shares a few of its prompts but did not move or
    start with it is not one of them.  Every family, not only the harvest ones: a careful fleet's prompts tie it
    to customers as often as to itself, and what ties its accounts to each other is then how they are run
    (demo, strong evasion, 192 h into the log: 3 customers recruited on prompt links alone, none with it).
    """
    fitting = np.zeros(n, dtype=bool)
    fitting[candidates[fits]] = True
    ok = np.ones(len(candidates))
    if not fitting.any():
        return ok
    for tie in _ties_by_family(fitting, typed_edges, n):
        if np.median(tie[fitting]) >= covered_at:
            ok *= tie[candidates] >= covered_at
    return ok


def untied_penalty(like: np.ndarray, fits: np.ndarray, is_member: np.ndarray) -> float:
    """The log-likelihood ratio of *not* being tied like the fitting accounts (``like`` 0), fleet vs the rest.

    P(not tied | one of the campaign's) is measured on the fitting members (who were found by community
    detection, so never held to the tie); P(not tied | not) on the candidates that do not fit.  Both are
    smoothed (+1 / +2).  A customer who shares the fleet's prompts but did not move with it to a new release
    pays this in its profile ratio; a fleet account that missed the move but fits well otherwise can still
    join.
    """
    untied = like <= 0
    fitting_members = fits & is_member
    q_fleet = (np.sum(untied & fitting_members) + 1.0) / (np.sum(fitting_members) + 2.0)
    q_other = (np.sum(untied & ~fits) + 1.0) / (np.sum(~fits) + 2.0)
    # Lacking the tie is never evidence of belonging: with few fitting members the smoothed shares can invert.
    return min(0.0, float(np.log(q_fleet / q_other)))


def _assign(
    parts: np.ndarray, ratios: np.ndarray, bars: np.ndarray, campaigns: list[CampaignEvidence], min_accounts: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each account to the campaign that gives it the largest part.

    A campaign counts only if at least ``min_accounts`` accounts fit it (before the
    campaigns compete for them: the two halves of one fleet, cut apart by community
    detection, may claim the same accounts).  Returns per account: campaign part,
    community id (-1 none), profile ratio and its bar (NaN outside campaigns).
    """
    n = parts.shape[1]
    if not campaigns:
        return np.zeros(n), np.full(n, -1, dtype=np.int64), np.full(n, np.nan), np.full(n, np.nan)
    live = (parts > 0).sum(axis=1) >= min_accounts
    masked = np.where(live[:, None], parts, 0.0)
    best = masked.argmax(axis=0)
    rows = np.arange(n)
    part = masked[best, rows]
    assigned = part > 0
    ids = np.array([ev.community for ev in campaigns], dtype=np.int64)
    return (
        part,
        np.where(assigned, ids[best], -1),
        np.where(assigned, ratios[best, rows], np.nan),
        np.where(assigned, bars[best, rows], np.nan),
    )


def calibrated_threshold(null_scores: np.ndarray, rate: float) -> float:
    """The lowest threshold that at most ``rate`` of the null scores reach (``score >= threshold``).

    The (1 - rate) quantile, unless many null scores are tied there: accounts whose own evidence reaches
    its cap all score alike (at the reported campaign's full scale 2.2% of the accounts tied at the quantile
    of the `suspect` bar, which targets 1%), and counting the ties in would let more than ``rate`` through,
    so the threshold goes just above them.  Above every null score when the null is too small to resolve it.
    """
    if len(null_scores) == 0:
        return 1.0
    if len(null_scores) * rate < 1:
        # Fewer than one expected false positive even at the maximum: stay just above the null.
        return float(np.nextafter(null_scores.max(), 2.0))
    threshold = float(np.quantile(null_scores, 1.0 - rate, method="higher"))
    if np.count_nonzero(null_scores >= threshold) > rate * len(null_scores):
        threshold = float(np.nextafter(threshold, 2.0))
    return threshold


def relative_tie(members: np.ndarray, edges: tuple[np.ndarray, np.ndarray, np.ndarray], n: int) -> np.ndarray:
    """Every account's link weight into the campaign, relative to a median member's internal link weight.

    Members: their internal weight; outsiders: the weight of their links to members.
    """
    src, dst, w = edges
    inside = np.zeros(n, dtype=bool)
    inside[members] = True
    tie = np.zeros(n)
    for a, b in ((src, dst), (dst, src)):
        tie += np.bincount(a[inside[b]], weights=w[inside[b]], minlength=n)
    median = float(np.median(tie[members])) if len(members) else 0.0
    return tie / median if median > 0 else np.zeros(n)


def score_accounts(
    signals: AccountSignals,
    communities: list[CampaignEvidence],
    *,
    target_fpr: float,
    suspect_factor: float,
    own_cap: float,
    min_accounts: int = 3,
    org_codes: np.ndarray | None = None,
    org_discount: float = 1.0,
    edges: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    extend_attachment: float = 0.1,
    typed_edges: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | FamilyEdges | None = None,
    covered_at: float = 0.5,
    profile_bins: int = 8,
    profile_iterations: int = 3,
    profile_decorrelation: float = 4.0,
) -> AccountScores:
    n = signals.values.shape[0]
    if isinstance(typed_edges, tuple):
        typed_edges = edges_by_family(*typed_edges)
    own = own_evidence(signals) * own_cap
    team_member = np.zeros(n)
    if org_codes is not None and np.any(org_codes >= 0):
        counts = np.bincount(org_codes[org_codes >= 0])
        team_member[org_codes >= 0] = counts[org_codes[org_codes >= 0]] >= 2
    campaigns = [ev for ev in communities if ev.is_campaign]
    in_campaign = np.zeros(n, dtype=bool)
    for ev in campaigns:
        in_campaign[ev.members] = True
    # Per campaign and account: the campaign part of the score (0 = not a member) and the profile ratio.
    parts = np.zeros((len(campaigns), n))
    ratios = np.full((len(campaigns), n), np.nan)
    bars = np.full((len(campaigns), n), np.nan)
    measurements = signals.profile_measurements()
    for k, ev in enumerate(campaigns):
        member = np.zeros(n, dtype=bool)
        member[ev.members] = True
        # Contrasted with the population: every account outside the campaigns.
        # Tied: linked to the members at least ``extend_attachment`` x as firmly as a median member is. Community
        # detection cuts a loosely linked fleet at arbitrary places; a tied account that fits the profile belongs.
        tie = relative_tie(ev.members, edges, n) if edges is not None else member.astype(np.float64)
        tied = tie >= extend_attachment
        columns = binned(measurements, [~in_campaign, member], profile_bins)
        population = ~in_campaign & ~member
        llr = profile_llr(columns, member, population, profile_iterations, profile_decorrelation)
        # The prior odds of belonging: for a member, the campaign's share of the accounts; for an outside account,
        # the members' share among the accounts tied to the campaign at least as firmly as it is.
        outside_bar = recruit_bar(target_fpr, tie, member)
        bar = np.where(member, member_bar(target_fpr, outside_bar, member, tied), outside_bar)
        members = np.flatnonzero(member | tied)
        # A member counts only if it fits the campaign's profile itself: an ordinary customer swept in by a
        # shared address or a common prompt keeps its own, low, score.
        fit = (llr[members] >= bar[members]).astype(np.float64)
        if typed_edges is not None:
            # Judged against every fitting account (a fleet's outlying accounts are tied to each other too), but only
            # recruits are weighed by it: community detection already found the members tied to each other.
            like = _tied_like_the_members(members, fit > 0, typed_edges, n, covered_at)
            is_member = member[members]
            llr[members] += np.where(is_member | (like > 0), 0.0, untied_penalty(like, fit > 0, is_member))
            fit = np.where(is_member, fit, llr[members] >= bar[members]).astype(np.float64)
            # A recruit must be tied to the accounts that fit by two families of links, as a member must be tied to
            # the other members (below): a customer whose prompts resemble the fleet's (one family) is not tied
            # to it as its accounts are (demo, strong evasion, 72 h into the log: two customers with chain-of-
            # thought prompts from datacenter addresses were recruited on prompt links alone).
            fitting = np.zeros(n, dtype=bool)
            fitting[members[fit > 0]] = True
            tied_families = _families_tying(members, fitting, typed_edges, n, covered_at)
            fit = np.where(is_member | (tied_families >= 2), fit, 0.0)
        # Members of a customer organisation with several accounts are a known customer's team.
        fit = fit * (1.0 - org_discount * team_member[members])
        # Each member should be tied to the others by two independent families of links (an address
        # and a template, a pivot and a prompt...): one shared client library is not a fleet.
        if typed_edges is not None:
            fit = fit * np.minimum(1.0, _link_families(members, typed_edges, n) / 2.0)
        parts[k, members] = ev.confidence * fit
        ratios[k, members] = llr[members]
        bars[k, members] = bar[members]
    camp, community, resemblance, resemblance_bar = _assign(parts, ratios, bars, campaigns, min_accounts)
    # Labels C001, C002... by members (most first), ties by community id, so a given input always names them alike.
    ids, counts = np.unique(community[community >= 0], return_counts=True)
    order = sorted(zip(-counts, ids, strict=True))
    campaign_labels = {int(cid): f"C{i + 1:03d}" for i, (_, cid) in enumerate(order)}
    score = 1.0 - (1.0 - own) * (1.0 - camp)

    null = score[community < 0]
    t_attack = calibrated_threshold(null, target_fpr)
    t_suspect = min(calibrated_threshold(null, min(0.5, target_fpr * suspect_factor)), t_attack)
    verdict = np.full(n, "benign", dtype=object)
    verdict[score >= t_suspect] = "suspect"
    verdict[(score >= t_attack) & (community >= 0)] = "attack"
    # Campaign members that fall under the attack bar stay suspects at least (they are linked).
    verdict[(community >= 0) & (verdict == "benign") & (camp > 0)] = "suspect"

    reasons = _reasons(signals, community, communities, campaign_labels, resemblance, resemblance_bar)
    return AccountScores(
        own=own,
        campaign_part=camp,
        score=np.clip(score, 0.0, 1.0),
        verdict=verdict,
        community=community,
        reasons=reasons,
        thresholds={"attack": t_attack, "suspect": t_suspect, "null_accounts": int(len(null))},
        labels=campaign_labels,
        fitting={ev.community: np.flatnonzero(parts[k] > 0) for k, ev in enumerate(campaigns) if np.any(parts[k] > 0)},
    )


def _reasons(
    signals: AccountSignals,
    community: np.ndarray,
    communities: list[CampaignEvidence],
    campaign_labels: dict[int, str],
    resemblance: np.ndarray,
    resemblance_bar: np.ndarray,
) -> pa.Array:
    """Up to MAX_REASONS signal reasons (strongest first) and the campaign's, joined with '; '."""
    n = signals.values.shape[0]
    parts: list[pa.Array] = []
    by_id = {ev.community: ev for ev in communities if ev.is_campaign}
    camp_text = np.full(n, None, dtype=object)
    for cid, ev in by_id.items():
        if cid not in campaign_labels:
            continue
        fams = ", ".join(ev.families)
        camp_text[community == cid] = f"member of campaign {campaign_labels[cid]} (evidence: {fams}; resembles its members: "
    fit_text = words(
        "profile log-likelihood ratio ", num(np.nan_to_num(resemblance), 1), " against a bar of ",
        num(np.nan_to_num(resemblance_bar), 1), ")",
    )
    member_text = pc.binary_join_element_wise(pa.array(camp_text, pa.string()), fit_text, "")
    parts.append(member_text)
    if signals.values.shape[1]:
        contrib = signals.values * signals.weights
        order = np.argsort(-contrib, axis=1, kind="stable")[:, :MAX_REASONS]
        texts = np.column_stack(
            [r.to_numpy(zero_copy_only=False) if len(r) else np.full(n, None, dtype=object) for r in signals.reasons]
        )
        rows = np.arange(n)
        for k in range(order.shape[1]):
            parts.append(pa.array(texts[rows, order[:, k]], pa.string()))
    joined = join_present(parts)
    return pc.if_else(pc.equal(joined, ""), "no signal fired", joined)
