"""Chat request logs (OpenAI, Anthropic, LiteLLM) and OTel GenAI spans onto the contract."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from distillwatch.ingest import UnreadableInputError, ingest
from distillwatch.ingest.sources import resolve, sniff_adapter
from tests.ingest.ingest_helpers import FIXTURES, accepted, assert_adds_up, options, quarantine_rows


def test_openai_and_litellm_chat_logs(tmp_path: Path) -> None:
    result = ingest(FIXTURES / "chat_openai.jsonl", work_dir=tmp_path, options=options())
    assert_adds_up(result)
    rows = {r["request_id"]: r for r in accepted(result)}
    first = rows["chatcmpl-9x1AbC"]
    assert first["account_id"] == "acct_1042"  # request.user
    assert first["prompt"] == "Now explain its complexity step by step."  # the last user turn, content parts
    assert first["system"] == "You are a senior software engineer."
    assert first["response"] == "The merge walks both lists once, so it is O(n + m)."
    assert (first["input_tokens"], first["output_tokens"], first["n_tools"]) == (61, 17, 1)
    assert first["user_agent"] == "openai-python/1.40.0"
    assert first["ts"].isoformat() == "2026-04-22T09:14:03.512000+00:00"
    second = rows["chatcmpl-9x1AbD"]
    assert second["system"] == "Answer tersely."  # developer role counts as system
    assert second["ip"] == "2001:db8::1"
    assert second["ts"].isoformat() == "2026-04-22T09:15:00+00:00"  # from response.created (seconds)
    assert second["n_tools"] == 0
    litellm = rows["chatcmpl-litellm-1"]
    assert (litellm["account_id"], litellm["api_key_id"], litellm["org_id"]) == (
        "acct_3307",
        "88ab1f",
        "org-beta",
    )
    assert litellm["ip"] == "198.51.100.4"
    q = quarantine_rows(result)
    assert [(r["row"], r["reason"], r["field"]) for r in q] == [(4, "unmappable_record", "messages")]


def test_anthropic_chat_logs(tmp_path: Path) -> None:
    result = ingest(FIXTURES / "chat_anthropic.jsonl", work_dir=tmp_path, options=options())
    assert_adds_up(result)
    rows = {r["request_id"]: r for r in accepted(result)}
    a = rows["req_011CXa"]
    assert a["account_id"] == "acct_5120"  # metadata.user_id
    assert a["system"] == "You are an expert competitive programmer.\nThink step by step before answering."
    assert a["prompt"] == "[1, 3, 5]"  # the last user turn holds only a tool_result
    assert a["response"] == "Patience sorting gives O(n log n): keep tails..."  # text blocks, not thinking
    assert (a["input_tokens"], a["output_tokens"], a["n_tools"]) == (412, 230, 2)
    assert rows["req_011CXb"]["system"] == "Be brief."


def test_otel_genai_spans(tmp_path: Path) -> None:
    result = ingest(FIXTURES / "otel_genai.jsonl", work_dir=tmp_path, options=options())
    assert_adds_up(result)
    c = result.counts["exchanges"]
    assert (c["read"], c["accepted"], c["ignored_spans"]) == (3, 2, 1)  # the HTTP span is not an exchange
    rows = {r["request_id"]: r for r in accepted(result)}
    s = rows["chatcmpl-otel-1"]
    assert s["account_id"] == "acct_7781"
    assert s["ip"] == "2001:db8::ab1"
    assert s["ts"].isoformat() == "2026-04-22T10:00:00.123456+00:00"
    assert s["prompt"] == "Prove that sqrt(2) is irrational, showing every step."
    assert s["system"] == "You are a careful reasoning assistant."
    assert s["response"] == "Assume sqrt(2) = p/q in lowest terms..."
    assert (s["model"], s["input_tokens"], s["output_tokens"], s["n_tools"]) == ("gpt-4o", 97, 52, 1)
    assert s["conversation_id"] == "conv_5j66UpCpwteGg4YSxUnt7lPY"
    legacy = rows["0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331"]  # no response id: trace-span
    assert (legacy["account_id"], legacy["prompt"], legacy["system"]) == (
        "acct_7782",
        "Name three sorting algorithms.",
        "You are terse.",
    )
    assert (legacy["input_tokens"], legacy["output_tokens"]) == (30, 8)
    q = quarantine_rows(result)
    assert [(r["row"], r["reason"], r["field"]) for r in q] == [(2, "missing_required", "account_id")]


def test_otel_single_document(tmp_path: Path) -> None:
    result = ingest(FIXTURES / "otel_genai.json", work_dir=tmp_path, options=options())
    assert_adds_up(result)
    assert [r["request_id"] for r in accepted(result)] == ["chatcmpl-otel-1"]


@pytest.mark.parametrize(
    ("name", "shape"),
    [
        ("chat_openai.jsonl", "chat"),
        ("chat_anthropic.jsonl", "chat"),
        ("otel_genai.jsonl", "otel"),
        ("otel_genai.json", "otel"),
        ("hostile.jsonl", "contract"),
        ("hostile.csv", "contract"),
    ],
)
def test_auto_sniffs_the_shape(name: str, shape: str) -> None:
    assert sniff_adapter(resolve(FIXTURES / name)[0]) == shape


def test_forced_adapter(tmp_path: Path) -> None:
    # Contract records read with the chat adapter have no messages: quarantined, not lost.
    result = ingest(FIXTURES / "hostile.jsonl", work_dir=tmp_path / "a", options=options(adapter="chat"))
    assert_adds_up(result)
    assert result.counts["exchanges"]["accepted"] == 0
    with pytest.raises(UnreadableInputError, match="reads JSON"):
        ingest(FIXTURES / "hostile.csv", work_dir=tmp_path / "b", options=options(adapter="otel"))


def test_chat_adapter_hostile_shapes(tmp_path: Path) -> None:
    lines = [
        {"id": "1", "request": {"user": "u", "messages": "not a list"}},
        {
            "id": "2",
            "request": {"user": "u", "messages": [{"role": "user", "content": {"weird": True}}]},
            "ip": "10.0.0.1",
            "ts": "2026-04-22T00:00:00Z",
        },
        {
            "id": "3",
            "request": {"user": ["u"], "messages": []},
            "ip": "10.0.0.1",
            "ts": "2026-04-22T00:00:00Z",
        },
        {
            "id": "4",
            "request": {
                "user": "u",
                "messages": [None, 5, {"role": "user", "content": [None, {"type": "text", "text": 7}]}],
                "tools": "many",
            },
            "ip": "10.0.0.1",
            "ts": "2026-04-22T00:00:00Z",
        },
        {"id": "5", "created": 1e30, "request": {"user": "u", "messages": []}, "ip": "10.0.0.1"},
    ]
    path = tmp_path / "c.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    result = ingest(path, work_dir=tmp_path / "o", options=options(adapter="chat"))
    assert_adds_up(result)
    reasons = {r["row"]: r["reason"] for r in quarantine_rows(result)}
    assert reasons == {1: "unmappable_record", 3: "wrong_type", 4: "wrong_type", 5: "bad_timestamp"}
    assert [r["request_id"] for r in accepted(result)] == ["2"]


def test_otel_structured_any_value_messages() -> None:
    from distillwatch.ingest.adapters import otel_span_record

    def kv(key: str, value: dict) -> dict:
        return {"key": key, "value": value}

    def text_part(text: str) -> dict:
        return {
            "kvlistValue": {
                "values": [kv("type", {"stringValue": "text"}), kv("content", {"stringValue": text})]
            }
        }

    def message(role: str, text: str) -> dict:
        return {
            "kvlistValue": {
                "values": [
                    kv("role", {"stringValue": role}),
                    kv("parts", {"arrayValue": {"values": [text_part(text)]}}),
                ]
            }
        }

    span = {
        "traceId": "t",
        "spanId": "s",
        "startTimeUnixNano": "1776852000000000000",
        "attributes": [
            kv("gen_ai.operation.name", {"stringValue": "chat"}),
            kv(
                "gen_ai.input.messages",
                {
                    "arrayValue": {
                        "values": [
                            message("system", "Be exact."),
                            message("user", "first"),
                            message("assistant", "ok"),
                            message("user", "second"),
                        ]
                    }
                },
            ),
            kv("gen_ai.usage.input_tokens", {"intValue": "12"}),
            kv("gen_ai.usage.output_tokens", {"doubleValue": 3.0}),
        ],
    }
    record = otel_span_record(span, {"user.id": "from-resource", "client.address": "10.0.0.9"})
    assert record["prompt"] == "second"
    assert record["system"] == "Be exact."
    assert record["request_id"] == "t-s"
    assert (record["account_id"], record["ip"]) == ("from-resource", "10.0.0.9")
    assert (record["input_tokens"], record["output_tokens"]) == (12, 3.0)
    assert record["ts"] == "2026-04-22T10:00:00+00:00"
