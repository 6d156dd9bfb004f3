"""Account scores, verdicts calibrated to a target false-positive rate, and reasons in words.

score = 1 - (1 - own) x (1 - campaign), where ``own`` is the account's own
evidence (the mean of its strongest signal families, capped so that no single
account is called an attack without coordination) and ``campaign`` is its
campaign's confidence times how firmly the account is attached to it.

Thresholds are not constants: they are quantiles of the score over the accounts
outside any campaign (the bulk of the traffic, which is overwhelmingly benign),
at 1 - target_fpr for `attack` and 1 - target_fpr x factor for `suspect`.
`attack` additionally requires campaign membership: distillation at scale is a
coordinated activity, and a single heavy account is at most a suspect.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from distillwatch.score.campaigns import HARVEST_FAMILIES, CampaignEvidence
from distillwatch.signals import AccountSignals
from distillwatch.signals.base import join_present

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


def own_evidence(signals: AccountSignals, top_families: int = 3) -> np.ndarray:
    """Mean of the account's ``top_families`` strongest family scores (several families needed to be high)."""
    fams = signals.family_scores()
    if not fams:
        return np.zeros(signals.values.shape[0])
    m = np.column_stack(list(fams.values()))
    k = min(top_families, m.shape[1])
    return -np.sort(-m, axis=1)[:, :k].mean(axis=1)


def _link_families(
    members: np.ndarray, typed_edges: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], n: int, covered_at: float = 0.5
) -> np.ndarray:
    """For each member, how many families of edges tie it to the other members (weight >= ``covered_at``)."""
    src, dst, w, fam = typed_edges
    inside = np.zeros(n, dtype=bool)
    inside[members] = True
    both = inside[src] & inside[dst]
    count = np.zeros(len(members))
    pos = np.full(n, -1, dtype=np.int64)
    pos[members] = np.arange(len(members))
    for f in np.unique(fam[both]):
        sel = both & (fam == f)
        deg = np.zeros(n)
        np.add.at(deg, src[sel], w[sel])
        np.add.at(deg, dst[sel], w[sel])
        count += deg[members] >= covered_at
    return count


def _extend(
    ev: CampaignEvidence,
    edges: tuple[np.ndarray, np.ndarray, np.ndarray],
    n: int,
    min_attachment: float,
    typed_edges: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None,
    covered_at: float = 0.5,
) -> tuple[np.ndarray, np.ndarray]:
    """The campaign's members plus outside accounts tied to them as firmly as a typical member.

    Community detection cuts a large fleet at arbitrary places; an account left
    just outside, whose links into the campaign weigh at least ``min_attachment``
    of a median member's internal links, belongs to it.
    """
    src, dst, w = edges
    inside = np.zeros(n, dtype=bool)
    inside[ev.members] = True
    tie = np.zeros(n)
    into = inside[dst] & ~inside[src]
    np.add.at(tie, src[into], w[into])
    into = inside[src] & ~inside[dst]
    np.add.at(tie, dst[into], w[into])
    own_tie = np.zeros(n)
    both = inside[src] & inside[dst]
    np.add.at(own_tie, src[both], w[both])
    np.add.at(own_tie, dst[both], w[both])
    median = float(np.median(own_tie[ev.members])) if len(ev.members) else 0.0
    if median <= 0:
        return ev.members, ev.attachment
    eligible = (tie / median) >= min_attachment
    if typed_edges is not None:
        # An outsider must be tied in every harvest family (content, behaviour) that ties a typical member:
        # a developer who shares the fleet's prompts but did not move with it to a new release stays out.
        t_src, t_dst, t_w, t_fam = typed_edges
        for fam_name in HARVEST_FAMILIES:
            sel = t_fam == fam_name
            fam_tie, fam_own = np.zeros(n), np.zeros(n)
            for a, b in ((t_src[sel], t_dst[sel]), (t_dst[sel], t_src[sel])):
                w_sel = t_w[sel]
                np.add.at(fam_tie, a[inside[b] & ~inside[a]], w_sel[inside[b] & ~inside[a]])
                np.add.at(fam_own, a[inside[b] & inside[a]], w_sel[inside[b] & inside[a]])
            if np.median(fam_own[ev.members]) >= covered_at:
                eligible &= fam_tie >= covered_at
    outside = np.flatnonzero(eligible & ~inside)
    members = np.concatenate([ev.members, outside])
    attachment = np.concatenate([ev.attachment, np.clip(tie[outside] / median, 0.0, 1.0)])
    return members, attachment


