"""The ASGI middleware in front of a small OpenAI-style app, deciding over HTTP and in process."""

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from distillwatch.integrations.asgi import DistillwatchMiddleware
from distillwatch.integrations.client import HttpDecider, InProcessDecider
from tests.integrations.conftest import TOKEN


async def completions(request: Request) -> JSONResponse:
    body = await request.json()
    # Echo what reached the model, and answer with a reasoning trace a degrade must strip.
    return JSONResponse(
        {
            "received": body,
            "choices": [
                {
                    "message": {
                        "role": "assistant",
                        "content": "ok",
                        "reasoning_content": "secret chain of thought",
                    }
                }
            ],
        }
    )


def _gateway(decider):
    app = Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"])])
    app.add_middleware(DistillwatchMiddleware, decider=decider, account_header="x-account-id")
    return app


@pytest.fixture(params=["http", "in-process"])
def client(request, service):
    url, db = service
    decider = HttpDecider(url, TOKEN, timeout_s=2.0) if request.param == "http" else InProcessDecider(db)
    transport = httpx.ASGITransport(app=_gateway(decider), client=("192.0.2.9", 5555))
    return httpx.AsyncClient(transport=transport, base_url="http://gateway")


BODY = {
    "model": "m",
    "messages": [{"role": "user", "content": "hi"}],
    "max_tokens": 9000,
    "reasoning_effort": "high",
}


async def _post(client, account):
    headers = {"x-account-id": account} if account else {}
    return await client.post("/v1/chat/completions", json=BODY, headers=headers)


@pytest.mark.anyio
async def test_block_allow_degrade_and_no_account(client):
    async with client:
        blocked = await _post(client, "atk-1")
        assert blocked.status_code == 403 and blocked.json()["error"]["type"] == "blocked"
        assert blocked.headers["x-distillwatch-action"] == "block"
        ent = await _post(client, "ent-1")  # flagged: passes untouched
        assert ent.status_code == 200 and ent.json()["received"] == BODY
        assert ent.headers["x-distillwatch-action"] == "flag"
        degraded = await _post(client, "clean-2")
        got = degraded.json()
        assert got["received"]["max_tokens"] == 1024 and "reasoning_effort" not in got["received"]
        assert "reasoning_content" not in got["choices"][0]["message"]
        assert got["choices"][0]["message"]["content"] == "ok"
        anonymous = await _post(client, None)
        assert anonymous.status_code == 200 and "x-distillwatch-action" not in anonymous.headers


@pytest.mark.anyio
async def test_throttle_returns_429_with_retry_after(client):
    async with client:
        codes = [(await _post(client, "sus-1")).status_code for _ in range(7)]
        assert codes == [200] * 5 + [429] * 2
        limited = await _post(client, "sus-1")
        assert int(limited.headers["retry-after"]) >= 1


@pytest.fixture
def anyio_backend():
    return "asyncio"
