"""Registration signals: how the account came to exist (needs the accounts table)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from distillwatch.signals.base import (
    Signal,
    SignalContext,
    SignalMeta,
    SignalResult,
    num,
    only_where,
    ramp,
    register,
    words,
)


@register
class FreshAccount(Signal):
    meta = SignalMeta(
        id="fresh_account",
        title="Put to work right after registration",
        description=(
            "Hours between registration and the account's first exchange in the window. Bought or freshly "
            "made accounts start harvesting at once; the value rises as the age falls from `lo` to `hi` hours."
        ),
        family="registration",
        inputs=["accounts.created_at", "ts"],
        severity="low",
        false_positives=["new customers in their first days", "a class registering at term start"],
        weight=0.5,
        params={"lo": 24 * 14, "hi": 24},
    )

    def compute(self, ctx: SignalContext, params: dict[str, Any]) -> SignalResult:
        raw = ctx.col("age_at_first_use_hours")
        value = ramp(raw, params["lo"], params["hi"])
        reason = words("first used ", num(raw), " hours after registration")
        return SignalResult(value, raw, only_where(reason, value))


@register
class DisposableEmail(Signal):
    meta = SignalMeta(
        id="disposable_email",
        title="Disposable e-mail domain",
        description=(
            "The account's e-mail domain is on a disposable / burner list (shipped public lists plus the user's). "
            "Binary; weight it to taste."
        ),
        family="registration",
        inputs=["accounts.email"],
        severity="low",
        false_positives=["privacy-minded individuals"],
        weight=0.5,
    )

    def compute(self, ctx: SignalContext, params: dict[str, Any]) -> SignalResult:
        raw = ctx.col("email_disposable", 0.0)
        value = np.nan_to_num(raw)
        domain = pc.fill_null(ctx.text("email_domain"), "?")
        reason = words("registered with a disposable e-mail domain (", domain, ")")
        return SignalResult(value, raw, only_where(reason, value))


@register
class SharedPayment(Signal):
    meta = SignalMeta(
        id="shared_payment",
        title="Payment instrument shared with other accounts",
        description=(
            "Number of accounts paying with the same payment fingerprint. One card behind many accounts is a "
            "classic fleet tell. Rises from `lo` to `hi` accounts."
        ),
        family="registration",
        inputs=["accounts.payment_fingerprint"],
        severity="medium",
        false_positives=["a company paying for its staff's accounts with one card"],
        weight=0.6,
        params={"lo": 1, "hi": 4},
    )

    def compute(self, ctx: SignalContext, params: dict[str, Any]) -> SignalResult:
        raw = ctx.col("payment_accounts", 0.0)
        value = ramp(raw, params["lo"], params["hi"])
        reason = words("pays with a card shared by ", num(raw), " accounts")
        return SignalResult(value, raw, only_where(reason, value))


@register
class DormantAccount(Signal):
    meta = SignalMeta(
        id="dormant_account",
        title="Dormant account put to sustained use",
        description=(
            "Days an account that then sent at least `min_exchanges` requests stayed silent: from the later of the "
            "window's start and its registration to its first exchange. Fleets that buy or farm aged accounts "
            "bring them online when the harvest starts; a customer who sends real volume was already active when "
            "the window began, or registered just before its first request (that is `fresh_account`). Rises from "
            "`lo` to `hi` days. No evidence below `min_exchanges` (occasional users come and go)."
        ),
        family="registration",
        inputs=["accounts.created_at", "ts"],
        severity="low",
        false_positives=["a customer returning from a break", "a class starting mid-window (declared organisation)"],
        weight=0.6,
        params={"lo": 1.0, "hi": 3.0, "min_exchanges": 20},
    )

    def compute(self, ctx: SignalContext, params: dict[str, Any]) -> SignalResult:
        raw, _ = silent_days(ctx, 0)
        # The profile (score/profile.py) compares the silence of every account; only sustained use makes it evidence.
        sustained = ctx.col("exchanges", 0.0) >= params["min_exchanges"]
        value = ramp(raw, params["lo"], params["hi"]) * sustained
        reason = words("silent for ", num(raw, 1), " days in the window, then put to sustained use")
        return SignalResult(value, raw, only_where(reason, value))


def silent_days(ctx: SignalContext, min_exchanges: float) -> tuple[np.ndarray, np.ndarray]:
    """Per account: days silent before its first exchange (from the later of the window's start and its
    registration; NaN below ``min_exchanges``) and the first exchange (epoch seconds)."""
    first = _epoch_seconds(ctx, "first_ts")
    window_start = np.nanmin(first) if np.any(~np.isnan(first)) else np.nan
    silent = (first - window_start) / 86400.0
    age_days = ctx.col("age_at_first_use_hours") / 24.0
    # Registered inside the window: silent only since registration (a new customer's first days are not dormancy).
    silent = np.where(np.isnan(age_days), silent, np.minimum(silent, np.maximum(age_days, 0.0)))
    return np.where(ctx.col("exchanges", 0.0) >= min_exchanges, silent, np.nan), first


def _epoch_seconds(ctx: SignalContext, name: str) -> np.ndarray:
    """A timestamp feature column as epoch seconds (float64, NaN where null or absent)."""
    if name not in ctx.features.column_names:
        return np.full(ctx.n, np.nan)
    col = ctx.features.column(name).combine_chunks()
    if not pa.types.is_timestamp(col.type):
        return ctx.col(name)
    per_second = {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}[col.type.unit]
    ints = pc.cast(col.cast(pa.timestamp(col.type.unit)), pa.int64())
    return pc.fill_null(pc.cast(ints, pa.float64()), np.nan).to_numpy(zero_copy_only=False) / per_second