def calibrated_threshold(null_scores: np.ndarray, rate: float) -> float:
    """The (1 - rate) quantile of the null scores; above every null score when the null is too small to resolve it."""
    if len(null_scores) == 0:
        return 1.0
    if len(null_scores) * rate < 1:
        # Fewer than one expected false positive even at the maximum: stay just above the null.
        return float(np.nextafter(null_scores.max(), 2.0))
    return float(np.quantile(null_scores, 1.0 - rate, method="higher"))


def score_accounts(
    signals: AccountSignals,
    communities: list[CampaignEvidence],
    *,
    target_fpr: float,
    suspect_factor: float,
    own_cap: float,
    min_accounts: int = 3,
    fit_floor: float = 0.4,
    org_codes: np.ndarray | None = None,
    org_discount: float = 1.0,
    edges: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    extend_attachment: float = 0.5,
    typed_edges: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None,
    covered_at: float = 0.5,
    harvest_level: float = 0.3,
) -> AccountScores:
    n = signals.values.shape[0]
    own = own_evidence(signals) * own_cap
    camp = np.zeros(n)
    community = np.full(n, -1, dtype=np.int64)
    fams = signals.family_scores()
    team_member = np.zeros(n)
    if org_codes is not None and np.any(org_codes >= 0):
        counts = np.bincount(org_codes[org_codes >= 0])
        team_member[org_codes >= 0] = counts[org_codes[org_codes >= 0]] >= 2
    for ev in communities:
        if not ev.is_campaign:
            continue
        members, attachment = ev.members, ev.attachment
        if edges is not None:
            members, attachment = _extend(ev, edges, n, extend_attachment, typed_edges, covered_at)
        # A member counts in full only if it shows the campaign's harvest profile itself: an ordinary
        # customer swept in by a shared address or client keeps its own, low, score.
        # Judged in every harvest family the campaign shows (its members' mean at ``harvest_level``; at least
        # its strongest): a heavy developer matches a fleet's volume and pivot but not its content.
        profile = [f for f in HARVEST_FAMILIES if ev.member_mean[f] >= harvest_level] or [
            max(HARVEST_FAMILIES, key=lambda f: ev.member_mean[f])
        ]
        fit = np.ones(len(members))
        for fam_name in profile:
            own_level = fams.get(fam_name, np.zeros(n))[members]
            fam_fit = np.clip((own_level / max(ev.member_mean[fam_name], 1e-9) - fit_floor) / (1.0 - fit_floor), 0.0, 1.0)
            fit = np.minimum(fit, fam_fit)
        # Members of a customer organisation with several accounts are a known customer's team.
        fit = fit * (1.0 - org_discount * team_member[members])
        # Each member should be tied to the others by two independent families of links (an address
        # and a template, a payment and a sign-up burst...): one shared client library is not a fleet.
        if typed_edges is not None:
            fit = fit * np.minimum(1.0, _link_families(members, typed_edges, n) / 2.0)
        part = ev.confidence * attachment * fit
        better = part > camp[members]
        camp[members[better]] = part[better]
        community[members[better & (fit > 0)]] = ev.community
    # A campaign keeps its name only with enough members left after the fit: labels C001, C002...
    # by retained members (most first), ties by community id, so a given input always names them alike.
    ids, counts = np.unique(community[community >= 0], return_counts=True)
    small = ids[counts < min_accounts]
    drop = np.isin(community, small)
    camp[drop] = 0.0
    community[drop] = -1
    keep = counts >= min_accounts
    order = sorted(zip(-counts[keep], ids[keep], strict=True))
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

    reasons = _reasons(signals, community, communities, campaign_labels)
    return AccountScores(
        own=own,
        campaign_part=camp,
        score=np.clip(score, 0.0, 1.0),
        verdict=verdict,
        community=community,
        reasons=reasons,
        thresholds={"attack": t_attack, "suspect": t_suspect, "null_accounts": int(len(null))},
        labels=campaign_labels,
    )


def _reasons(
    signals: AccountSignals,
    community: np.ndarray,
    communities: list[CampaignEvidence],
    campaign_labels: dict[int, str],
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
        camp_text[community == cid] = (
            f"member of campaign {campaign_labels[cid]} (evidence: {fams})"
        )
    parts.append(pa.array(camp_text, pa.string()))
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
