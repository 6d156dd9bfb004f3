"""Mapping the log shapes providers already have onto the exchanges contract.

Each adapter turns one parsed JSON object into zero or more flat records whose
keys are contract field names.  They only *locate* values; typing, bounds and
canonical forms are checked afterwards by the same vectorised validation as
contract input, so an adapter never hides a bad value.  The mappings are
documented, field by field, in docs/schema.md.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

Record = dict[str, Any]

# Contract fields a chat log may also carry at its top level, taken as they are.
PASSTHROUGH = (
    "request_id",
    "account_id",
    "ts",
    "ip",
    "model",
    "conversation_id",
    "user_agent",
    "api_key_id",
    "org_id",
    "asn",
    "country",
)


class AdapterError(ValueError):
    """The record has no usable structure for this adapter."""

    def __init__(self, field: str, detail: str) -> None:
        self.field = field
        super().__init__(detail)


def _dig(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _first(*values: Any) -> Any:
    for v in values:
        if v is not None and v != "":
            return v
    return None


def _epoch_seconds_to_iso(value: Any) -> Any:
    """``created`` / ``startTime`` are defined in seconds by their formats; anything else is passed on."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    try:
        return datetime.fromtimestamp(value, UTC).isoformat()
    except (OverflowError, OSError, ValueError):
        return str(value)  # left for validation to reject as a bad timestamp


def content_text(content: Any) -> str | None:
    """Text of a message's content: a string, or the text blocks of a list of parts.

    Covers OpenAI content parts ``{"type": "text", "text": ...}``, Anthropic content
    blocks (same shape; a ``tool_result`` block contributes its own text) and OTel
    GenAI parts ``{"type": "text", "content": ...}``.
    """
    if content is None:
        return None
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        content = [content]
    if not isinstance(content, list):
        return None
    texts: list[str] = []
    results: list[str] = []
    for part in content:
        if isinstance(part, str):
            texts.append(part)
        elif isinstance(part, dict):
            kind = part.get("type", "text")
            if kind == "text":
                text = part.get("text", part.get("content"))
                if isinstance(text, str):
                    texts.append(text)
            elif kind in ("tool_result", "tool_call_response"):
                inner = content_text(part.get("content", part.get("result")))
                if inner:
                    results.append(inner)
    if texts:
        return "\n".join(texts)
    if results:
        return "\n".join(results)
    return None


def _last_user_text(messages: list[Any], parts_key: str = "content") -> str | None:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return content_text(message.get(parts_key))
    return None


def _system_text(messages: list[Any], parts_key: str = "content") -> str | None:
    texts = [
        content_text(m.get(parts_key))
        for m in messages
        if isinstance(m, dict) and m.get("role") in ("system", "developer")
    ]
    texts = [t for t in texts if t]
    return "\n\n".join(texts) if texts else None


def _response_text(response: Any) -> str | None:
    if not isinstance(response, dict):
        return response if isinstance(response, str) else None
    choices = response.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        message = choices[0].get("message")
        if isinstance(message, dict):
            return content_text(message.get("content"))
        text = choices[0].get("text")  # legacy completions
        return text if isinstance(text, str) else None
    if "content" in response:  # Anthropic Messages
        return content_text(response.get("content"))
    return None


