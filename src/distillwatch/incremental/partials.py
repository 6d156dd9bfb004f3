"""Per-partition partial aggregates: the per-row work of an increment, done once when a partition arrives.

Every function here takes the partition's exchanges (validated, with the
per-address facts and ``sec``/``daynum``/``hour`` of ``features.behaviour.with_time``)
and returns an Ibis expression whose rows are keyed by account.  The rows are
appended to the store tables of ``store/schema/050_incremental.sql`` and merged
into features by ``distillwatch.incremental.merge``.  Each partial is chosen so
the merge is exact: sums and counts add, distinct values are kept as distinct
(account, value) rows, and inter-arrival moments are kept as (count, mean, sum
of squared deviations) per partition plus the partition's first and last
timestamp, so the gaps across partition boundaries are recovered exactly.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from distillwatch.features import behaviour

# (kind, column): the values whose distinct count, mode or first use a feature or pair signal needs.
VALUE_KINDS = (
    ("ip", "ip"),
    ("prefix", "prefix"),
    ("asn", "asn"),
    ("user_agent", "user_agent"),
    ("country", "country"),
    ("provider", "provider"),
    ("org", "org_id"),
    ("model", "model"),
    ("conversation", "conversation_id"),
)


def account_part(ex: ir.Table, part_id: int) -> ir.Table:
    """Per account: counts, sums, extremes and the inter-arrival moments inside this partition."""
    # The same gaps as the batch scan's features.behaviour.inter_arrival (one window over (account_id, sec)).
    gapped = behaviour.gaps(ex)
    gaps = gapped.group_by("account_id").aggregate(
        gap_n=gapped.gap.count(), gap_mean=gapped.gap.mean(), gap_var=gapped.gap.var(how="pop")
    )
    flag = lambda col: col.fill_null(False).cast("int64").sum()  # noqa: E731
    totals = ex.group_by("account_id").aggregate(
        n=ex.count(),
        first_ts=ex.ts.min(),
        last_ts=ex.ts.max(),
        first_sec=ex.sec.min(),
        last_sec=ex.sec.max(),
        input_tokens=ex.input_tokens.sum(),
        output_tokens=ex.output_tokens.sum(),
        tool_n=(ex.n_tools.fill_null(0) > 0).cast("int64").sum(),
        conversation_rows=ex.conversation_id.notnull().cast("int64").sum(),
        datacenter_n=flag(ex.is_datacenter),
        vpn_n=flag(ex.is_vpn),
        tor_n=flag(ex.is_tor),
    )
    agg = totals.join(gaps, "account_id")
    return agg.select(
        part_id=ibis.literal(part_id, "int64"),
        account_id=agg.account_id,
        n=agg.n,
        first_ts=agg.first_ts,
        last_ts=agg.last_ts,
        first_sec=agg.first_sec,
        last_sec=agg.last_sec,
        gap_n=agg.gap_n,
        gap_mean=agg.gap_mean,
        gap_m2=(agg.gap_var * agg.gap_n).fill_null(0.0),
        input_tokens=agg.input_tokens,
        output_tokens=agg.output_tokens,
        tool_n=agg.tool_n,
        conversation_rows=agg.conversation_rows,
        datacenter_n=agg.datacenter_n,
        vpn_n=agg.vpn_n,
        tor_n=agg.tor_n,
    )


def account_hour(ex: ir.Table, part_id: int) -> ir.Table:
    """Exchange counts per (account, UTC epoch hour), with the day number and hour of day."""
    keyed = ex.mutate(ehour=(ex.sec / 3600.0).floor().cast("int64"))
    g = keyed.group_by(["account_id", "ehour", "daynum", "hour"]).aggregate(n=keyed.count())
    return g.select(
        part_id=ibis.literal(part_id, "int64"),
        account_id=g.account_id,
        ehour=g.ehour,
        daynum=g.daynum,
        hour=g.hour.cast("int32"),
        n=g.n,
    )


def account_values(ex: ir.Table, part_id: int) -> ir.Table:
    """Distinct (account, kind, value) with the count and first use inside this partition."""
    parts = []
    for kind, column in VALUE_KINDS:
        sub = ex.filter(ex[column].notnull())
        g = sub.group_by(["account_id", sub[column].cast("string").name("value")]).aggregate(
            n=sub.count(), first_sec=sub.sec.min(), first_ts=sub.ts.min()
        )
        parts.append(
            g.select(
                part_id=ibis.literal(part_id, "int64"),
                account_id=g.account_id,
                kind=ibis.literal(kind),
                value=g.value,
                n=g.n,
                first_sec=g.first_sec,
                first_ts=g.first_ts,
            )
        )
    out = parts[0]
    for p in parts[1:]:
        out = out.union(p)
    return out


def sample_candidates(ex: ir.Table, per_account: int) -> ir.Table:
    """This partition's share of each account's content sample: its bottom ranks by md5(request_id).

    The batch scan keeps the exchanges ranked below ``per_account`` by (md5(request_id), request_id)
    over everything (``features.content.sample_exchanges``); the bottom ranks of a union are among
    the bottom ranks of its parts, so keeping each partition's candidates and re-ranking is exact.
    """
    md5 = ex.request_id.hexdigest("md5")
    w = ibis.window(group_by="account_id", order_by=[md5, ex.request_id])
    ranked = ex.mutate(rid_md5=md5, rank=ibis.row_number().over(w))
    return ranked.filter(ranked["rank"] < per_account).select(
        "account_id",
        "request_id",
        "rid_md5",
        "prompt",
        "system",
        "sec",
        "daynum",
        "n_tools",
        prompt_key=ranked.prompt.hash(),
        system_key=ranked.system.hash(),
    )
