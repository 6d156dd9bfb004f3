"""Registration signals: how the account came to exist (needs the accounts table)."""

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
