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
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from ibis import _

from distillwatch.signals.base import PairSignal, SignalContext, SignalMeta, register

# How a pair signal's keys become edges (link/graph.py, EdgeOptions): a key shared by at most `max_group`
# accounts links them all, a larger group links each member to `neighbours` others; `key_scale` sets how fast
# shared keys add up; a pair needs `min_shared` keys; each account keeps its `max_partners` strongest edges of
# the signal and (when `max_keys` > 0) only its `max_keys` rarest keys, which bounds memory at large scale.
DEFAULT_PAIR_PARAMS = {"max_group": 40, "neighbours": 6, "key_scale": 1.0, "min_shared": 1, "max_partners": 60, "max_keys": 0}


def _params(**overrides: Any) -> dict[str, Any]:
    return {**DEFAULT_PAIR_PARAMS, **overrides}


def _state(ctx: SignalContext) -> Any:
    """The incremental path's stored state (``incremental.merge.StateTables``), when the scan is an increment.

    An increment's ``ctx.ex`` is the retained history; the keys are read from the stored distinct
    (account, value) and (account, hour) rows instead, so key extraction never rescans history.
    """
    return ctx.extra.get("incremental_state")


# Column of the exchanges -> value kind in the incremental state (incremental.partials.VALUE_KINDS).
_STATE_KIND = {"ip": "ip", "prefix": "prefix", "user_agent": "user_agent"}


def _ex_keys(ctx: SignalContext, column: str) -> ir.Table | None:
    state = _state(ctx)
    if state is not None:
        return state.value_keys(_STATE_KIND[column])
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
        if (ctx.ex is None and _state(ctx) is None) or ctx.con is None:
            return None
        from distillwatch.link.minhash import set_band_keys

        hourly = _hour_counts(ctx)
        hours = hourly.select("account_id", token=hourly.ehour)  # one row per active (account, hour)
        counts = hours.group_by("account_id").aggregate(n=hours.count())
        hours = hours.join(counts.filter(counts.n >= params["min_hours"]), "account_id").select("account_id", "token")
        return set_band_keys(ctx.con, hours, "dw_sync_bands", params["num_perm"], params["rows"])


@register
class SynchronisedPivot(PairSignal):
    meta = SignalMeta(
        id="link_synchronised_pivot",
        title="Moved to a new model at the same time, wholesale",
        description=(
            "Accounts that switched to a newly released model (first seen in the traffic more than a day after "
            "the window began) within the same `bucket_hours` of its release, at most `max_lag_hours` after it: "
            "at least `min_exchanges` requests to it, and at least `min_switch_share` of the account's requests "
            "from the hour of its first use on went to it (or a later release). A fleet's operator redirects "
            "every account's harness to a new release within hours, whatever each account's volume; a customer "
            "tries it beside the model its work runs on and adopts it over days. Two bucketings, offset by half a "
            "bucket, so accounts either side of a boundary still meet."
        ),
        family="behaviour",
        kind="pair",
        inputs=["model", "ts"],
        severity="low",
        false_positives=["early adopters and evaluation teams switching everything on release day"],
        # Strong enough to pull a careful fleet together in the graph (measured: bench/detection.py, strong
        # evasion).
        weight=1.5,
        params=_params(
            max_group=100, key_scale=1.0, bucket_hours=6.0, max_lag_hours=48.0, min_exchanges=5, min_switch_share=0.75
        ),
    )

    def keys(self, ctx: SignalContext, params: dict[str, Any]) -> ir.Table | None:
        uses = _model_uses(ctx)
        hourly = _hour_counts(ctx)
        if uses is None or hourly is None:
            return None
        start = uses.first_use.min().as_scalar()
        firsts = uses.group_by("model").aggregate(model_first=uses.first_use.min())
        # "New" as in model_pivot (tests/features/reference.py; features.passes._model_pivot): first seen more than a day after the data begins.
        new = firsts.filter(firsts.model_first > start + 86400.0)
        adopted = uses.join(new, "model")
        hours = (adopted.first_use - adopted.model_first) / 3600.0
        early = adopted.filter((adopted.n >= params["min_exchanges"]) & (hours <= params["max_lag_hours"])).mutate(
            lag=hours / params["bucket_hours"], first_hour=(adopted.first_use / 3600.0).floor().cast("int64")
        )
        # The switch share: requests to this release or a later one, over all requests from the hour of the
        # account's first use of it on (hour resolution, so the incremental state's hourly counts give the same).
        later = adopted.select("account_id", later_first=adopted.model_first, later_n=adopted.n)
        on_new = (
            early.join(later, [early.account_id == later.account_id, later.later_first >= early.model_first])
            .group_by(["account_id", "model"])
            .aggregate(n_new=_.later_n.sum())
        )
        since = (
            early.join(hourly, [early.account_id == hourly.account_id, hourly.ehour >= early.first_hour])
            .group_by(["account_id", "model"])
            .aggregate(n_since=_.n_hour.sum())
        )
        switched = (
            early.join(on_new, ["account_id", "model"])
            .join(since, ["account_id", "model"])
            .filter(lambda t: t.n_new >= params["min_switch_share"] * t.n_since)
        )
        lag = switched.lag
        keys = [
            switched.select(
                "account_id",
                key=switched.model.cast("string") + ibis.literal(f"|{tag}|") + (lag + shift).floor().cast("int64").cast("string"),
            )
            for tag, shift in (("a", 0.0), ("b", 0.5))
        ]
        return keys[0].union(keys[1], distinct=True)


