"""ASGI middleware enforcing distillwatch decisions in any Python gateway (FastAPI, Starlette, ...).

    from distillwatch.integrations.asgi import DistillwatchMiddleware
    from distillwatch.integrations.client import HttpDecider

    app.add_middleware(DistillwatchMiddleware,
                       decider=HttpDecider("http://127.0.0.1:8087", token=TOKEN, fail_open=True),
                       account_header="x-account-id")

Per request: the account id (a header, or your own function of the ASGI scope) and the
client address go to the decider; ``block`` / ``verify`` get a 403 and ``throttle`` over
its rate a 429 (JSON bodies, never reaching your app); ``degrade`` rewrites an
OpenAI-style JSON body (reasoning options removed, output capped) and strips reasoning
traces from a JSON answer; ``allow`` and ``flag`` pass.  The decision is put in
``scope["state"]["distillwatch"]`` and the answer carries ``x-distillwatch-action``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from distillwatch.integrations.client import Decider, Decision, RateLimiter, Refusal, enforce, strip_reasoning

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]

MAX_REWRITE_BYTES = 4 * 1024 * 1024  # bodies above this are passed on as they are, never buffered


class DistillwatchMiddleware:
    def __init__(
        self,
        app: Callable,
        decider: Decider,
        account_header: str = "x-account-id",
        account_from: Callable[[Scope], str | None] | None = None,
        trust_forwarded_for: bool = False,
        paths: tuple[str, ...] = ("/v1/",),
    ) -> None:
        self.app = app
        self.decider = decider
        self.header = account_header.lower().encode()
        self.account_from = account_from
        self.trust_forwarded_for = trust_forwarded_for
        self.paths = paths
        self.limiter = RateLimiter()

    def _header(self, scope: Scope, name: bytes) -> str | None:
        for k, v in scope.get("headers", ()):
            if k == name:
                return v.decode("latin-1")
        return None

    def _ip(self, scope: Scope) -> str:
        if self.trust_forwarded_for:
            forwarded = self._header(scope, b"x-forwarded-for")
            if forwarded:
                return forwarded.split(",")[0].strip()
        client = scope.get("client")
        return client[0] if client else "0.0.0.0"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.paths):
            await self.app(scope, receive, send)
            return
        account = self.account_from(scope) if self.account_from else self._header(scope, self.header)
        if not account:
            await self.app(scope, receive, send)
            return
        decision = await self.decider.decide(account, self._ip(scope))
        scope.setdefault("state", {})["distillwatch"] = decision
        if decision.action == "degrade":
            await self._degraded(scope, receive, send, account, decision)
            return
        outcome = enforce(decision, None, account, self.limiter)
        if isinstance(outcome, Refusal):
            await _refuse(send, outcome, decision)
            return
        await self.app(scope, receive, _tagging(send, decision))

    async def _degraded(
        self, scope: Scope, receive: Receive, send: Send, account: str, decision: Decision
    ) -> None:
        body, complete = await _read_body(receive, MAX_REWRITE_BYTES)
        if complete and body and _is_json(self._header(scope, b"content-type")):
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None  # not ours to judge: the app answers its own 4xx
            if isinstance(parsed, dict):
                rewritten = enforce(decision, parsed, account, self.limiter)
                if isinstance(rewritten, dict):
                    body = json.dumps(rewritten).encode()
                    scope = dict(scope)
                    scope["headers"] = [(k, v) for k, v in scope["headers"] if k != b"content-length"] + [
                        (b"content-length", str(len(body)).encode())
                    ]
        sent = False

        async def replay() -> dict:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": not complete}
            return await receive()

        await self.app(
            scope,
            replay,
            _stripping(_tagging(send, decision)) if decision.withhold_reasoning else _tagging(send, decision),
        )


def _is_json(content_type: str | None) -> bool:
    return content_type is not None and content_type.split(";")[0].strip().lower() == "application/json"


async def _read_body(receive: Receive, limit: int) -> tuple[bytes, bool]:
    """Up to ``limit`` bytes of the body; complete=False when more is left unread."""
    chunks: list[bytes] = []
    total = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), True
        chunk = message.get("body", b"")
        chunks.append(chunk)
        total += len(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), True
        if total > limit:
            return b"".join(chunks), False


async def _refuse(send: Send, refusal: Refusal, decision: Decision) -> None:
    body = json.dumps(
        {
            "error": {
                "message": refusal.message,
                "type": refusal.code,
                "reason_codes": list(decision.reason_codes),
            }
        }
    ).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-distillwatch-action", decision.action.encode()),
    ]
    if refusal.retry_after_s:
        headers.append((b"retry-after", str(int(refusal.retry_after_s + 0.999)).encode()))
    await send({"type": "http.response.start", "status": refusal.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _tagging(send: Send, decision: Decision) -> Send:
    async def wrapped(message: dict) -> None:
        if message["type"] == "http.response.start":
            message = {
                **message,
                "headers": [
                    *message.get("headers", []),
                    (b"x-distillwatch-action", decision.action.encode()),
                ],
            }
        await send(message)

    return wrapped


def _stripping(send: Send) -> Send:
    """Buffer a JSON answer (bounded) and remove reasoning traces; stream anything else through."""
    start: dict | None = None
    chunks: list[bytes] = []
    size = 0
    passthrough = False

    async def wrapped(message: dict) -> None:
        nonlocal start, size, passthrough
        if message["type"] == "http.response.start":
            ctype = next(
                (v.decode("latin-1") for k, v in message.get("headers", []) if k == b"content-type"), None
            )
            if not _is_json(ctype):
                passthrough = True
                await send(message)
                return
            start = message
            return
        if passthrough or start is None or message["type"] != "http.response.body":
            await send(message)
            return
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        if size > MAX_REWRITE_BYTES:  # too big to rewrite: send what we have and stream the rest
            passthrough = True
            await send(start)
            await send({"type": "http.response.body", "body": b"".join(chunks), "more_body": True})
            if not message.get("more_body", False):
                await send({"type": "http.response.body", "body": b""})
            return
        if message.get("more_body", False):
            return
        body = b"".join(chunks)
        try:
            body = json.dumps(strip_reasoning(json.loads(body))).encode()
        except ValueError:
            pass
        headers = [(k, v) for k, v in start.get("headers", []) if k != b"content-length"]
        await send({**start, "headers": [*headers, (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    return wrapped
