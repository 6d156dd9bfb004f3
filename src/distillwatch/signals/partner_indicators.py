"""Partner indicators: the account matches what another provider reported (`distillwatch intel import`).

Owned by the intel stage; the matching itself is `distillwatch.intel.match`.
"""

from __future__ import annotations

from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from distillwatch.signals.base import (
    ATLAS_API_ACCESS,
    ATLAS_EXTRACT,
    ATLAS_REFERENCE,
    PairSignal,
    Signal,
    SignalContext,
    SignalMeta,
    SignalResult,
    only_where,
    register,
)


def _details(ctx: SignalContext):
    """Per-account matches against the store's partner indicators, computed once per scan (both signals read them)."""
    from distillwatch.intel.match import match_details

    if "partner_matches" not in ctx.extra:
        ctx.extra["partner_matches"] = (
            match_details(ctx.store, ctx.ex, ctx.facts, ctx.account_records)
            if ctx.store is not None
            else None
        )
    return ctx.extra["partner_matches"]


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
        got = match_accounts(ctx.store, details=_details(ctx))
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


@register
class PartnerCampaignLink(PairSignal):
    meta = SignalMeta(
        id="link_partner_campaign",
        title="Match the same partner-reported campaign",
        description=(
            "Links accounts whose traffic largely (at least `min_coverage`) comes from the network ranges or uses the "
            "prompt templates of one campaign a partner reported. A partner's campaign is an operator, so its "
            "accounts here are likely one operation too; groups are allowed to be large (`max_group`)."
        ),
        family="coordination",
        kind="pair",
        inputs=["ip", "prompt (template hash)", "store: intel_partner_indicators"],
        severity="high",
        false_positives=[
            "a partner reported a shared egress (cloud NAT, VPN exit) honest customers also use"
        ],
        tags=[ATLAS_EXTRACT, ATLAS_API_ACCESS],
        references=[ATLAS_REFERENCE],
        weight=1.0,
        params={"min_coverage": 0.3, "max_group": 150, "neighbours": 8, "key_scale": 1.0},
    )

    def keys(self, ctx: SignalContext, params: dict[str, Any]) -> ir.Table | None:
        from distillwatch.intel.match import campaign_keys

        keys = campaign_keys(_details(ctx), params["min_coverage"])
        return ibis.memtable(keys) if keys.num_rows else None
