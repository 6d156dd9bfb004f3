"""Behaviour signals: how an account uses the API over time."""

from __future__ import annotations

from typing import Any

import numpy as np

from distillwatch.signals.base import (
    ATLAS_API_ACCESS,
    ATLAS_EXTRACT,
    ATLAS_REFERENCE,
    Signal,
    SignalContext,
    SignalMeta,
    SignalResult,
    num,
    only_where,
    pct,
    ramp,
    register,
    support,
    threshold,
    words,
)


@register
class Flat24h(Signal):
    meta = SignalMeta(
        id="flat_24h",
        title="Round-the-clock activity without a daily rhythm",
        description=(
            "People sleep: in their quietest 8 consecutive hours they send almost nothing. A scripted harvest "
            "runs flat around the clock, so about a third of its traffic falls in any 8-hour window. Fires on the "
            "share of traffic in the account's quietest 8 hours (time-zone independent). Tune `lo`/`hi` (shares) "
            "and `min_exchanges` (below it the value is scaled down)."
        ),
        family="behaviour",
        inputs=["ts"],
        severity="medium",
        false_positives=["monitoring and batch jobs", "shared team accounts spanning time zones"],
        tags=[ATLAS_EXTRACT, ATLAS_API_ACCESS],
        references=[ATLAS_REFERENCE],
        weight=1.0,
        params={"lo": 0.06, "hi": 0.22, "min_exchanges": 60},
    )

    def compute(self, ctx: SignalContext, params: dict[str, Any]) -> SignalResult:
        raw = ctx.col("quiet_share")
        value = ramp(raw, params["lo"], params["hi"]) * support(ctx.col("exchanges"), params["min_exchanges"])
        reason = words("sends ", pct(raw), " of its traffic in its quietest 8 hours of the day (people sleep: near 0%)")
        return SignalResult(value, raw, only_where(reason, value))


@register
class RegularTiming(Signal):
    meta = SignalMeta(
        id="regular_timing",
        title="Machine-regular inter-arrival times",
        description=(
            "People work in bursts (sessions, then long pauses): the coefficient of variation of the gaps between "
            "their requests is well above 1. A paced script keeps it near or below 1. Fires as the CV falls from "
            "`lo` to `hi`; needs `min_exchanges` for full weight."
        ),
        family="behaviour",
        inputs=["ts"],
        severity="low",
        false_positives=["batch jobs and evaluation harnesses with a fixed rate"],
        weight=0.5,
        params={"lo": 1.3, "hi": 0.6, "min_exchanges": 60},
    )

    def compute(self, ctx: SignalContext, params: dict[str, Any]) -> SignalResult:
        raw = ctx.col("interarrival_cv")
        value = ramp(raw, params["lo"], params["hi"]) * support(ctx.col("exchanges"), params["min_exchanges"])
        reason = words("requests arrive at machine-regular intervals (gap variation ", num(raw, 2), ")")
        return SignalResult(value, raw, only_where(reason, value))


@register
class SustainedVolume(Signal):
    meta = SignalMeta(
        id="sustained_volume",
        title="High, sustained daily volume",
        description=(
            "Exchanges per active day times the share of days in its span the account was active. A harvest keeps "
            "a steady daily quota every day; most customers are bursty. Thresholds are population percentiles by "
            "default (`lo`, `hi`), so it adapts to the traffic."
        ),
        family="behaviour",
        inputs=["ts", "account_id"],
        severity="low",
        false_positives=["heavy legitimate integrations", "agents and pipelines in production"],
        weight=0.5,
        params={"lo": "p75", "hi": "p97"},
    )

    def compute(self, ctx: SignalContext, params: dict[str, Any]) -> SignalResult:
        per_day = ctx.col("exchanges_per_active_day")
        span = np.maximum(np.ceil(ctx.col("span_days")), 1.0)
        steadiness = np.clip(ctx.col("active_days") / span, 0, 1)
        raw = per_day * steadiness
        lo, hi = threshold(raw, params["lo"]), threshold(raw, params["hi"])
        value = ramp(raw, lo, max(hi, lo + 1e-9))
        reason = words(
            "sends ", num(per_day), " exchanges per active day and was active ", pct(steadiness), " of the days in its span"
        )
        return SignalResult(value, raw, only_where(reason, value))


