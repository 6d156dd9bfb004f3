"""Content signals: what an account asks for (over its bounded prompt sample)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from distillwatch.features.content import CAPABILITIES
from distillwatch.signals.base import (
    ATLAS_EXTRACT,
    ATLAS_PROXY_MODEL,
    ATLAS_REFERENCE,
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

# Capabilities a distillation campaign is after (the reported campaign: software engineering,
# agentic reasoning, long-horizon tasks; chain-of-thought math is the classic seed set).
HIGH_VALUE = ("software_engineering", "agentic_tool_use", "long_horizon", "math_reasoning")


def capability_matrix(ctx: SignalContext) -> np.ndarray:
    """(accounts, capabilities) shares of each account's labelled sample; rows of zeros when unlabelled."""
    return np.nan_to_num(np.column_stack([ctx.col(f"cap_{c}") for c in CAPABILITIES]), nan=0.0)


def js_divergence(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Jensen-Shannon divergence (base 2, 0..1) of each row of ``p`` from the distribution ``q``."""
    p = p / np.maximum(p.sum(axis=1, keepdims=True), 1e-12)
    q = q / max(q.sum(), 1e-12)
    m = 0.5 * (p + q)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_p = np.where(p > 0, p * np.log2(p / m), 0.0).sum(axis=1)
        kl_q = np.where(q > 0, q * np.log2(q / m), 0.0).sum(axis=1)
    return 0.5 * (kl_p + kl_q)


@register
class CapabilityFocus(Signal):
    meta = SignalMeta(
        id="capability_focus",
        title="Capability mix departs from the population's, towards harvested skills",
        description=(
            "Jensen-Shannon divergence between the account's capability mix (software engineering, agentic tool "
            "use, long-horizon, math and reasoning, writing, chat, other; classified per prompt) and the "
            "population's, counted only when the departure is towards the skills campaigns harvest "
            "(`high_value`). Tune `lo`/`hi` (divergence) and `min_sample` (prompts classified)."
        ),
        family="content",
        inputs=["prompt"],
        severity="medium",
        false_positives=["specialised products (a coding assistant's backend, a maths tutor)"],
        tags=[ATLAS_EXTRACT, ATLAS_PROXY_MODEL],
        references=[ATLAS_REFERENCE],
        weight=1.0,
        params={"lo": 0.15, "hi": 0.5, "min_sample": 20, "high_value": list(HIGH_VALUE)},
    )

    def compute(self, ctx: SignalContext, params: dict[str, Any]) -> SignalResult:
        mix = capability_matrix(ctx)
        population = np.array([ctx.population.get("capabilities", {}).get(c, 0.0) for c in CAPABILITIES])
        labelled = mix.sum(axis=1) > 0
        raw = np.where(labelled, js_divergence(mix, population) if population.sum() > 0 else 0.0, np.nan)
        hv = np.array([c in params["high_value"] for c in CAPABILITIES])
        hv_share = mix[:, hv].sum(axis=1)
        towards = hv_share > float(population[hv].sum())
        value = ramp(raw, params["lo"], params["hi"]) * towards * support(ctx.col("sample_labelled", 0), params["min_sample"])
        top = np.array(CAPABILITIES, dtype=object)[mix.argmax(axis=1)]
        top_share = mix.max(axis=1)
        reason = words(
            "focuses on ", pa.array([str(t).replace("_", " ") for t in top], pa.string()), " (", pct(top_share),
            " of its prompts; ", pct(hv_share), " on harvested skills against ", pct(np.full(ctx.n, population[hv].sum())),
            " in the population)",
        )
        return SignalResult(value, raw, only_where(reason, value))


@register
class CotElicitation(Signal):
    meta = SignalMeta(
        id="cot_elicitation",
        title="Asks for the model's chain of thought",
        description=(
            "Share of sampled exchanges whose user turn or system prompt asks the model to reveal its reasoning "
            "step by step. Reasoning traces are what a distiller trains on. Fires from `lo` to `hi` (shares); "
            "in ordinary traffic almost nobody asks for it, so a few percent is already unusual."
        ),
        family="content",
        inputs=["prompt", "system"],
        severity="medium",
        false_positives=["tutoring products", "prompt-engineering style guides that ask for reasoning"],
        tags=[ATLAS_EXTRACT, ATLAS_PROXY_MODEL],
        weight=1.0,
        params={"lo": 0.05, "hi": 0.4, "min_sample": 20},
    )

    def compute(self, ctx: SignalContext, params: dict[str, Any]) -> SignalResult:
        raw = ctx.col("cot_share")
        value = ramp(raw, params["lo"], params["hi"]) * support(ctx.col("sample_n", 0), params["min_sample"])
        base = ctx.population.get("cot_share") or 0.0
        reason = words("asks for step-by-step reasoning in ", pct(raw), " of its prompts (population ",
                       pct(np.full(ctx.n, base)), ")")
        return SignalResult(value, raw, only_where(reason, value))
