"""Infrastructure features: how many addresses, prefixes, networks and clients an account uses,
and how much of its traffic comes from datacenter, VPN and Tor addresses."""

from __future__ import annotations

import ibis
import ibis.expr.types as ir


def infrastructure(ex: ir.Table) -> ir.Table:
    """``ex`` carries the per-address facts (prefix, is_datacenter, is_vpn, is_tor, provider)."""
    flag = lambda col: col.fill_null(False).cast("float64").mean()  # noqa: E731
    per = ex.group_by("account_id").aggregate(
        distinct_ips=ex.ip.nunique(),
        distinct_prefixes=ex.prefix.nunique(),
        distinct_asns=ex.asn.nunique(),
        distinct_user_agents=ex.user_agent.nunique(),
        distinct_countries=ex.country.nunique(),
        datacenter_share=flag(ex.is_datacenter),
        vpn_share=flag(ex.is_vpn),
        tor_share=flag(ex.is_tor),
    )
    for column, name in (("provider", "top_provider"), ("org_id", "request_org")):
        named = ex.filter(ex[column].notnull())
        counts = named.group_by(["account_id", named[column].name("value")]).aggregate(n=named.count())
        per = per.left_join(most_frequent(counts, name), "account_id").drop("account_id_right")
    return per


def most_frequent(counts: ir.Table, name: str) -> ir.Table:
    """Per account, the value with the largest count ``n``; ties go to the smallest value.

    (account_id, value, n) -> (account_id, ``name``).  An engine's ``mode()`` breaks ties by
    hash-table order, which differs between runs, engines and between a batch scan and the
    incremental merge; a stated rule gives the same answer everywhere.
    """
    w = ibis.window(group_by="account_id", order_by=[ibis.desc(counts.n), counts.value])
    ranked = counts.mutate(r=ibis.row_number().over(w))
    return ranked.filter(ranked.r == 0).select("account_id", **{name: ranked.value})
