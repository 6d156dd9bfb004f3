"""link_synchronised_pivot: accounts that move to a new release together share a key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import ibis
import numpy as np
import pyarrow as pa

from distillwatch.signals import SignalContext, load_signals
from distillwatch.signals.base import REGISTRY


def _exchanges() -> pa.Table:
    """Three days of an old model; a new model from day 3. Fleet a1..a3 switch within 2 h (a3 with few requests);
    b1 days later; b2 tries it; c1 sends it as much as a1 but keeps most of its work on the old model."""
    start = datetime(2026, 5, 1, tzinfo=UTC)
    release = start + timedelta(days=3)
    rows: list[tuple[str, datetime, str]] = []
    for acc in ("a1", "a2", "a3", "b1", "b2", "c1"):
        rows += [(acc, start + timedelta(hours=h), "old") for h in range(0, 60, 3)]
    for i, (acc, n) in enumerate((("a1", 25), ("a2", 25), ("a3", 6))):
        rows += [(acc, release + timedelta(minutes=30 * i + k), "new") for k in range(n)]
    rows += [("c1", release + timedelta(hours=1, minutes=k), "new") for k in range(25)]
    rows += [("c1", release + timedelta(hours=1, minutes=k, seconds=30), "old") for k in range(60)]
    rows += [(acc, release + timedelta(days=3, minutes=k), "new") for acc in ("b1",) for k in range(25)]
    rows += [("b2", release + timedelta(hours=1, minutes=k), "new") for k in range(3)]  # a try, not a pivot
    acc, ts, model = zip(*rows, strict=True)
    sec = np.array([t.timestamp() for t in ts])
    return pa.table({"account_id": list(acc), "model": list(model), "sec": sec})


def test_fleet_switching_together_shares_keys_customers_do_not() -> None:
    load_signals()
    sig = REGISTRY["link_synchronised_pivot"]
    con = ibis.duckdb.connect()
    ctx = SignalContext(features=pa.table({"account_id": ["x"]}), hours=np.zeros((1, 24)), population={}, con=con,
                        ex=con.create_table("ex", _exchanges()))
    keys = sig.keys(ctx, sig.meta.params).to_pyarrow()
    by_acc: dict[str, set[str]] = {}
    for a, k in zip(keys.column("account_id").to_pylist(), keys.column("key").to_pylist(), strict=True):
        by_acc.setdefault(a, set()).add(k)
    # b1 too late, b2 too few requests, c1 did not move its work; "old" is not new
    assert set(by_acc) == {"a1", "a2", "a3"}
    assert by_acc["a1"] & by_acc["a2"] & by_acc["a3"]
