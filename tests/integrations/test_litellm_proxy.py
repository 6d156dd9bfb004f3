"""The real LiteLLM proxy (`litellm --config`, a mock model) with the example hook, over HTTP."""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytest.importorskip("litellm")

from tests.integrations.conftest import TOKEN  # noqa: E402
from tests.respond.server import free_port  # noqa: E402

EXAMPLES = Path(__file__).parents[2] / "examples" / "litellm"
MASTER = "sk-master-test-0123456789abcdefghij"
CONFIG = """
model_list:
  - model_name: mock
    litellm_params:
      model: openai/gpt-4o
      api_key: sk-not-used
      mock_response: "hello from the mock model"
litellm_settings:
  callbacks: distillwatch_hook.proxy_handler_instance
"""


@pytest.mark.slow
def test_proxy_refuses_blocked_accounts_and_serves_others(service, tmp_path):
    url, _ = service
    shutil.copy(EXAMPLES / "distillwatch_hook.py", tmp_path)
    (tmp_path / "config.yaml").write_text(CONFIG, encoding="utf-8")
    port = free_port()
    env = {
        **os.environ,
        "DISTILLWATCH_URL": url,
        "DISTILLWATCH_TOKEN": TOKEN,
        "DISTILLWATCH_USE_END_USER": "1",
        "LITELLM_MASTER_KEY": MASTER,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    }
    exe = Path(sys.executable).with_name("litellm")
    proxy = subprocess.Popen(
        [str(exe), "--config", "config.yaml", "--host", "127.0.0.1", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(base + "/health/liveliness", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proxy.poll() is None and time.monotonic() < deadline, "the LiteLLM proxy did not start"
            time.sleep(0.5)

        def chat(user: str, **extra) -> httpx.Response:
            body = {"model": "mock", "user": user, "messages": [{"role": "user", "content": "hi"}], **extra}
            return httpx.post(
                base + "/v1/chat/completions",
                json=body,
                timeout=30,
                headers={"Authorization": f"Bearer {MASTER}"},
            )

        blocked = chat("atk-1")
        assert blocked.status_code == 403
        assert "CAMPAIGN-BLOCK" in blocked.json()["error"]["message"]
        ok = chat("clean-1")
        assert (
            ok.status_code == 200
            and ok.json()["choices"][0]["message"]["content"] == "hello from the mock model"
        )
        assert (
            chat("clean-2", max_tokens=50_000, reasoning_effort="high").status_code == 200
        )  # degraded, served
    finally:
        proxy.terminate()
        try:
            proxy.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proxy.kill()
