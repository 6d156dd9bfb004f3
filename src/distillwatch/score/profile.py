"""Member fit by the campaign's profile: does this account look like the campaign's members or like the population?

At strong evasion no single account stands out (20% chain-of-thought prompts,
human-like timing, a home address), but a campaign's members resemble *each
other*: the same volume, the same pivot to a new release, the same share of
reasoning requests.  An analyst who has found a campaign asks of each account
tied to it "is this one of them?".  This module answers with a naive-Bayes
log-likelihood ratio over every account signal's raw measurement:

    llr(account) = sum over signals of ln P(bin | campaign members) / P(bin | population)

* bins are quantiles of each raw measurement over the population and over the
  campaign's members (``bins`` of each, merged, and one for "not measured"), so
  every signal counts on the same footing whatever its unit, the bins adapt to
  the traffic, and they resolve both the population's range and the campaign's;
* the campaign's distribution is estimated from its members *leaving the
  account itself out* (a member's own values never vouch for it); each bin's
  log-probability is its expectation under the Dirichlet posterior of the
  counts (uniform prior), not the log of the Laplace-smoothed share, so a
  profile learned from few accounts counts for less than one learned from many;
* communities include a few ordinary customers swept in by shared links, so the
  members are re-weighted by their posterior for ``iterations`` rounds (EM): the
  profile becomes the fleet's, not the community's;
* the population's distribution comes from the accounts outside every campaign;
* correlated measurements (volume, streaks, regular timing and single-turn
  conversations all say "an active account") would each add their own ratio
  and overstate the evidence, so each measurement's term is divided by its
  multiplicity among the others (``decorrelation_weights``).

The decision is Bayes's: an account fits when its posterior odds of being one
of the campaign's reach (1 - target FPR) : target FPR.  The prior odds of a
member are the campaign's share of the accounts (``profile_bar``); those of an
outside account tied to the campaign are the members' share among the accounts
tied to it at least as firmly (``recruit_bar``); a member is never asked for
more than the loosest tied outsider (``member_bar``).  The decorrelation is
approximate, so the bar is a ranking cut as much as an exact probability: the
benchmark (``bench/detection.py``) measures the false positives it lets through.
"""

from __future__ import annotations

import numpy as np
from scipy.special import digamma


def quantile_bins(raw: np.ndarray, groups: list[np.ndarray], bins: int) -> tuple[np.ndarray, int]:
    """Each account's bin of one raw measurement; NaN ("not measured") gets the last bin.

    Edges: ``bins``-quantiles of each group of accounts (masks), merged, so there
    is resolution both where the population lives and where the campaign does
    (most accounts never ask for chain-of-thought: the population's quantiles
    alone would put 2% and 20% in one bin).  Repeated edges collapse.  Returns
    (bin per account, number of bins).
    """
    probs = np.linspace(0.0, 1.0, bins + 1)[1:-1]
    edges = [np.quantile(raw[g & ~np.isnan(raw)], probs) for g in groups if np.any(g & ~np.isnan(raw))]
    merged = np.unique(np.concatenate(edges)) if edges else np.zeros(0)
    out = np.searchsorted(merged, np.nan_to_num(raw, nan=0.0), side="right")
    n_bins = len(merged) + 2
    return np.where(np.isnan(raw), n_bins - 1, out), n_bins


def binned(raw: np.ndarray, groups: list[np.ndarray], bins: int) -> list[tuple[np.ndarray, int]]:
    """Bins of every column of ``raw`` (accounts x measurements), edges from the quantiles of each group."""
    return [quantile_bins(raw[:, j], groups, bins) for j in range(raw.shape[1])]


def _expected_log_share(count: np.ndarray, total: np.ndarray) -> np.ndarray:
    """E[ln p] of a bin that holds ``count`` of ``total`` accounts, p ~ Dirichlet(1 + counts) (``total`` includes
    the bins' +1 each): psi(count + 1) - psi(total).

    The plug-in ln((count + 1) / total) treats the profile learned from few accounts as exact; the expectation
    over what the counts allow is lower the fewer accounts a bin rests on (about 1 / (2 (count + 1)) lower), so a
    campaign learned from 40 accounts asks more of an account than the same campaign learned from 400, with no
    constant chosen for it.
    """
    return digamma(count + 1.0) - digamma(total)


def _contributions(
    columns: list[tuple[np.ndarray, int]], weight: np.ndarray, pop: np.ndarray
) -> np.ndarray:
    """Accounts x measurements: E ln P(bin | campaign) - E ln P(bin | population), each leaving the account out."""
    out = np.zeros((len(weight), len(columns)))
    for j, (b, n_bins) in enumerate(columns):
        in_campaign = np.bincount(b, weights=weight, minlength=n_bins)
        in_population = np.bincount(b, weights=pop, minlength=n_bins)
        out[:, j] = _left_out_log_share(in_campaign, b, weight, n_bins) - _left_out_log_share(in_population, b, pop, n_bins)
    return out


