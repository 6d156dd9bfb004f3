"""The member fit's estimates: expected log shares under the counts' posterior, and the member's bar."""

from __future__ import annotations

import numpy as np

from distillwatch.score.profile import _expected_log_share, digamma, member_bar, profile_bar, recruit_bar

EULER_GAMMA = 0.5772156649015329


def test_digamma_matches_its_identities() -> None:
    assert abs(digamma(np.array([1.0]))[0] + EULER_GAMMA) < 1e-9
    x = np.array([1.0, 1.3, 2.5, 6.9, 7.0, 40.0])
    assert np.allclose(digamma(x + 1.0) - digamma(x), 1.0 / x, atol=1e-9)  # psi(x + 1) = psi(x) + 1/x
    big = np.array([1e4, 1e6])
    assert np.allclose(digamma(big), np.log(big) - 0.5 / big, atol=1e-9)


def test_a_share_learned_from_fewer_accounts_counts_for_less() -> None:
    # The same share (a fifth of the accounts in the bin), estimated from 10, 100 and 1,000 accounts over 8 bins.
    count = np.array([2.0, 20.0, 200.0])
    total = np.array([10.0, 100.0, 1000.0]) + 8.0
    expected = _expected_log_share(count, total)
    plug_in = np.log((count + 1.0) / total)
    gap = plug_in - expected
    assert (gap > 0).all()  # Jensen: E ln p < ln E p
    assert gap[0] > gap[1] > gap[2]  # and the gap shrinks as the profile rests on more accounts
    assert np.allclose(gap, 0.5 / (count + 1.0) - 0.5 / total, rtol=0.2)


def test_a_member_is_never_asked_for_more_than_the_loosest_tied_outsider() -> None:
    n = 10_000
    member = np.zeros(n, dtype=bool)
    member[:100] = True
    tie = np.zeros(n)
    tie[:100] = 1.0
    tie[100:130] = np.linspace(0.9, 0.1, 30)  # 30 outside accounts tied to the campaign, the loosest at 0.1
    tied = (tie >= 0.1) & ~member
    outside = recruit_bar(0.001, tie, member)
    bar = member_bar(0.001, outside, member, tie >= 0.1)
    assert bar == outside[tied].max() < profile_bar(0.001, 100, n)
    # Nobody outside tied: the campaign's share of all accounts, as before.
    assert member_bar(0.001, outside, member, member.copy()) == profile_bar(0.001, 100, n)