def chat_record(obj: dict[str, Any]) -> Record:
    """One chat request log (OpenAI, Anthropic or LiteLLM style) -> one exchange."""
    request = obj.get("request") if isinstance(obj.get("request"), dict) else obj
    response = obj.get("response")
    messages = request.get("messages")
    if not isinstance(messages, list):
        raise AdapterError("messages", "no `messages` list (top level or under `request`)")
    usage = _first(_dig(response, "usage"), obj.get("usage"))
    usage = usage if isinstance(usage, dict) else {}
    meta = _first(obj.get("metadata"), request.get("metadata"))
    meta = meta if isinstance(meta, dict) else {}
    headers = obj.get("headers") if isinstance(obj.get("headers"), dict) else {}
    lower_headers = {str(k).lower(): v for k, v in headers.items()}

    system = request.get("system")  # Anthropic: a string or a list of text blocks
    system_text = content_text(system) if system is not None else _system_text(messages)
    tools = request.get("tools")

    record: Record = {k: obj.get(k) for k in PASSTHROUGH if obj.get(k) is not None}
    record["request_id"] = _first(obj.get("request_id"), obj.get("id"), _dig(response, "id"))
    record["account_id"] = _first(
        obj.get("account_id"),
        request.get("user"),  # OpenAI `user`
        meta.get("user_id"),  # Anthropic `metadata.user_id`
        meta.get("user_api_key_user_id"),  # LiteLLM StandardLoggingPayload
        obj.get("user"),
    )
    record["ts"] = _first(
        obj.get("ts"),
        obj.get("timestamp"),
        _epoch_seconds_to_iso(obj.get("startTime")),
        _epoch_seconds_to_iso(_dig(response, "created")),
        _epoch_seconds_to_iso(obj.get("created")),
    )
    record["ip"] = _first(
        obj.get("ip"), obj.get("client_ip"), obj.get("requester_ip_address"), obj.get("remote_addr")
    )
    record["prompt"] = _last_user_text(messages)
    record["system"] = system_text
    record["response"] = _response_text(response)
    record["model"] = _first(request.get("model"), _dig(response, "model"), obj.get("model"))
    record["input_tokens"] = _first(
        usage.get("prompt_tokens"), usage.get("input_tokens"), obj.get("prompt_tokens")
    )
    record["output_tokens"] = _first(
        usage.get("completion_tokens"), usage.get("output_tokens"), obj.get("completion_tokens")
    )
    # The request's shape is known here, so "no tools key" means no tools were sent.
    record["n_tools"] = len(tools) if isinstance(tools, list) else (0 if tools is None else tools)
    record["conversation_id"] = _first(
        obj.get("conversation_id"), obj.get("session_id"), meta.get("conversation_id")
    )
    record["user_agent"] = _first(obj.get("user_agent"), lower_headers.get("user-agent"))
    record["api_key_id"] = _first(obj.get("api_key_id"), meta.get("user_api_key_hash"))
    record["org_id"] = _first(obj.get("org_id"), meta.get("user_api_key_org_id"))
    return record


# --- OpenTelemetry (OTLP JSON) ------------------------------------------------------


def _otlp_value(value: Any) -> Any:
    """Decode an OTLP JSON AnyValue (int64 travels as a string in OTLP JSON)."""
    if not isinstance(value, dict):
        return None
    if "stringValue" in value:
        return value["stringValue"]
    if "intValue" in value:
        try:
            return int(value["intValue"])
        except (TypeError, ValueError):
            return value["intValue"]
    if "doubleValue" in value:
        return value["doubleValue"]
    if "boolValue" in value:
        return value["boolValue"]
    if "arrayValue" in value:
        return [_otlp_value(v) for v in (value["arrayValue"] or {}).get("values", []) or []]
    if "kvlistValue" in value:
        return _otlp_attributes((value["kvlistValue"] or {}).get("values", []))
    return None


def _otlp_attributes(items: Any) -> dict[str, Any]:
    if not isinstance(items, list):
        return {}
    out: dict[str, Any] = {}
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("key"), str):
            out[item["key"]] = _otlp_value(item.get("value"))
    return out


