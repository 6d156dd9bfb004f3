"""Property-based tests: whatever the bytes, readers never crash and the accounting adds up."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from distillwatch.ingest import UnreadableInputError, canonical_ip, ingest
from tests.ingest.ingest_helpers import assert_adds_up, options

SETTINGS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])

FIELDS = ["request_id", "account_id", "ts", "ip", "prompt", "input_tokens", "n_tools", "country", "extra"]
# Text includes lone surrogates and control characters: valid JSON escapes, hostile text.
odd_text = st.text(st.characters(categories=["Cs", "Cc", "Ll", "So"]), max_size=6)
json_scalars = (
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=20) | odd_text
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
plausible = st.sampled_from(
    [
        "r1",
        "a",
        "2026-04-22T00:00:00Z",
        "2026-04-22 01:00:00+05:30",
        "10.0.0.1",
        "2001:DB8::1",
        "12",
        "12.5",
        "-3",
        "US",
        "",
        " ",
    ]
)
records = st.dictionaries(st.sampled_from(FIELDS), plausible | json_values, max_size=len(FIELDS))


def _run(path: Path, **kw: object) -> None:
    with tempfile.TemporaryDirectory() as out:
        try:
            result = ingest(path, work_dir=out, options=options(json_block_bytes=1024, batch_rows=7, **kw))
        except UnreadableInputError as e:
            assert str(path) in str(e)
            return
        assert_adds_up(result)


@SETTINGS
@given(data=st.binary(max_size=3000), suffix=st.sampled_from([".jsonl", ".csv", ".json"]))
def test_any_bytes_never_crash(data: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"in{suffix}"
        path.write_bytes(data)
        _run(path)


@settings(SETTINGS, max_examples=25)
@given(data=st.binary(max_size=2000))
def test_any_bytes_after_a_valid_header_never_crash(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "in.csv"
        path.write_bytes(b"request_id,account_id,ts,ip,prompt\n" + data)
        _run(path)
        path = Path(d) / "in.jsonl"
        path.write_bytes(b'{"request_id": "x"}\n' + data)
        _run(path)


@settings(SETTINGS, max_examples=35)
@given(rows=st.lists(records, max_size=30), adapter=st.sampled_from(["contract", "chat", "otel"]))
def test_any_json_objects_add_up(rows: list[dict], adapter: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "in.jsonl"
        path.write_text("{}\n" + "".join(json.dumps(r) + "\n" for r in rows))
        _run(path, adapter=adapter)


@SETTINGS
@given(value=st.text(max_size=50) | st.ip_addresses().map(str))
def test_canonical_ip_is_idempotent(value: str) -> None:
    canon = canonical_ip(value)
    if canon is not None:
        assert canonical_ip(canon) == canon
        assert canon == canon.lower()
