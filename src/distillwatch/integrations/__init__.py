"""distillwatch.integrations: enforcing decisions in API gateways.

- ``client.HttpDecider`` / ``client.InProcessDecider``: where decisions come from.
- ``litellm.DistillwatchHook``: a LiteLLM proxy hook (needs the ``litellm`` extra).
- ``asgi.DistillwatchMiddleware``: ASGI middleware for any Python gateway.

See docs/respond.md and examples/litellm/, examples/asgi/.
"""
