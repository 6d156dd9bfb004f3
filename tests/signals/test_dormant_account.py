"""dormant_account: aged accounts that stay silent, then send real volume, are measured; customers are not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import ibis
import numpy as np
import pyarrow as pa

from distillwatch.signals import SignalContext, load_signals
from distillwatch.signals.base import REGISTRY


def _ctx() -> SignalContext:
    start = datetime(2026, 5, 1, tzinfo=UTC)
    # steady customer; aged account silent 4 days; new sign-up on day 4; aged but occasional; no account record
    first = [start, start + timedelta(days=4), start + timedelta(days=4), start + timedelta(days=5), start + timedelta(days=2)]
    features = pa.table({
        "account_id": ["steady", "dormant", "new", "occasional", "unrecorded"],
        "first_ts": pa.array(first, pa.timestamp("us", tz="UTC")),
        "age_at_first_use_hours": [900.0, 2000.0, 2.0, 3000.0, None],
        "exchanges": [400, 120, 150, 5, 60],
    })
    return SignalContext(features=features, hours=np.zeros((5, 24)), population={})


def test_silent_then_sustained_is_measured_from_window_start_or_registration() -> None:
    load_signals()
    sig = REGISTRY["dormant_account"]
    res = sig.compute(_ctx(), sig.meta.params)
    np.testing.assert_allclose(res.raw[[0, 1, 2, 4]], [0.0, 4.0, 2.0 / 24, 2.0])
    assert res.raw[3] == 5.0  # measured, but below min_exchanges: no evidence
    np.testing.assert_allclose(res.value, [0.0, 1.0, 0.0, 0.0, 0.5])
    reasons = res.reason.to_pylist()
    assert reasons[1] == "silent for 4 days in the window, then put to sustained use"
    assert reasons[0] is None


def test_dormant_accounts_that_came_online_together_share_an_onset_key() -> None:
    load_signals()
    sig = REGISTRY["link_coordinated_onset"]
    ctx = _ctx()
    ctx.con = ibis.duckdb.connect()
    keys = sig.keys(ctx, sig.meta.params).to_pyarrow()
    by_acc: dict[str, set[str]] = {}
    for a, k in zip(keys.column("account_id").to_pylist(), keys.column("key").to_pylist(), strict=True):
        by_acc.setdefault(a, set()).add(k)
    # steady and new were never silent; occasional sent too little; dormant (day 4) and unrecorded (day 2) were
    # silent but came online two days apart, so they share no key.
    assert set(by_acc) == {"dormant", "unrecorded"}
    assert not by_acc["dormant"] & by_acc["unrecorded"]
    late = sig.keys(ctx, {**sig.meta.params, "bucket_hours": 24.0 * 8}).to_pyarrow()
    assert len(set(late.column("key").to_pylist())) < late.num_rows  # in one 8-day bucket they meet
