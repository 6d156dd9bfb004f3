"""Behaviour features: the time columns, inter-arrival gaps, streaks and the daily rhythm.

The per-account volume, rate, token, tool and model-pivot columns are computed in
``features.passes`` (their readable definitions are in ``tests/features/reference.py``).
All table work is Ibis; only the 24-bin hour histograms are finished in numpy
(a fixed-width array per account, vectorised over accounts).
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

DAY = 86400.0


def with_time(ex: ir.Table) -> ir.Table:
    """Adds epoch seconds, the UTC day number and the UTC hour to each exchange."""
    sec = ex.ts.epoch_seconds().cast("float64")
    # Ibis types ``hour()`` as int32 and drops a cast to int32 as a no-op, but DuckDB's EXTRACT gives a
    # BIGINT: through int64 the cast reaches the SQL, so a view (``Features.rows``) says int32 as a table does.
    hour = ex.ts.hour().cast("int64").cast("int32")
    return ex.mutate(sec=sec, daynum=(sec / DAY).floor().cast("int64"), hour=hour)


def inter_arrival(ex: ir.Table) -> ir.Table:
    """Mean and standard deviation of each account's gaps between consecutive exchanges.

    The time-ordered window is the one sort over every exchange here, so it carries only
    (account_id, sec): an engine's window operator sorts whole rows, and the exchanges' other
    columns made it spill tens of GB at 90M rows.  Ties on ``sec`` need no tie-break: however
    tied rows are ordered, the sorted times and so the gaps are the same.
    """
    gapped = gaps(ex)
    return gapped.group_by("account_id").aggregate(gap_mean=gapped.gap.mean(), gap_std=gapped.gap.std())


def gaps(ex: ir.Table) -> ir.Table:
    """(account_id, sec, gap): each exchange's seconds since the account's previous one (null for its first).

    Shared by ``inter_arrival`` and the incremental partials (``incremental.partials.account_part``),
    which keep the gaps' moments per partition.  See ``inter_arrival`` for why only two columns.
    """
    narrow = ex.select("account_id", "sec")
    w = ibis.window(group_by="account_id", order_by=narrow.sec)
    return narrow.mutate(gap=narrow.sec - narrow.sec.lag().over(w))


def daily_from_counts(per_day: ir.Table) -> ir.Table:
    """``daily`` from exchange counts per (account_id, daynum) (one row per active day)."""
    w = ibis.window(group_by="account_id", order_by=per_day.daynum)
    islands = per_day.mutate(island=per_day.daynum - ibis.row_number().over(w))
    runs = islands.group_by(["account_id", "island"]).aggregate(length=islands.count(), peak=islands.n.max())
    return runs.group_by("account_id").aggregate(
        longest_streak=runs.length.max(), max_per_day=runs.peak.max()
    )


def hour_histograms_from_counts(counts_expr: ir.Table, account_ids: pa.Array) -> np.ndarray:
    """(accounts, 24) exchange counts by UTC hour, rows in ``account_ids`` order, from exchange counts per
    (account_id, hour); an account the counts name that ``account_ids`` lacks is an error."""
    counts = counts_expr.to_pyarrow()
    # Vectorised lookup (a Python dict over 290k accounts and 2M (account, hour) rows took ~30 s at 90M exchanges).
    found = pc.index_in(counts.column("account_id"), value_set=account_ids)
    if found.null_count:
        missing = pc.filter(counts.column("account_id"), pc.is_null(found)).slice(0, 3).to_pylist()
        raise KeyError(f"hour counts name accounts missing from the feature table, e.g. {missing!r}"[:300])
    rows = found.to_numpy(zero_copy_only=False).astype(np.int64)
    hist = np.zeros((len(account_ids), 24), dtype=np.float64)
    np.add.at(hist, (rows, counts.column("hour").to_numpy()), counts.column("n").to_numpy())
    return hist


def rhythm(hist: np.ndarray, quiet_hours: int = 8) -> dict[str, np.ndarray]:
    """Daily-rhythm measures from hour histograms, independent of the account's time zone.

    ``hour_entropy``: entropy of the hour distribution over log(24), 1 = perfectly flat.
    ``quiet_share``: share of activity in the account's quietest ``quiet_hours``
    consecutive hours; people sleep (near 0), a flat 24 h process does not (8/24).
    ``utc_offset``: the apparent time zone, placing the quiet window at 00:00-08:00 local.
    """
    total = hist.sum(axis=1, keepdims=True)
    p = np.divide(hist, total, out=np.zeros_like(hist), where=total > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ent = -np.where(p > 0, p * np.log(p), 0.0).sum(axis=1) / np.log(24)
    # Circular window sums: the share in hours h..h+quiet_hours-1 for each start h.
    doubled = np.concatenate([p, p[:, : quiet_hours - 1]], axis=1)
    csum = np.concatenate([np.zeros((len(p), 1)), np.cumsum(doubled, axis=1)], axis=1)
    windows = csum[:, quiet_hours : quiet_hours + 24] - csum[:, :24]
    start = windows.argmin(axis=1)
    offset = (-start + 12) % 24 - 12  # quiet window starting at local midnight
    return {"hour_entropy": ent, "quiet_share": windows.min(axis=1), "utc_offset": offset.astype(np.int64)}
