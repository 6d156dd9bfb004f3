"""Pair signals: keys that accounts share.  Accounts with a common key are linked in the account graph.

Each signal returns an engine table (account_id, key).  ``distillwatch.link``
turns keys into typed, weighted edges without comparing all pairs: a key shared
by a small group links its members; a key shared by a huge group (a university
NAT, a popular client library, a webmail domain) gives only sparse, weak edges,
because a very common key is weak evidence.
"""

from __future__ import annotations

from typing import Any

import ibis
import ibis.expr.types as ir

from distillwatch.signals.base import PairSignal, SignalContext, SignalMeta, register

DEFAULT_PAIR_PARAMS = {"max_group": 40, "neighbours": 6, "key_scale": 1.0}


def _params(**overrides: Any) -> dict[str, Any]:
    return {**DEFAULT_PAIR_PARAMS, **overrides}


def _ex_keys(ctx: SignalContext, column: str) -> ir.Table | None:
    if ctx.ex is None:
        return None
    ex = ctx.ex
    return ex.filter(ex[column].notnull()).select("account_id", key=ex[column].cast("string")).distinct()


@register
class SharedAddress(PairSignal):
    meta = SignalMeta(
        id="link_shared_ip",
        title="Same client address",
        description="Accounts that sent traffic from the same exact address (a proxy exit, a NAT, a server).",
        family="infrastructure",
        kind="pair",
        inputs=["ip"],
        severity="low",
        false_positives=["university and corporate NAT", "VPN exits", "gateways"],
        weight=0.6,
        params=_params(max_group=30),
    )

    def keys(self, ctx: SignalContext, params: dict[str, Any]) -> ir.Table | None:
        return _ex_keys(ctx, "ip")


@register
class SharedPrefix(PairSignal):
    meta = SignalMeta(
        id="link_shared_prefix",
        title="Same /24 or /48 network",
        description="Accounts whose traffic came from the same /24 (IPv4) or /48 (IPv6) prefix.",
        family="infrastructure",
        kind="pair",
        inputs=["ip"],
        severity="low",
        false_positives=["one office or campus network", "one cloud region"],
        weight=0.4,
        params=_params(max_group=40),
    )

    def keys(self, ctx: SignalContext, params: dict[str, Any]) -> ir.Table | None:
        return _ex_keys(ctx, "prefix")


@register
class SharedUserAgent(PairSignal):
    meta = SignalMeta(
        id="link_shared_user_agent",
        title="Same user agent",
        description="Accounts sending the same user-agent string. Popular clients are shared by thousands: weak.",
        family="infrastructure",
        kind="pair",
        inputs=["user_agent"],
        severity="informational",
        false_positives=["every user of a popular SDK version"],
        weight=0.2,
        params=_params(max_group=20),
    )

    def keys(self, ctx: SignalContext, params: dict[str, Any]) -> ir.Table | None:
        return _ex_keys(ctx, "user_agent")


@register
class SharedPaymentLink(PairSignal):
    meta = SignalMeta(
        id="link_shared_payment",
        title="Same payment fingerprint",
        description="Accounts paying with the same payment instrument (fingerprint hash).",
        family="registration",
        kind="pair",
        inputs=["accounts.payment_fingerprint"],
        severity="medium",
        false_positives=["a company paying for its team with one card"],
        weight=1.0,
        params=_params(max_group=50),
    )

    def keys(self, ctx: SignalContext, params: dict[str, Any]) -> ir.Table | None:
        r = ctx.account_records
        if r is None:
            return None
        return r.filter(r.payment_fingerprint.notnull()).select("account_id", key=r.payment_fingerprint).distinct()


