"""A minimal OpenAI-style gateway with distillwatch in front of it (ASGI middleware).

    export DISTILLWATCH_TOKEN=...      # a token `distillwatch serve` accepts
    uvicorn examples.asgi.gateway:app --port 9000
    curl -s localhost:9000/v1/chat/completions -H 'x-account-id: acct-123' \\
         -H 'content-type: application/json' -d '{"model": "m", "messages": [], "max_tokens": 4000}'

Blocked or unverified accounts get 403, throttled ones 429 beyond their rate; degraded ones
reach the model without reasoning options and with a capped output.  Without a running
decision service the gateway fails open (set fail_open=False to refuse instead).
"""

import os

from fastapi import FastAPI, Request

from distillwatch.integrations.asgi import DistillwatchMiddleware
from distillwatch.integrations.client import HttpDecider

app = FastAPI(title="example gateway")
app.add_middleware(
    DistillwatchMiddleware,
    decider=HttpDecider(
        os.environ.get("DISTILLWATCH_URL", "http://127.0.0.1:8087"),
        token=os.environ.get("DISTILLWATCH_TOKEN", ""),
        timeout_s=0.25,
        fail_open=True,
    ),
    account_header="x-account-id",
)


@app.post("/v1/chat/completions")
async def completions(request: Request) -> dict:
    body = await request.json()
    decision = request.scope.get("state", {}).get("distillwatch")
    # A real gateway forwards `body` to the model here; this one shows what it would send.
    return {"forwarded": body, "distillwatch_action": decision.action if decision else None}