def _left_out_log_share(in_bin: np.ndarray, b: np.ndarray, own: np.ndarray, n_bins: int) -> np.ndarray:
    """``_expected_log_share(in_bin[b] - own, own.sum() - own + n_bins)``: each account's bin, itself left out.

    Most accounts weigh 0 or 1 (outside the campaign, or wholly in the population): their values are computed
    once per bin and looked up (the same arithmetic, so the same values); only the members' fractional
    weights need a digamma each.
    """
    total = own.sum()
    out = np.empty(len(b))
    rest = np.ones(len(b), dtype=bool)
    for w in (0.0, 1.0):
        at = own == w
        if at.any():
            out[at] = _expected_log_share(in_bin - w, total - w + n_bins)[b[at]]
            rest &= ~at
    if rest.any():
        out[rest] = _expected_log_share(in_bin[b[rest]] - own[rest], total - own[rest] + n_bins)
    return out


def decorrelation_weights(contrib: np.ndarray, power: float) -> np.ndarray:
    """Each measurement's weight: 1 / its multiplicity, sum over measurements of max(0, r)^power.

    ``r`` is the correlation of two measurements' terms over the population.  k
    copies of one measurement get 1/k each (their sum counts once); an
    independent one keeps 1.  ``power`` sets how correlated two measurements must
    be to share their say (4: r = 0.8 shares 41%, r = 0.5 shares 6%); 0 turns the
    correction off (plain naive Bayes).
    """
    m = contrib.shape[1]
    if power <= 0 or contrib.shape[0] < 3 or m == 0:
        return np.ones(m)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.nan_to_num(np.corrcoef(contrib, rowvar=False), nan=0.0)
    r = np.atleast_2d(r)
    np.fill_diagonal(r, 1.0)
    return 1.0 / (np.clip(r, 0.0, 1.0) ** power).sum(axis=0)


def profile_llr(
    columns: list[tuple[np.ndarray, int]],
    members: np.ndarray,
    population: np.ndarray,
    iterations: int = 3,
    decorrelation: float = 4.0,
) -> np.ndarray:
    """Log-likelihood ratio, campaign profile vs population, for every account.

    ``columns``: binned measurements (``binned``); ``members``, ``population``:
    boolean masks (disjoint).  Members are scored leaving themselves out.  The
    decorrelation weights come from the first round's terms over the population.
    (The fleet's own accounts outside the community are part of it and make its
    traits look somewhat correlated too; measuring the correlation over only the
    accounts untied to the campaign instead let more customers fit on the benchmark.)
    """
    n = len(members)
    weight = members.astype(np.float64)
    pop = population.astype(np.float64)
    llr = np.zeros(n)
    factor: np.ndarray | None = None
    for _ in range(max(1, iterations)):
        contrib = _contributions(columns, weight, pop)
        if factor is None:
            factor = decorrelation_weights(contrib[population], decorrelation)
        llr = contrib @ factor
        # Posterior with even prior odds among the members: swept-in customers lose their say in the profile.
        weight = np.where(members, 1.0 / (1.0 + np.exp(-np.clip(llr, -50, 50))), 0.0)
    return llr


def profile_bar(target_fpr: float, members: int, accounts: int) -> float:
    """The ratio an account needs: posterior odds of (1 - target FPR) : target FPR that it is one of the campaign's.

    The prior is the campaign's share of the accounts (members : the others), so a
    small campaign in a large population needs more resemblance than a large one.
    """
    prior_odds = max(members, 1) / max(accounts - members, 1)
    return float(np.log((1.0 - target_fpr) / target_fpr) - np.log(prior_odds))


def recruit_bar(target_fpr: float, tie: np.ndarray, member: np.ndarray) -> np.ndarray:
    """The ratio an outside account needs, from how firmly it is tied to the campaign.

    Prior odds: members : others among the accounts tied to the campaign at least
    as firmly as this one (``tie``: link weight into the members over a median
    member's).  An account tied as firmly as the members are is one of few such
    outsiders; one linked by a single common prompt is one of thousands.
    """
    order = np.argsort(-tie, kind="stable")
    members_so_far = np.cumsum(member[order])
    # Position of the last account tied at least as firmly as each account (equal ties count together).
    last = np.searchsorted(-tie[order], -tie, side="right") - 1
    members_at = members_so_far[last].astype(np.float64)
    others_at = (last + 1) - members_at
    prior_odds = np.maximum(members_at, 1.0) / np.maximum(others_at, 1.0)
    return np.log((1.0 - target_fpr) / target_fpr) - np.log(prior_odds)


def member_bar(target_fpr: float, outside_bar: np.ndarray, member: np.ndarray, tied: np.ndarray) -> float:
    """The ratio a member needs: ``profile_bar``, but never more than the loosest tied outside account needs.

    ``outside_bar``: every account's ``recruit_bar``; ``tied``: the outside accounts judged at all.  Being one of
    the community ties an account to the campaign at least as firmly as the loosest tie that gets an outsider
    judged, so it should not be asked for more: with the campaign's share of *all* accounts as its prior, a
    member of a refitted campaign in a large population was asked 2-3 nats more than recruits tied less firmly.
    """
    bar = profile_bar(target_fpr, int(member.sum()), len(member))
    judged = tied & ~member
    return min(bar, float(outside_bar[judged].max())) if np.any(judged) else bar