@register
class CoordinatedOnset(PairSignal):
    meta = SignalMeta(
        id="link_coordinated_onset",
        title="Dormant accounts that came online together",
        description=(
            "Accounts silent for at least `min_silent_days` of the window (since its start or their registration) "
            "that then sent at least `min_exchanges` requests, keyed by the `bucket_hours` in which they came "
            "online (two bucketings, offset by half a bucket). An operator brings its bought or farmed accounts "
            "online in batches when a harvest starts; customers return one by one. The pair form of "
            "`dormant_account`, so the same family (registration)."
        ),
        family="registration",
        kind="pair",
        inputs=["accounts.created_at", "ts"],
        severity="low",
        false_positives=["a class or a team starting mid-window (declared organisation)", "customers back after a holiday"],
        weight=0.6,
        params=_params(max_group=40, bucket_hours=24.0, min_silent_days=1.0, min_exchanges=20),
    )

    def keys(self, ctx: SignalContext, params: dict[str, Any]) -> ir.Table | None:
        from distillwatch.signals.registration import silent_days

        silent, first = silent_days(ctx, params["min_exchanges"])
        onset = np.nan_to_num(silent, nan=0.0) >= params["min_silent_days"]
        if not onset.any():
            return None
        ids = ctx.features.column("account_id").combine_chunks().cast(pa.string()).filter(pa.array(onset))
        bucket = first[onset] / (3600.0 * params["bucket_hours"])
        keys = [
            pa.table(
                {
                    "account_id": ids,
                    "key": pc.binary_join_element_wise(
                        tag, pc.cast(pa.array(np.floor(bucket + shift).astype(np.int64)), pa.string()), "|"
                    ),
                }
            )
            for tag, shift in (("a", 0.0), ("b", 0.5))
        ]
        # One chunk per column: Spark's Arrow path for a memtable cannot take chunked columns (it falls back to rows).
        return ibis.memtable(pa.concat_tables(keys).combine_chunks())


def _hour_counts(ctx: SignalContext) -> ir.Table | None:
    """Per (account_id, ehour = epoch hour): the account's exchanges ``n_hour`` in that hour.

    Read by the synchronised-activity and synchronised-pivot keys; made once per scan (a pass over every
    exchange) and kept in ``ctx.extra``, materialised when the scan has an engine.
    """
    if "hour_counts" in ctx.extra:
        return ctx.extra["hour_counts"]
    state = _state(ctx)
    if state is not None:
        h = state.hours
        counts = h.group_by(["account_id", "ehour"]).aggregate(n_hour=h.n.sum())
    elif ctx.ex is not None:
        ex = ctx.ex
        counts = ex.group_by(["account_id", (ex.sec / 3600.0).floor().cast("int64").name("ehour")]).aggregate(
            n_hour=ex.count()
        )
        if ctx.con is not None:
            counts = ctx.con.create_table("dw_hour_counts", counts, temp=True, overwrite=True)
    else:
        return None
    ctx.extra["hour_counts"] = counts
    return counts


def _model_uses(ctx: SignalContext) -> ir.Table | None:
    """Per (account_id, model): first use (epoch seconds) and exchanges ``n``, models named only."""
    state = _state(ctx)
    if state is not None:
        return state.model_uses()
    if ctx.ex is None:
        return None
    ex = ctx.ex.filter(ctx.ex.model.notnull())
    return ex.group_by(["account_id", "model"]).aggregate(first_use=ex.sec.min(), n=ex.count())
