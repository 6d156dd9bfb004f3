"""Coordination signals: what an account shares with other accounts (its pair links live in ``pairs.py``)."""

from __future__ import annotations

from typing import Any

from distillwatch.signals.base import (
    Signal,
    SignalContext,
    SignalMeta,
    SignalResult,
    only_where,
    pct,
    ramp,
    register,
    support,
    words,
)


@register
class SharedTemplates(Signal):
    meta = SignalMeta(
        id="shared_templates",
        title="Prompts follow templates other accounts also send",
        description=(
            "Share of the account's sampled prompts whose normalised template (numbers, names, code, quoted "
            "strings replaced by placeholders) is also sent by another account. Slot-filled task generation "
            "leaves this trace. Fires from `lo` to `hi`. Family content: it is the same evidence as the template "
            "and near-duplicate links, so a campaign cannot count it twice as two independent families."
        ),
        family="content",
        inputs=["prompt"],
        severity="medium",
        false_positives=["customers of one product sending its fixed prompt", "benchmark replays by several teams"],
        weight=1.0,
        # What the account shares, not what it extracts: at the reported campaign's full scale (289,701
        # accounts) 76% of ordinary customers reached the harvest level with this signal and 26% without it,
        # and a community of 10,427 VPN customers passed the harvest test on it.
        harvest=False,
        params={"lo": 0.15, "hi": 0.6, "min_sample": 20},
    )

    def compute(self, ctx: SignalContext, params: dict[str, Any]) -> SignalResult:
        raw = ctx.col("template_shared_share")
        value = ramp(raw, params["lo"], params["hi"]) * support(ctx.col("sample_n", 0), params["min_sample"])
        reason = words(pct(raw), " of its prompts follow templates other accounts also send")
        return SignalResult(value, raw, only_where(reason, value))
