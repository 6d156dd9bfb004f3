"""The LiteLLM hook, called through LiteLLM's own proxy pre-call machinery (ProxyLogging)."""

import asyncio

import pytest

litellm = pytest.importorskip("litellm")

from fastapi import HTTPException  # noqa: E402
from litellm.caching.caching import DualCache  # noqa: E402
from litellm.proxy._types import UserAPIKeyAuth  # noqa: E402
from litellm.proxy.utils import ProxyLogging  # noqa: E402
from litellm.types.utils import ModelResponse  # noqa: E402

from distillwatch.integrations.client import REASON_UNAVAILABLE, HttpDecider, InProcessDecider  # noqa: E402
from distillwatch.integrations.litellm import DistillwatchHook  # noqa: E402
from tests.integrations.conftest import TOKEN  # noqa: E402


def _request(**extra):
    return {
        "model": "gpt-x",
        "messages": [{"role": "user", "content": "hi"}],
        "metadata": {"requester_ip_address": "192.0.2.44, 10.0.0.1"},
        **extra,
    }


async def _through_proxy(hook, user_id, data):
    """Run the proxy's real pre-call hook chain with our hook registered as a callback."""
    saved = litellm.callbacks
    litellm.callbacks = [hook]
    try:
        proxy_logging = ProxyLogging(user_api_key_cache=DualCache())
        return await proxy_logging.pre_call_hook(
            user_api_key_dict=UserAPIKeyAuth(user_id=user_id, api_key="sk-test"),
            data=data,
            call_type="completion",
        )
    finally:
        litellm.callbacks = saved


@pytest.fixture
def hook(service):
    url, _ = service
    return DistillwatchHook(HttpDecider(url, TOKEN, timeout_s=2.0))


def test_blocked_account_is_refused_with_403(hook):
    with pytest.raises(HTTPException) as err:
        asyncio.run(_through_proxy(hook, "atk-1", _request()))
    assert err.value.status_code == 403
    assert err.value.detail["code"] == "blocked" and "CAMPAIGN-BLOCK" in err.value.detail["reason_codes"]


def test_clean_account_passes_and_is_tagged(hook):
    out = asyncio.run(_through_proxy(hook, "clean-1", _request(max_tokens=50)))
    assert out["max_tokens"] == 50 and out["messages"][0]["content"] == "hi"
    assert out["metadata"]["distillwatch"]["action"] == "allow"


def test_degraded_account_loses_reasoning_and_long_outputs(hook):
    out = asyncio.run(
        _through_proxy(
            hook,
            "clean-2",
            _request(max_tokens=100_000, reasoning_effort="high", thinking={"type": "enabled"}),
        )
    )
    assert out["max_tokens"] == 1024 and "reasoning_effort" not in out and "thinking" not in out
    response = ModelResponse(
        choices=[{"message": {"role": "assistant", "content": "42", "reasoning_content": "step 1, step 2"}}]
    )
    stripped = asyncio.run(
        hook.async_post_call_success_hook(out, UserAPIKeyAuth(user_id="clean-2"), response)
    )
    assert stripped.choices[0].message.content == "42"
    assert getattr(stripped.choices[0].message, "reasoning_content", None) is None


def test_throttled_account_gets_429_after_its_burst(hook):
    async def burst():
        codes = []
        for _ in range(8):
            try:
                await _through_proxy(hook, "sus-1", _request())
                codes.append(200)
            except HTTPException as exc:
                codes.append(exc.status_code)
                assert exc.headers["Retry-After"]
        return codes

    # default policy: a suspect account 2 days old -> 10 requests/min with a burst of 5
    assert asyncio.run(burst()) == [200] * 5 + [429] * 3


def test_unreachable_service_fails_open_or_closed():
    dead = "http://127.0.0.1:9"  # discard port: nothing answers
    open_hook = DistillwatchHook(HttpDecider(dead, TOKEN, timeout_s=0.2, fail_open=True))
    out = asyncio.run(_through_proxy(open_hook, "atk-1", _request()))
    assert out["metadata"]["distillwatch"]["reason_codes"] == [REASON_UNAVAILABLE]
    closed_hook = DistillwatchHook(HttpDecider(dead, TOKEN, timeout_s=0.2, fail_open=False))
    with pytest.raises(HTTPException) as err:
        asyncio.run(_through_proxy(closed_hook, "clean-1", _request()))
    assert err.value.status_code == 403


def test_in_process_decider(service):
    _, db = service
    hook = DistillwatchHook(InProcessDecider(db))
    with pytest.raises(HTTPException):
        asyncio.run(_through_proxy(hook, "atk-2", _request()))
    assert (
        asyncio.run(_through_proxy(hook, "clean-1", _request()))["metadata"]["distillwatch"]["action"]
        == "allow"
    )


def test_no_account_no_decision(hook):
    class Master:  # the proxy's master key carries no user, team or org
        user_id = team_id = org_id = token = None

    data = _request()
    assert asyncio.run(hook.async_pre_call_hook(Master(), DualCache(), data, "completion")) is data


def test_one_decider_across_event_loops(service):
    # Scripts call asyncio.run repeatedly, proxies restart loops: the decider keeps working (no cache here).
    hook = DistillwatchHook(HttpDecider(service[0], TOKEN, timeout_s=2.0, cache_max_entries=0))
    for _ in range(2):
        out = asyncio.run(_through_proxy(hook, "clean-1", _request()))
        assert out["metadata"]["distillwatch"]["action"] == "allow"
    assert hook.decider.failures == 0
