"""LiteLLM proxy callback module: put it next to config.yaml and start `litellm --config config.yaml`.

Needs DISTILLWATCH_TOKEN (one of the service's tokens) and, unless the service runs on
127.0.0.1:8087, DISTILLWATCH_URL.  DISTILLWATCH_FAIL_CLOSED=1 refuses calls while the
decision service is unreachable (the default lets them through).
"""

from distillwatch.integrations.litellm import DistillwatchHook

proxy_handler_instance = DistillwatchHook.from_env()
