"""The member fit's estimates: expected log shares under the counts' posterior, and the member's bar."""

from __future__ import annotations

import numpy as np

from distillwatch.score.profile import _expected_log_share, member_bar, profile_bar, recruit_bar


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