@register
class RegistrationBurst(PairSignal):
    meta = SignalMeta(
        id="link_registration_burst",
        title="Registered in the same burst",
        description=(
            "Accounts created within the same `window_minutes` with the same e-mail domain, or the same e-mail "
            "local-part shape and domain within `pattern_window_minutes`. Webmail domains make big, weak groups."
        ),
        family="registration",
        kind="pair",
        inputs=["accounts.created_at", "accounts.email"],
        severity="medium",
        false_positives=["a class or a team onboarding together"],
        weight=0.6,
        params=_params(window_minutes=30, pattern_window_minutes=180),
    )

    def keys(self, ctx: SignalContext, params: dict[str, Any]) -> ir.Table | None:
        r = ctx.account_records
        if r is None:
            return None
        created = r.created_at.epoch_seconds().cast("int64")
        domain_key = ibis.literal("d|") + r.email_domain + "|" + (created // (60 * params["window_minutes"])).cast("string")
        pattern_key = (
            ibis.literal("p|") + r.email_pattern + "@" + r.email_domain + "|"
            + (created // (60 * params["pattern_window_minutes"])).cast("string")
        )
        base = r.filter(r.created_at.notnull() & r.email_domain.notnull())
        a = base.select("account_id", key=domain_key)
        b = base.filter(base.email_pattern.notnull()).select("account_id", key=pattern_key)
        return a.union(b).distinct()


@register
class SharedTemplate(PairSignal):
    meta = SignalMeta(
        id="link_shared_template",
        title="Same prompt template",
        description="Accounts whose sampled prompts share a normalised template hash.",
        family="content",
        kind="pair",
        inputs=["prompt"],
        severity="medium",
        false_positives=["users of one product with a fixed prompt", "benchmark replays"],
        weight=1.0,
        params=_params(max_group=40),
    )

    def keys(self, ctx: SignalContext, params: dict[str, Any]) -> ir.Table | None:
        f = ctx.facts
        if f is None:
            return None
        return f.filter(f.template_hash.notnull()).select("account_id", key=f.template_hash).distinct()


@register
class NearDuplicatePrompts(PairSignal):
    meta = SignalMeta(
        id="link_near_duplicate",
        title="Near-duplicate prompts",
        description=(
            "Accounts whose sampled prompts are near-duplicates (MinHash of word shingles, LSH bands): catches "
            "paraphrased and lightly edited templates that exact template hashes miss. Each shared band counts "
            "`key_scale` of a key, because one near-duplicate pair shares several bands."
        ),
        family="content",
        kind="pair",
        inputs=["prompt"],
        severity="medium",
        false_positives=["common short prompts ('hello', 'continue')"],
        weight=0.8,
        params=_params(max_group=40, key_scale=0.25),
    )

    def keys(self, ctx: SignalContext, params: dict[str, Any]) -> ir.Table | None:
        b = ctx.prompt_bands
        if b is None:
            return None
        return b.select("account_id", key=b.band.cast("string"))


@register
class SynchronisedActivity(PairSignal):
    meta = SignalMeta(
        id="link_synchronised",
        title="Active in the same hours",
        description=(
            "Accounts whose sets of active hours (day and hour, UTC) are similar: MinHash of each account's "
            "active hours, LSH bands of `rows` rows. Fleets start, stop and peak together."
        ),
        family="coordination",
        kind="pair",
        inputs=["ts"],
        severity="low",
        false_positives=["colleagues with the same working hours over a short window"],
        weight=0.6,
        params=_params(max_group=40, key_scale=0.34, num_perm=48, rows=4, min_hours=6),
    )

    def keys(self, ctx: SignalContext, params: dict[str, Any]) -> ir.Table | None:
        if ctx.ex is None or ctx.con is None:
            return None
        from distillwatch.link.minhash import set_band_keys

        ex = ctx.ex
        hours = ex.select("account_id", token=(ex.sec / 3600.0).floor().cast("int64")).distinct()
        counts = hours.group_by("account_id").aggregate(n=hours.count())
        hours = hours.join(counts.filter(counts.n >= params["min_hours"]), "account_id").select("account_id", "token")
        return set_band_keys(ctx.con, hours, "dw_sync_bands", params["num_perm"], params["rows"])
