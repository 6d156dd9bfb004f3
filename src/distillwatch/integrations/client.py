"""Asking for a decision from a gateway, and enforcing it on an OpenAI-style request.

Two deciders share one interface (``await decider.decide(account_id, ip, api_key_id, model)``):

- ``HttpDecider`` calls ``POST /v1/decision`` of `distillwatch serve` with a short timeout,
  caches each answer for its ``ttl_seconds`` (bounded), and when the service cannot be
  reached answers by the configured failure mode: fail-open (allow, the default: an outage
  of distillwatch must not take the gateway down) or fail-closed (block).
- ``InProcessDecider`` reads the store itself (the same in-memory snapshot the service
  uses), for a gateway that runs in the same Python process as distillwatch's store.

``enforce`` turns a decision into what the gateway does: refuse (block, verify, throttle
over its rate) or rewrite the request (degrade: cap the output, drop reasoning options).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx

REASON_UNAVAILABLE = "DECIDER-UNAVAILABLE"

# Request fields that ask a model for reasoning traces (OpenAI, Anthropic, LiteLLM spellings).
REASONING_PARAMS = ("reasoning_effort", "reasoning", "thinking", "include_reasoning", "reasoning_format")
# Request fields that bound the output length; a degrade caps whichever is there (or sets max_tokens).
OUTPUT_CAP_PARAMS = ("max_tokens", "max_completion_tokens", "max_output_tokens")


@dataclass(frozen=True)
class Decision:
    action: str
    reason_codes: tuple[str, ...] = ()
    campaign_id: str | None = None
    ttl_seconds: int = 60
    requests_per_minute: float | None = None
    burst: int | None = None
    withhold_reasoning: bool = False
    max_output_tokens: int | None = None

    @staticmethod
    def from_json(body: dict[str, Any]) -> Decision:
        throttle = body.get("throttle") or {}
        degrade = body.get("degrade") or {}
        return Decision(
            action=str(body["action"]),
            reason_codes=tuple(body.get("reason_codes") or ()),
            campaign_id=body.get("campaign_id"),
            ttl_seconds=int(body.get("ttl_seconds") or 60),
            requests_per_minute=throttle.get("requests_per_minute"),
            burst=throttle.get("burst"),
            withhold_reasoning=bool(degrade.get("withhold_reasoning", False)),
            max_output_tokens=degrade.get("max_output_tokens"),
        )


class Decider(Protocol):
    async def decide(
        self, account_id: str, ip: str, api_key_id: str | None = None, model: str | None = None
    ) -> Decision: ...


class _TtlCache:
    """A bounded LRU of decisions that expire after their own ttl (capped by ``max_ttl_s``)."""

    def __init__(self, max_entries: int, max_ttl_s: float) -> None:
        self.max_entries = max_entries
        self.max_ttl_s = max_ttl_s
        self._data: OrderedDict[tuple[str, str], tuple[float, Decision]] = OrderedDict()

    def get(self, key: tuple[str, str]) -> Decision | None:
        hit = self._data.get(key)
        if hit is None or hit[0] < time.monotonic():
            return None
        self._data.move_to_end(key)
        return hit[1]

    def put(self, key: tuple[str, str], decision: Decision) -> None:
        self._data[key] = (time.monotonic() + min(decision.ttl_seconds, self.max_ttl_s), decision)
        self._data.move_to_end(key)
        while len(self._data) > self.max_entries:
            self._data.popitem(last=False)


class HttpDecider:
    """Decisions from a running `distillwatch serve`."""

    def __init__(
        self,
        url: str,
        token: str,
        timeout_s: float = 0.25,
        fail_open: bool = True,
        cache_max_entries: int = 100_000,
        cache_max_ttl_s: float = 60.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.url = url.rstrip("/") + "/v1/decision"
        self.headers = {"Authorization": f"Bearer {token}"}
        self.timeout = httpx.Timeout(timeout_s)
        self.fail_open = fail_open
        self.cache = _TtlCache(cache_max_entries, cache_max_ttl_s) if cache_max_entries else None
        self._client = client
        self._loop: asyncio.AbstractEventLoop | None = None
        self.failures = 0  # how many times the failure mode answered (for the gateway's metrics)

    def _http(self) -> httpx.AsyncClient:
        # An AsyncClient belongs to the event loop it was first used on; make a new one on another loop.
        loop = asyncio.get_running_loop()
        if self._client is not None and self._loop is None:
            self._loop = loop  # a client handed to us: it lives on this loop
        elif self._client is None or self._loop is not loop:
            self._client = httpx.AsyncClient(timeout=self.timeout)
            self._loop = loop
        return self._client

    def _unavailable(self) -> Decision:
        self.failures += 1
        # Not cached: the next request asks again.
        return Decision(
            action="allow" if self.fail_open else "block", reason_codes=(REASON_UNAVAILABLE,), ttl_seconds=0
        )

    async def decide(
        self, account_id: str, ip: str, api_key_id: str | None = None, model: str | None = None
    ) -> Decision:
        key = (account_id, ip)
        if self.cache is not None and (hit := self.cache.get(key)) is not None:
            return hit
        payload = {"account_id": account_id, "ip": ip, "api_key_id": api_key_id, "model": model}
        try:
            r = await self._http().post(self.url, json=payload, headers=self.headers, timeout=self.timeout)
        except httpx.HTTPError:
            return self._unavailable()
        if r.status_code != 200:
            return self._unavailable()
        try:
            decision = Decision.from_json(r.json())
        except (ValueError, KeyError, TypeError):
            return self._unavailable()
        if self.cache is not None:
            self.cache.put(key, decision)
        return decision

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()


class InProcessDecider:
    """Decisions straight from the store, without the HTTP service (same snapshot and reload)."""

    def __init__(self, db: str | Path, policy: Any = None, refresh_interval_s: float = 1.0) -> None:
        from distillwatch.respond.policy import load_policy
        from distillwatch.respond.snapshot import SnapshotHolder

        self.holder = SnapshotHolder(db, policy if policy is not None else load_policy())
        self.holder.refresh(force=True)
        self.refresh_interval_s = refresh_interval_s
        self._next_check = time.monotonic() + refresh_interval_s
        self._refreshing = threading.Lock()

    async def decide(
        self, account_id: str, ip: str, api_key_id: str | None = None, model: str | None = None
    ) -> Decision:
        if time.monotonic() >= self._next_check and self._refreshing.acquire(blocking=False):
            # Re-check the store's marker off the event loop; answer from the current snapshot meanwhile.
            self._next_check = time.monotonic() + self.refresh_interval_s

            def _refresh() -> None:
                try:
                    self.holder.refresh()
                finally:
                    self._refreshing.release()

            asyncio.get_running_loop().run_in_executor(None, _refresh)
        return Decision.from_json(json.loads(self.holder.current.answer(account_id, ip)))


@dataclass
class _Bucket:
    tokens: float
    stamp: float


@dataclass
class RateLimiter:
    """Token buckets per account, for decisions that say ``throttle`` (bounded in size)."""

    max_accounts: int = 100_000
    _buckets: OrderedDict[str, _Bucket] = field(default_factory=OrderedDict)

    def allow(self, account_id: str, per_minute: float, burst: int | None) -> tuple[bool, float]:
        """(allowed, seconds until the next request would be allowed)."""
        capacity = float(burst or 1)
        rate = per_minute / 60.0
        now = time.monotonic()
        b = self._buckets.get(account_id)
        if b is None:
            b = _Bucket(tokens=capacity, stamp=now)
            self._buckets[account_id] = b
        b.tokens = min(capacity, b.tokens + (now - b.stamp) * rate)
        b.stamp = now
        self._buckets.move_to_end(account_id)
        while len(self._buckets) > self.max_accounts:
            self._buckets.popitem(last=False)
        if b.tokens >= 1.0:
            b.tokens -= 1.0
            return True, 0.0
        return False, (1.0 - b.tokens) / rate if rate > 0 else 60.0


@dataclass(frozen=True)
class Refusal:
    status: int  # 403 (block / verify) or 429 (throttle)
    code: str  # "blocked" | "verification_required" | "rate_limited"
    message: str
    retry_after_s: float | None = None


def enforce(
    decision: Decision, body: dict[str, Any] | None, account_id: str, limiter: RateLimiter
) -> Refusal | dict[str, Any] | None:
    """What to do with a request: a ``Refusal``, a rewritten body (degrade), or None (pass as is)."""
    codes = ", ".join(decision.reason_codes) or "policy"
    if decision.action == "block":
        return Refusal(403, "blocked", f"request refused by policy ({codes})")
    if decision.action == "verify":
        return Refusal(403, "verification_required", "verify your identity or payment method to continue")
    if decision.action == "throttle" and decision.requests_per_minute:
        ok, wait = limiter.allow(account_id, decision.requests_per_minute, decision.burst)
        if not ok:
            return Refusal(
                429, "rate_limited", "rate limit reached for this account", retry_after_s=max(wait, 1.0)
            )
    if decision.action == "degrade" and body is not None:
        return degrade_request(body, decision)
    return None


def degrade_request(body: dict[str, Any], decision: Decision) -> dict[str, Any]:
    """A copy of an OpenAI-style request body with reasoning options removed and the output capped."""
    out = dict(body)
    if decision.withhold_reasoning:
        for name in REASONING_PARAMS:
            out.pop(name, None)
    cap = decision.max_output_tokens
    if cap is not None:
        present = [p for p in OUTPUT_CAP_PARAMS if p in out]
        for p in present or ["max_tokens"]:
            current = out.get(p)
            out[p] = cap if not isinstance(current, int) or current <= 0 else min(current, cap)
    return out


def strip_reasoning(response: Any) -> Any:
    """Remove reasoning traces from a chat-completion response (object or dict), in place."""
    choices = response.get("choices") if isinstance(response, dict) else getattr(response, "choices", None)
    for choice in choices or []:
        message = choice.get("message") if isinstance(choice, dict) else getattr(choice, "message", None)
        if message is None:
            continue
        for name in ("reasoning_content", "thinking_blocks", "reasoning"):
            if isinstance(message, dict):
                message.pop(name, None)
            elif getattr(message, name, None) is not None:
                try:
                    setattr(message, name, None)
                except (AttributeError, TypeError, ValueError):
                    pass
    return response