def _json_attr(value: Any) -> Any:
    """Structured GenAI attributes are often exported as a JSON string."""
    if isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _legacy_indexed(attrs: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    """OpenLLMetry-style ``gen_ai.prompt.0.role`` / ``gen_ai.prompt.0.content`` as a message list."""
    found: dict[int, dict[str, Any]] = {}
    for key, value in attrs.items():
        if not key.startswith(prefix):
            continue
        index, _, leaf = key[len(prefix) :].partition(".")
        if index.isdigit() and leaf in ("role", "content"):
            found.setdefault(int(index), {})[leaf] = value
    return [found[i] for i in sorted(found)]


def _unix_nano_to_iso(value: Any) -> Any:
    try:
        nanos = int(value)
    except (TypeError, ValueError):
        return value
    if nanos <= 0:
        return str(value)  # epoch 0 is "unset" in OTLP; let validation quarantine it
    seconds, rest = divmod(nanos, 1_000_000_000)
    try:
        return datetime.fromtimestamp(seconds, UTC).replace(microsecond=rest // 1000).isoformat()
    except (OverflowError, OSError, ValueError):
        return str(value)


def is_genai_span(attrs: dict[str, Any]) -> bool:
    return any(key.startswith("gen_ai.") for key in attrs)


def otel_span_record(span: dict[str, Any], resource: dict[str, Any]) -> Record:
    """One GenAI span -> one exchange.  Span attributes override resource attributes."""
    attrs = {**resource, **_otlp_attributes(span.get("attributes"))}
    inputs = _json_attr(attrs.get("gen_ai.input.messages"))
    if not isinstance(inputs, list):
        inputs = _legacy_indexed(attrs, "gen_ai.prompt.")
    outputs = _json_attr(attrs.get("gen_ai.output.messages"))
    if not isinstance(outputs, list):
        outputs = _legacy_indexed(attrs, "gen_ai.completion.")
    parts_key = "parts" if any(isinstance(m, dict) and "parts" in m for m in inputs) else "content"
    system = _json_attr(attrs.get("gen_ai.system_instructions"))
    tools = _json_attr(attrs.get("gen_ai.tool.definitions"))
    trace_id, span_id = span.get("traceId"), span.get("spanId")
    response_text = None
    for message in outputs:
        if isinstance(message, dict):
            key = "parts" if "parts" in message else "content"
            response_text = content_text(message.get(key))
            break
    return {
        "request_id": _first(
            attrs.get("gen_ai.response.id"), f"{trace_id}-{span_id}" if trace_id and span_id else None
        ),
        "account_id": _first(attrs.get("user.id"), attrs.get("enduser.id"), attrs.get("gen_ai.user.id")),
        "ts": _unix_nano_to_iso(span.get("startTimeUnixNano")),
        "ip": _first(
            attrs.get("client.address"), attrs.get("network.peer.address"), attrs.get("net.sock.peer.addr")
        ),
        "prompt": _last_user_text(inputs, parts_key),
        "system": content_text(system) if system is not None else _system_text(inputs, parts_key),
        "response": response_text,
        "model": _first(attrs.get("gen_ai.request.model"), attrs.get("gen_ai.response.model")),
        "input_tokens": _first(
            attrs.get("gen_ai.usage.input_tokens"), attrs.get("gen_ai.usage.prompt_tokens")
        ),
        "output_tokens": _first(
            attrs.get("gen_ai.usage.output_tokens"), attrs.get("gen_ai.usage.completion_tokens")
        ),
        "n_tools": len(tools) if isinstance(tools, list) else None,
        "conversation_id": attrs.get("gen_ai.conversation.id"),
        "user_agent": attrs.get("user_agent.original"),
        "api_key_id": attrs.get("distillwatch.api_key_id"),
        "org_id": _first(attrs.get("distillwatch.org_id"), attrs.get("organization.id")),
    }


def otel_spans(doc: dict[str, Any]) -> Iterator[tuple[int, dict[str, Any] | None]]:
    """Every span of an OTLP ExportTraceServiceRequest: (index, record or None if not GenAI)."""
    resource_spans = doc.get("resourceSpans")
    if not isinstance(resource_spans, list):
        raise AdapterError("resourceSpans", "no `resourceSpans` list")
    index = 0
    for rs in resource_spans:
        if not isinstance(rs, dict):
            continue
        resource = _otlp_attributes(_dig(rs, "resource", "attributes"))
        for ss in rs.get("scopeSpans") or []:
            if not isinstance(ss, dict):
                continue
            for span in ss.get("spans") or []:
                index += 1
                if not isinstance(span, dict):
                    yield index, None
                    continue
                attrs = _otlp_attributes(span.get("attributes"))
                yield index, (otel_span_record(span, resource) if is_genai_span(attrs) else None)
