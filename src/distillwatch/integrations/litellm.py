"""A LiteLLM proxy hook that enforces distillwatch decisions before a call reaches the model.

In the proxy's ``config.yaml``::

    litellm_settings:
      callbacks: distillwatch_hook.proxy_handler_instance

with ``distillwatch_hook.py`` next to it::

    from distillwatch.integrations.litellm import DistillwatchHook
    proxy_handler_instance = DistillwatchHook.from_env()   # DISTILLWATCH_URL, DISTILLWATCH_TOKEN

``async_pre_call_hook`` (LiteLLM calls it with the caller's ``UserAPIKeyAuth`` and the
request ``data``) asks for the account's decision and: raises a 403 for ``block`` and
``verify``, a 429 when a ``throttle`` rate is exceeded, rewrites the request for ``degrade``
(no reasoning options, capped output), and passes ``allow`` / ``flag`` on, tagging the
request's metadata with the decision either way.  ``async_post_call_success_hook`` strips
reasoning traces from answers to degraded accounts.
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import HTTPException
from litellm.integrations.custom_logger import CustomLogger

from distillwatch.integrations.client import (
    Decider,
    Decision,
    HttpDecider,
    RateLimiter,
    Refusal,
    enforce,
    strip_reasoning,
)

# Where the account id is read from, first found wins: attributes of UserAPIKeyAuth, then
# the OpenAI `user` field of the request (the end user behind a shared key).
DEFAULT_ACCOUNT_FIELDS = ("user_id", "team_id", "org_id", "token")
METADATA_KEY = "distillwatch"


class DistillwatchHook(CustomLogger):
    def __init__(
        self,
        decider: Decider,
        account_fields: tuple[str, ...] = DEFAULT_ACCOUNT_FIELDS,
        use_end_user: bool = False,
    ) -> None:
        super().__init__()
        self.decider = decider
        self.account_fields = account_fields
        self.use_end_user = use_end_user
        self.limiter = RateLimiter()

    @classmethod
    def from_env(cls) -> DistillwatchHook:
        """$DISTILLWATCH_URL and $DISTILLWATCH_TOKEN; $DISTILLWATCH_FAIL_CLOSED=1 to block when unreachable."""
        decider = HttpDecider(
            os.environ.get("DISTILLWATCH_URL", "http://127.0.0.1:8087"),
            os.environ["DISTILLWATCH_TOKEN"],
            timeout_s=float(os.environ.get("DISTILLWATCH_TIMEOUT_S", "0.25")),
            fail_open=os.environ.get("DISTILLWATCH_FAIL_CLOSED", "") not in ("1", "true", "yes"),
        )
        return cls(
            decider, use_end_user=os.environ.get("DISTILLWATCH_USE_END_USER", "") in ("1", "true", "yes")
        )

    def account_id(self, user_api_key_dict: Any, data: dict) -> str | None:
        if self.use_end_user and isinstance(data.get("user"), str) and data["user"]:
            return data["user"]
        for name in self.account_fields:
            value = getattr(user_api_key_dict, name, None)
            if isinstance(value, str) and value:
                return value
        return None

    @staticmethod
    def client_ip(data: dict) -> str:
        for key in ("metadata", "litellm_metadata"):
            meta = data.get(key)
            if isinstance(meta, dict) and meta.get("requester_ip_address"):
                # X-Forwarded-For may list a chain: the first address is the client.
                return str(meta["requester_ip_address"]).split(",")[0].strip()
        return "0.0.0.0"

    async def async_pre_call_hook(
        self, user_api_key_dict: Any, cache: Any, data: dict, call_type: Any
    ) -> dict:
        account = self.account_id(user_api_key_dict, data)
        if account is None:
            return data  # nothing to decide on (e.g. the master key)
        decision = await self.decider.decide(
            account, self.client_ip(data), getattr(user_api_key_dict, "token", None), data.get("model")
        )
        outcome = enforce(decision, data, account, self.limiter)
        if isinstance(outcome, Refusal):
            headers = (
                {"Retry-After": str(int(outcome.retry_after_s + 0.999))} if outcome.retry_after_s else None
            )
            raise HTTPException(
                status_code=outcome.status,
                headers=headers,
                detail={
                    "error": outcome.message,
                    "code": outcome.code,
                    "reason_codes": list(decision.reason_codes),
                },
            )
        out = outcome if outcome is not None else data
        self._tag(out, decision)
        return out

    @staticmethod
    def _tag(data: dict, decision: Decision) -> None:
        key = "litellm_metadata" if isinstance(data.get("litellm_metadata"), dict) else "metadata"
        meta = data.setdefault(key, {})
        if isinstance(meta, dict):
            meta[METADATA_KEY] = {
                "action": decision.action,
                "reason_codes": list(decision.reason_codes),
                "campaign_id": decision.campaign_id,
                "withhold_reasoning": decision.withhold_reasoning,
            }

    async def async_post_call_success_hook(self, data: dict, user_api_key_dict: Any, response: Any) -> Any:
        for key in ("metadata", "litellm_metadata"):
            meta = data.get(key)
            if isinstance(meta, dict) and (meta.get(METADATA_KEY) or {}).get("withhold_reasoning"):
                return strip_reasoning(response)
        return response
