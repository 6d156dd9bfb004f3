"""Infrastructure signals: where an account's traffic comes from."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow.compute as pc

from distillwatch.signals.base import (
    Signal,
    SignalContext,
    SignalMeta,
    SignalResult,
    num,
    only_where,
    pct,
    ramp,
    register,
    threshold,
    words,
)


@register
class DatacenterEgress(Signal):
    meta = SignalMeta(
        id="datacenter_egress",
        title="Traffic from datacenter addresses",
        description=(
            "Share of exchanges from addresses in datacenter / hosting ranges (shipped public lists plus the "
            "CIDR files and MaxMind database the user supplies). Proxy fleets egress from the cloud. Weak alone: "
            "plenty of honest API traffic runs on servers."
        ),
        family="infrastructure",
        inputs=["ip"],
        severity="low",
        false_positives=["server-side integrations", "batch evaluation on cloud machines", "gateways"],
        weight=0.6,
        params={"lo": 0.3, "hi": 0.9},
    )

    def compute(self, ctx: SignalContext, params: dict[str, Any]) -> SignalResult:
        raw = ctx.col("datacenter_share", 0.0)
        value = ramp(raw, params["lo"], params["hi"])
        provider = pc.fill_null(ctx.text("top_provider"), "unnamed providers")
        reason = words("sends ", pct(raw), " of its traffic from datacenter addresses (", provider, ")")
        return SignalResult(value, raw, only_where(reason, value))


@register
class Anonymiser(Signal):
    meta = SignalMeta(
        id="anonymiser",
        title="Traffic through VPN or Tor exits",
        description=(
            "Share of exchanges from commercial VPN exits or Tor (Tor only from a list the user supplies). "
            "Geo-restriction bypass is a reported campaign tactic; privacy-conscious users do it too, so weak."
        ),
        family="infrastructure",
        inputs=["ip"],
        severity="low",
        false_positives=["privacy-relay and VPN users"],
        weight=0.3,
        params={"lo": 0.3, "hi": 0.9},
    )

    def compute(self, ctx: SignalContext, params: dict[str, Any]) -> SignalResult:
        raw = np.clip(ctx.col("vpn_share", 0.0) + ctx.col("tor_share", 0.0), 0, 1)
        value = ramp(raw, params["lo"], params["hi"])
        reason = words("sends ", pct(raw), " of its traffic through VPN or Tor exits")
        return SignalResult(value, raw, only_where(reason, value))


@register
class AddressRotation(Signal):
    meta = SignalMeta(
        id="address_rotation",
        title="Rotating through many networks",
        description=(
            "Distinct /24 (IPv4) or /48 (IPv6) prefixes per active day. Rotating proxy pools spread one account "
            "over many networks; a person uses home, office and phone. Thresholds are population percentiles."
        ),
        family="infrastructure",
        inputs=["ip", "asn"],
        severity="low",
        false_positives=["mobile users on carrier-grade NAT", "travellers"],
        weight=0.5,
        params={"lo": "p90", "hi": "p99"},
    )

    def compute(self, ctx: SignalContext, params: dict[str, Any]) -> SignalResult:
        prefixes = ctx.col("distinct_prefixes", 0.0)
        raw = prefixes / np.maximum(ctx.col("active_days", 1.0), 1.0)
        lo, hi = threshold(raw, params["lo"]), threshold(raw, params["hi"])
        value = ramp(raw, lo, max(hi, lo + 1.0))
        reason = words("used ", num(ctx.col("distinct_ips", 0.0)), " addresses in ", num(prefixes),
                       " network prefixes (", num(raw, 1), " per active day)")
        return SignalResult(value, raw, only_where(reason, value))