@register
class ActiveStreak(Signal):
    meta = SignalMeta(
        id="active_streak",
        title="Unbroken daily activity",
        description=(
            "Longest run of consecutive active days. Harvest accounts work every day of a campaign, weekends "
            "included. Fires from `lo` to `hi` days."
        ),
        family="behaviour",
        inputs=["ts"],
        severity="low",
        false_positives=["daily automated jobs", "very engaged users"],
        weight=0.3,
        params={"lo": 7, "hi": 21},
    )

    def compute(self, ctx: SignalContext, params: dict[str, Any]) -> SignalResult:
        raw = ctx.col("longest_streak")
        value = ramp(raw, params["lo"], params["hi"])
        reason = words("active ", num(raw), " days in a row")
        return SignalResult(value, raw, only_where(reason, value))


@register
class OutputHeavy(Signal):
    meta = SignalMeta(
        id="output_heavy",
        title="Short prompts, long answers",
        description=(
            "Ratio of output to input tokens. Harvesting asks short questions for long, reasoned answers (the "
            "training targets). Thresholds are population percentiles by default."
        ),
        family="behaviour",
        inputs=["input_tokens", "output_tokens"],
        severity="low",
        false_positives=["content generation products", "long-form writing tools"],
        weight=0.4,
        params={"lo": "p80", "hi": "p98", "min_exchanges": 30},
    )

    def compute(self, ctx: SignalContext, params: dict[str, Any]) -> SignalResult:
        raw = ctx.col("output_input_ratio")
        lo, hi = threshold(raw, params["lo"]), threshold(raw, params["hi"])
        value = ramp(raw, lo, max(hi, lo * 1.01 + 1e-9)) * support(ctx.col("exchanges"), params["min_exchanges"])
        reason = words("gets ", num(raw, 1), " output tokens per input token (population median ",
                       num(np.full(ctx.n, threshold(raw, "p50")), 1), ")")
        return SignalResult(value, raw, only_where(reason, value))


@register
class SingleTurn(Signal):
    meta = SignalMeta(
        id="single_turn",
        title="One-shot requests instead of conversations",
        description=(
            "Mean turns per conversation (1 when conversation ids are absent). People follow up; harvesting "
            "sends independent one-shot tasks. Fires as turns fall from `lo` to `hi`."
        ),
        family="behaviour",
        inputs=["conversation_id"],
        severity="informational",
        false_positives=["API integrations that never send a conversation id", "classification pipelines"],
        weight=0.2,
        params={"lo": 2.0, "hi": 1.1, "min_exchanges": 30},
    )

    def compute(self, ctx: SignalContext, params: dict[str, Any]) -> SignalResult:
        raw = np.where(np.isnan(ctx.col("turns_per_conversation")), 1.0, ctx.col("turns_per_conversation"))
        value = ramp(raw, params["lo"], params["hi"]) * support(ctx.col("exchanges"), params["min_exchanges"])
        reason = words("averages ", num(raw, 1), " turns per conversation")
        return SignalResult(value, raw, only_where(reason, value))


@register
class ToolHeavy(Signal):
    meta = SignalMeta(
        id="tool_heavy",
        title="Tool definitions in most requests",
        description=(
            "Share of requests carrying tool definitions: agentic tool use is a capability campaigns harvest. "
            "On its own it is weak (coding agents do the same), so its default weight is low."
        ),
        family="behaviour",
        inputs=["n_tools"],
        severity="informational",
        false_positives=["coding agents", "agent frameworks in production"],
        weight=0.2,
        params={"lo": 0.3, "hi": 0.9},
    )

    def compute(self, ctx: SignalContext, params: dict[str, Any]) -> SignalResult:
        raw = ctx.col("tool_share")
        value = ramp(raw, params["lo"], params["hi"])
        reason = words(pct(raw), " of its requests define tools")
        return SignalResult(value, raw, only_where(reason, value))


@register
class ModelPivot(Signal):
    meta = SignalMeta(
        id="model_pivot",
        title="Pivot to a newly released model",
        description=(
            "A model first seen in the traffic after the window began is a new release. Campaigns redirect their "
            "harvest to it within hours. Value: share of the account's traffic after the release that went to "
            "new models, discounted by the delay before its first use (half-life `half_life_hours`)."
        ),
        family="behaviour",
        inputs=["model", "ts"],
        severity="medium",
        false_positives=["early adopters and evaluation teams testing a new release"],
        weight=0.6,
        params={"half_life_hours": 24.0, "min_share": 0.5},
    )

    def compute(self, ctx: SignalContext, params: dict[str, Any]) -> SignalResult:
        share = ctx.col("pivot_share", 0.0)
        lag = ctx.col("pivot_lag_hours")
        decay = np.where(np.isnan(lag), 0.0, 0.5 ** (np.maximum(lag, 0) / params["half_life_hours"]))
        value = ramp(share, params["min_share"], 1.0) * decay
        reason = words("moved ", pct(share), " of its traffic to a newly released model ", num(lag), " hours after it appeared")
        return SignalResult(value, share, only_where(reason, value))
