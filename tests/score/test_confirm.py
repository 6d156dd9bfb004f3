"""A campaign as reported (its fitting members) must pass the campaign tests itself."""

from __future__ import annotations

import numpy as np

from distillwatch.link.stage import LinkResult
from distillwatch.score.campaigns import CommunityRules
from distillwatch.score.stage import confirmed_campaigns

N = 400


def _graph(src: np.ndarray, dst: np.ndarray, family: np.ndarray) -> LinkResult:
    ones = np.ones(len(src))
    none = np.full(N, -1)
    return LinkResult(src, dst, ones, family, family, ones, src, dst, ones, none, none)


def _clique(members: range, family: str) -> tuple[list[int], list[int], list[str]]:
    pairs = [(i, j) for i in members for j in members if i < j]
    return [i for i, _ in pairs], [j for _, j in pairs], [family] * len(pairs)


def test_fitting_fleet_is_confirmed_and_a_handful_of_loose_accounts_is_not() -> None:
    rng = np.random.default_rng(0)
    fam = {f: rng.uniform(0, 0.1, N) for f in ("behaviour", "content", "infrastructure", "registration", "coordination")}
    fleet = range(20)
    fam["content"][list(fleet)] = 0.9
    fam["coordination"][list(fleet)] = 0.9
    s1, d1, f1 = _clique(fleet, "infrastructure")
    s2, d2, f2 = _clique(fleet, "coordination")
    # Four background accounts that a campaign's profile happened to take: one weak shared link, ordinary signals.
    loose = [100, 101, 102, 103]
    s3, d3, f3 = [100], [101], ["content"]
    graph = _graph(np.array(s1 + s2 + s3), np.array(d1 + d2 + d3), np.array(f1 + f2 + f3))
    fitting = {7: np.array(list(fleet)), 9: np.array(loose)}
    passed = confirmed_campaigns(fitting, fam, graph, np.full(N, -1), CommunityRules())
    assert passed == {7}


def test_a_piece_of_a_fleet_is_confirmed_on_every_account_that_fits_it() -> None:
    """Two campaigns claim the same fleet; the one that keeps few of its accounts is still tested on all of them."""
    rng = np.random.default_rng(1)
    fam = {f: rng.uniform(0, 0.1, N) for f in ("behaviour", "content", "infrastructure", "registration", "coordination")}
    fleet = list(range(20))
    fam["content"][fleet] = 0.9
    fam["coordination"][fleet] = 0.9
    s1, d1, f1 = _clique(range(20), "infrastructure")
    s2, d2, f2 = _clique(range(20), "coordination")
    graph = _graph(np.array(s1 + s2), np.array(d1 + d2), np.array(f1 + f2))
    # Campaign 3 fits all 20, campaign 5 fits 18 of them: after competing, 5 might keep only 2.
    passed = confirmed_campaigns({3: np.arange(20), 5: np.arange(2, 20)}, fam, graph, np.full(N, -1), CommunityRules())
    assert passed == {3, 5}


def test_no_campaign_members_confirms_nothing() -> None:
    fam = {f: np.zeros(N) for f in ("behaviour", "content", "infrastructure", "registration", "coordination")}
    empty = np.zeros(0, dtype=np.int64)
    graph = _graph(empty, empty, np.zeros(0, dtype=object))
    assert confirmed_campaigns({}, fam, graph, np.full(N, -1), CommunityRules()) == set()
