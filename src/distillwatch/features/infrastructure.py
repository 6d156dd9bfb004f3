"""Infrastructure features: how many addresses, prefixes, networks and clients an account uses,
and how much of its traffic comes from datacenter, VPN and Tor addresses."""

from __future__ import annotations

import ibis.expr.types as ir


def infrastructure(ex: ir.Table) -> ir.Table:
    """``ex`` carries the per-address facts (prefix, is_datacenter, is_vpn, is_tor, provider)."""
    flag = lambda col: col.fill_null(False).cast("float64").mean()  # noqa: E731
    return ex.group_by("account_id").aggregate(
        distinct_ips=ex.ip.nunique(),
        distinct_prefixes=ex.prefix.nunique(),
        distinct_asns=ex.asn.nunique(),
        distinct_user_agents=ex.user_agent.nunique(),
        distinct_countries=ex.country.nunique(),
        datacenter_share=flag(ex.is_datacenter),
        vpn_share=flag(ex.is_vpn),
        tor_share=flag(ex.is_tor),
        top_provider=ex.provider.mode(),
        request_org=ex.org_id.mode(),
    )
