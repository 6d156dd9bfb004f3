"""Compaction: fold old partitions' partial aggregates into one, so the merge stays the same size.

Each increment merges the partials of every partition in the window; their
number grows with the days processed.  ``compact`` folds the partials of the
partitions that ended before a time into a single compacted partition, exactly:
counts and sums add, (account, hour) and (account, value) rows are summed per
key, and the inter-arrival moments of an account's folded partitions combine by
the same formula the merge uses (``merge.gap_moments``), keeping the first and
last timestamp so the gap to the next partition stays exact.  The folded
partitions keep their row in ``inc_partitions`` (source, hash, retained file) with
``compacted_into`` set; they can no longer be reprocessed one by one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

import ibis

from distillwatch.incremental import merge


@dataclass
class CompactResult:
    compacted_into: int | None
    partitions: list[int]
    rows_before: dict[str, int]
    rows_after: dict[str, int]


FOLDED_TABLES = ("inc_account_part", "inc_account_hour", "inc_account_value")


def _rows(store) -> dict[str, int]:
    return {t: store.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in FOLDED_TABLES}  # noqa: S608 - constant names


def compact(store, before: datetime) -> CompactResult:
    """Fold every partition whose last exchange is before ``before`` into one (``store``: the store connection).

    Runs in one transaction.  Nothing happens when fewer than two partitions qualify.
    """
    ids = [
        r[0]
        for r in store.execute(
            "SELECT part_id FROM inc_partitions WHERE compacted_into IS NULL AND max_ts < ? ORDER BY part_id", [before]
        ).fetchall()
    ]
    rows_before = _rows(store)
    if len(ids) < 2:
        return CompactResult(None, ids, rows_before, rows_before)
    con = ibis.duckdb.from_connection(store)
    store.execute("BEGIN TRANSACTION").fetchall()
    try:
        new_id = int(store.execute("SELECT nextval('inc_part_seq')").fetchall()[0][0])
        lit = ibis.literal(new_id, "int64")

        h = con.table("inc_account_hour")
        h = h.filter(h.part_id.isin(ids))
        hours = h.group_by(["account_id", "ehour", "daynum", "hour"]).aggregate(n=h.n.sum())
        con.insert("inc_account_hour", hours.select(part_id=lit, account_id=hours.account_id, ehour=hours.ehour,
                                                     daynum=hours.daynum, hour=hours.hour, n=hours.n))  # fmt: skip

        v = con.table("inc_account_value")
        v = v.filter(v.part_id.isin(ids))
        vals = v.group_by(["account_id", "kind", "value"]).aggregate(
            n=v.n.sum(), first_sec=v.first_sec.min(), first_ts=v.first_ts.min()
        )
        con.insert("inc_account_value", vals.select(part_id=lit, account_id=vals.account_id, kind=vals.kind,
                                                     value=vals.value, n=vals.n, first_sec=vals.first_sec,
                                                     first_ts=vals.first_ts))  # fmt: skip

        p = con.table("inc_account_part")
        p = p.filter(p.part_id.isin(ids))
        sums = p.group_by("account_id").aggregate(
            n=p.n.sum(), first_ts=p.first_ts.min(), last_ts=p.last_ts.max(), first_sec=p.first_sec.min(),
            last_sec=p.last_sec.max(), input_tokens=p.input_tokens.sum(), output_tokens=p.output_tokens.sum(),
            tool_n=p.tool_n.sum(), conversation_rows=p.conversation_rows.sum(), datacenter_n=p.datacenter_n.sum(),
            vpn_n=p.vpn_n.sum(), tor_n=p.tor_n.sum(),
        )  # fmt: skip
        g = sums.join(merge.gap_moments(p), "account_id")
        con.insert(
            "inc_account_part",
            g.select(
                part_id=lit, account_id=g.account_id, n=g.n, first_ts=g.first_ts, last_ts=g.last_ts,
                first_sec=g.first_sec, last_sec=g.last_sec, gap_n=g.gaps, gap_mean=g.gap_mean,
                gap_m2=g.m2.fill_null(0.0), input_tokens=g.input_tokens, output_tokens=g.output_tokens,
                tool_n=g.tool_n, conversation_rows=g.conversation_rows, datacenter_n=g.datacenter_n,
                vpn_n=g.vpn_n, tor_n=g.tor_n,
            ),
        )  # fmt: skip
        for table in FOLDED_TABLES:
            store.execute(f"DELETE FROM {table} WHERE list_contains(?, part_id)", [ids]).fetchall()  # noqa: S608
        for table in ("inc_sample", "inc_request_ids"):
            store.execute(f"UPDATE {table} SET part_id = ? WHERE list_contains(?, part_id)", [new_id, ids]).fetchall()  # noqa: S608
        span = store.execute(
            "SELECT min(min_ts), max(max_ts) FROM inc_partitions WHERE list_contains(?, part_id)", [ids]
        ).fetchall()[0]
        store.execute(
            "INSERT INTO inc_partitions (part_id, source, min_ts, max_ts, counts, processed_at) VALUES (?, ?, ?, ?, ?, ?)",
            [new_id, f"compaction of {len(ids)} partitions", span[0], span[1], json.dumps({"compacted": ids}),
             datetime.now(UTC)],
        ).fetchall()  # fmt: skip
        store.execute(
            "UPDATE inc_partitions SET compacted_into = ? WHERE list_contains(?, part_id)", [new_id, ids]
        ).fetchall()
        store.execute("COMMIT").fetchall()
    except BaseException:
        store.execute("ROLLBACK").fetchall()
        raise
    return CompactResult(new_id, ids, rows_before, _rows(store))
