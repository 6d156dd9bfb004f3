"""Partner indicators: the account matches what another provider reported (`distillwatch intel import`).

Owned by the intel stage; the matching itself is `distillwatch.intel.match`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from distillwatch.signals.base import (
    ATLAS_API_ACCESS,
    ATLAS_EXTRACT,
    ATLAS_REFERENCE,
    Signal,
    SignalContext,
    SignalMeta,
    SignalResult,
    only_where,
    register,
)


@register
class PartnerIndicators(Signal):
    meta = SignalMeta(
        id="partner_indicators",
        title="Matches indicators shared by a partner",
        description=(
            "Another provider exported a distillation campaign as STIX 2.1 and it was imported with "
            "`distillwatch intel import`: the account sends traffic from the reported network ranges or "
            "autonomous systems, uses the reported prompt templates, or registered with a reported e-mail domain. "
            "Value: per kind, weight x share of the account's traffic that matches x the partner's confidence, "
            "combined as a noisy-OR; ranges and templates weigh 1, e-mail domains 0.6, ASNs 0.4 (honest users "
            "share those). The reason names the partner. Tune by weight, or by expiring or deleting a partner's "
            "indicators (valid_until in the bundle)."
        ),
        family="coordination",
        inputs=["ip", "asn", "prompt (template hash)", "accounts.email", "store: intel_partner_indicators"],
        severity="high",
        false_positives=[
            "a partner reported a shared egress (a cloud NAT, a VPN exit) that honest customers also use",
            "stale indicators: an address range reassigned since the partner saw it",
        ],
        tags=[ATLAS_EXTRACT, ATLAS_API_ACCESS],
        references=[ATLAS_REFERENCE, "https://docs.oasis-open.org/cti/stix/v2.1/stix-v2.1.html"],
        weight=1.5,
        params={"floor": 0.2},
    )

    def compute(self, ctx: SignalContext, params: dict[str, Any]) -> SignalResult:
        from distillwatch.intel.match import match_accounts

        n = ctx.n
        value = np.zeros(n)
        reason = pa.nulls(n, pa.string())
        if ctx.store is None:
            return SignalResult(value, value.copy(), reason)
        got = match_accounts(ctx.store, ctx.ex, ctx.facts, ctx.account_records)
        if got.num_rows == 0:
            return SignalResult(value, value.copy(), reason)
        ids = ctx.features.column("account_id").combine_chunks().cast(pa.string())
        idx = pc.index_in(ids, value_set=got["account_id"].combine_chunks())
        found = pc.is_valid(idx)
        value = np.nan_to_num(
            pc.take(got["value"], idx).to_numpy(zero_copy_only=False).astype(np.float64), nan=0.0
        )
        reason = pc.if_else(found, pc.take(got["reason"], idx), pa.scalar(None, pa.string()))
        return SignalResult(
            value,
            value.copy(),
            only_where(
                reason.combine_chunks() if isinstance(reason, pa.ChunkedArray) else reason,
                value,
                params["floor"],
            ),
        )
