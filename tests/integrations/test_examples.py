"""The documented examples work as written (examples/asgi/gateway.py, examples/litellm/)."""

import importlib.util
from pathlib import Path

import httpx
import pytest
import yaml

from tests.integrations.conftest import TOKEN

EXAMPLES = Path(__file__).parents[2] / "examples"


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.anyio
async def test_asgi_gateway_example(service, monkeypatch):
    url, _ = service
    monkeypatch.setenv("DISTILLWATCH_URL", url)
    monkeypatch.setenv("DISTILLWATCH_TOKEN", TOKEN)
    gateway = _load(EXAMPLES / "asgi" / "gateway.py", "example_gateway")
    transport = httpx.ASGITransport(app=gateway.app, client=("192.0.2.10", 1234))
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        body = {"model": "m", "messages": [], "max_tokens": 4000, "reasoning_effort": "high"}
        ok = await client.post("/v1/chat/completions", json=body, headers={"x-account-id": "clean-1"})
        assert ok.json() == {"forwarded": body, "distillwatch_action": "allow"}
        degraded = await client.post("/v1/chat/completions", json=body, headers={"x-account-id": "clean-2"})
        assert degraded.json()["forwarded"]["max_tokens"] == 1024
        blocked = await client.post("/v1/chat/completions", json=body, headers={"x-account-id": "atk-3"})
        assert blocked.status_code == 403


def test_litellm_example(monkeypatch):
    pytest.importorskip("litellm")
    monkeypatch.setenv("DISTILLWATCH_TOKEN", TOKEN)
    config = yaml.safe_load((EXAMPLES / "litellm" / "config.yaml").read_text())
    module_name, attribute = config["litellm_settings"]["callbacks"].split(".")
    hook = getattr(_load(EXAMPLES / "litellm" / f"{module_name}.py", module_name), attribute)
    from distillwatch.integrations.litellm import DistillwatchHook

    assert isinstance(hook, DistillwatchHook) and hook.decider.fail_open


@pytest.fixture
def anyio_backend():
    return "asyncio"
