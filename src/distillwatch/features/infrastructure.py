"""The tie rule for an account's most used value (provider, organisation) of the infrastructure features.

The infrastructure features themselves (distinct addresses, prefixes, networks and clients; datacenter,
VPN and Tor shares) are computed in ``features.passes`` (batch scan) and ``incremental.merge``; their
readable definition is ``infrastructure`` in ``tests/features/reference.py``."""

from __future__ import annotations

import ibis
import ibis.expr.types as ir


def most_frequent(counts: ir.Table, name: str) -> ir.Table:
    """Per account, the value with the largest count ``n``; ties go to the smallest value.

    (account_id, value, n) -> (account_id, ``name``).  An engine's ``mode()`` breaks ties by
    hash-table order, which differs between runs, engines and between a batch scan and the
    incremental merge; a stated rule gives the same answer everywhere.
    """
    w = ibis.window(group_by="account_id", order_by=[ibis.desc(counts.n), counts.value])
    ranked = counts.mutate(r=ibis.row_number().over(w))
    return ranked.filter(ranked.r == 0).select("account_id", **{name: ranked.value})
