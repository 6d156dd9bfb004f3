"""Every input format yields the same contract table; typed Parquet columns are normalised."""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from distillwatch import contract
from distillwatch.ingest import ingest
from tests.ingest.ingest_helpers import accepted, assert_adds_up, options


def _records(n: int, seed: int = 7) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        out.append(
            {
                "request_id": f"req-{i:05d}",
                "account_id": f"acct-{int(rng.integers(0, 20))}",
                "ts": f"2026-04-{22 + i % 5:02d}T{i % 24:02d}:{i % 60:02d}:00Z",
                "ip": f"203.0.113.{int(rng.integers(1, 255))}" if i % 3 else "2001:DB8::00%02x" % (i % 200),
                "prompt": f'prompt {i} with, comma and "quote"',
                "model": "m-1",
                "input_tokens": int(rng.integers(1, 5000)),
                "output_tokens": int(rng.integers(1, 5000)),
                "n_tools": int(i % 4),
                "country": "FR",
                "asn": 64496,
            }
        )
    return out


def _write_all(records: list[dict], folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    lines = "".join(json.dumps(r) + "\n" for r in records)
    paths["jsonl"] = folder / "e.jsonl"
    paths["jsonl"].write_text(lines)
    paths["jsonl.gz"] = folder / "e.jsonl.gz"
    paths["jsonl.gz"].write_bytes(gzip.compress(lines.encode()))
    paths["csv"] = folder / "e.csv"
    with open(paths["csv"], "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(records[0]))
        w.writeheader()
        w.writerows(records)
    table = pa.Table.from_pylist(records)
    paths["parquet"] = folder / "e.parquet"
    pq.write_table(table, paths["parquet"], row_group_size=97)
    (folder / "dir").mkdir()
    half = len(records) // 2
    pq.write_table(table.slice(0, half), folder / "dir" / "part-0.parquet")
    pq.write_table(table.slice(half), folder / "dir" / "part-1.parquet")
    paths["dir"] = folder / "dir"
    return paths


def test_all_formats_agree(tmp_path: Path) -> None:
    records = _records(600)
    paths = _write_all(records, tmp_path / "in")
    tables = {}
    for kind, path in paths.items():
        # Small batches and blocks so every reader crosses batch boundaries.
        result = ingest(
            path, work_dir=tmp_path / kind, options=options(batch_rows=128, json_block_bytes=4096)
        )
        assert_adds_up(result)
        assert result.counts["exchanges"]["accepted"] == 600, kind
        schema = pq.read_schema(result.exchanges_path)
        assert schema.equals(contract.EXCHANGES_SCHEMA), kind
        tables[kind] = pq.read_table(result.exchanges_path)
    reference = tables.pop("parquet")
    for kind, table in tables.items():
        assert table.equals(reference), kind
    row = reference.to_pylist()[0]
    assert row["ip"] == "2001:db8::"  # canonical IPv6
    assert row["ts"] == datetime(2026, 4, 22, 0, 0, tzinfo=UTC)


def test_jsonl_row_numbers_survive_blocks_and_blank_lines(tmp_path: Path) -> None:
    lines = []
    for i in range(300):
        lines.append(
            json.dumps(
                {
                    "request_id": str(i),
                    "account_id": "a",
                    "ts": "2026-04-22T00:00:00Z",
                    "ip": "10.0.0.1" if i % 50 else "bad",
                }
            )
        )
        if i % 7 == 0:
            lines.append("")
    path = tmp_path / "e.jsonl"
    path.write_text("\r\n".join(lines) + "\r\n")
    result = ingest(path, work_dir=tmp_path / "o", options=options(json_block_bytes=2048))
    assert_adds_up(result)
    bad_lines = sorted(r["row"] for r in pq.read_table(result.quarantine_path).to_pylist())
    expected = [n + 1 for n, text in enumerate(lines) if '"ip": "bad"' in text]
    assert bad_lines == expected


def test_typed_parquet_columns(tmp_path: Path) -> None:
    n = 6
    table = pa.table(
        {
            "request_id": pa.array(range(n), pa.int64()),  # numeric ids: unambiguous as text
            "account_id": ["a"] * n,
            "ts": pa.array(
                [1_776_000_000_000_000_000 + i for i in range(n)], pa.timestamp("ns")
            ),  # naive: UTC
            "ip": ["10.0.0.1"] * n,
            "input_tokens": pa.array([1.0, 2.0, 2.5, None, float("nan"), -1.0]),
            "output_tokens": pa.array([1, 2, 3, 4, 5, 2**64 - 1], pa.uint64()),
            "n_tools": pa.array([0, 1, 2, 3, 4, 5], pa.int8()),
            "prompt": pa.array([b"ok", b"\xff bad", b"ok", b"ok", b"ok", b"ok"], pa.binary()),
            "model": pa.array(["m1", "m2"] * 3).dictionary_encode(),  # pandas category columns
            "user_agent": pa.array(["ua"] * n, pa.string_view()),
        }
    )
    pq.write_table(table, tmp_path / "t.parquet")
    result = ingest(tmp_path / "t.parquet", work_dir=tmp_path / "o", options=options())
    assert_adds_up(result)
    got = {r["request_id"]: r for r in accepted(result)}
    assert sorted(got) == ["0", "3"]
    assert got["0"]["input_tokens"] == 1 and got["3"]["input_tokens"] is None
    assert (got["3"]["model"], got["3"]["user_agent"]) == ("m2", "ua")
    assert got["0"]["ts"] == datetime(2026, 4, 12, 13, 20, tzinfo=UTC)
    reasons = {(r["row"], r["field"], r["reason"]) for r in pq.read_table(result.quarantine_path).to_pylist()}
    assert reasons == {
        (2, "prompt", "invalid_utf8"),
        (3, "input_tokens", "wrong_type"),
        (5, "input_tokens", "wrong_type"),
        (6, "output_tokens", "out_of_range"),
    }


def test_timestamp_with_zone_and_epoch_numbers(tmp_path: Path) -> None:
    table = pa.table(
        {
            "request_id": ["1", "2"],
            "account_id": ["a", "a"],
            "ts": pa.array([1_776_000_000, 1_776_000_001], pa.int64()),  # epoch numbers: ambiguous unit
            "ip": ["10.0.0.1", "10.0.0.1"],
        }
    )
    pq.write_table(table, tmp_path / "epoch.parquet")
    result = ingest(tmp_path / "epoch.parquet", work_dir=tmp_path / "o", options=options())
    assert result.counts["exchanges"]["by_reason"] == {"bad_timestamp": 2}
    zoned = table.set_column(2, "ts", pa.array([0, 0], pa.timestamp("ms", tz="Asia/Tokyo")))
    pq.write_table(zoned, tmp_path / "zoned.parquet")
    # epoch 0 in any zone is still epoch 0
    result = ingest(tmp_path / "zoned.parquet", work_dir=tmp_path / "o2", options=options())
    assert result.counts["exchanges"]["by_reason"] == {"timestamp_out_of_range": 2}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2001:DB8::0001", "2001:db8::1"),
        ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
        (" 192.0.2.1 ", "192.0.2.1"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
        ("192.0.2.256", None),
        ("192.000.002.001", None),  # leading zeros: octal or decimal? refused
        ("1.2.3.4:443", None),
        ("", None),
        ("=cmd|' /C calc'!A0", None),
    ],
)
def test_canonical_ip(value: str, expected: str | None) -> None:
    from distillwatch.ingest import canonical_ip

    assert canonical_ip(value) == expected


def test_duplicates_across_files_of_a_directory(tmp_path: Path) -> None:
    records = _records(10)
    (tmp_path / "d").mkdir()
    pq.write_table(pa.Table.from_pylist(records), tmp_path / "d" / "a.parquet")
    pq.write_table(pa.Table.from_pylist(records[3:5]), tmp_path / "d" / "b.parquet")
    result = ingest(tmp_path / "d", work_dir=tmp_path / "o", options=options())
    assert_adds_up(result)
    q = pq.read_table(result.quarantine_path).to_pylist()
    assert [(Path(r["source"]).name, r["row"]) for r in q] == [("b.parquet", 1), ("b.parquet", 2)]
    assert "a.parquet:4" in q[0]["detail"]
    assert [r["request_id"] for r in accepted(result)] == [r["request_id"] for r in records]


def test_rerun_on_a_directory_does_not_read_its_own_outputs(tmp_path: Path) -> None:
    pq.write_table(pa.Table.from_pylist(_records(5)), tmp_path / "e.parquet")
    first = ingest(tmp_path, work_dir=tmp_path, options=options())
    again = ingest(tmp_path, work_dir=tmp_path, options=options())
    assert first.counts == again.counts
    assert again.counts["exchanges"]["read"] == 5


def test_sparse_bad_lines_are_isolated_by_halving_blocks(tmp_path: Path) -> None:
    lines = []
    for i in range(2000):
        rec = {
            "request_id": str(i),
            "account_id": "a",
            "ts": "2026-04-22T00:00:00Z",
            "ip": "10.0.0.1",
            "input_tokens": i,
        }
        text = json.dumps(rec)
        if i % 97 == 5:
            text = text[:-3]  # cut off: malformed
        elif i % 89 == 7:
            text = text.replace(f'"input_tokens": {i}', '"input_tokens": "7"')  # type changes mid-block
        lines.append(text)
    path = tmp_path / "e.jsonl"
    path.write_text("\n".join(lines) + "\n")
    result = ingest(path, work_dir=tmp_path / "o", options=options(json_block_bytes=1 << 16))
    assert_adds_up(result)
    bad = sorted(r["row"] for r in pq.read_table(result.quarantine_path).to_pylist())
    assert bad == [i + 1 for i in range(2000) if i % 97 == 5]
    got = accepted(result)
    assert len(got) == 2000 - len(bad)
    assert [r["input_tokens"] for r in got if r["request_id"] == "7"] == [7]


def test_templated_text_read_as_dictionary_gives_the_same_rows(tmp_path: Path) -> None:
    from distillwatch.ingest.readers import _dictionary_encoded

    n = 5000
    prompts = ["explain step by step " * 20, "a\x00b", "y" * 300]
    table = pa.table(
        {
            "request_id": [f"r{i}" for i in range(n)],
            "account_id": ["a"] * n,
            "ts": pa.array([1_776_000_000] * n, pa.timestamp("s", tz="UTC")),
            "ip": ["10.0.0.1"] * n,
            "prompt": [prompts[i % 3] for i in range(n)],
            "response": [hashlib.sha256(str(i).encode()).hexdigest() for i in range(n)],  # distinct
        }
    )
    pq.write_table(table, tmp_path / "t.parquet")
    assert _dictionary_encoded(pq.ParquetFile(tmp_path / "t.parquet"), ["prompt", "response"]) == ["prompt"]
    result = ingest(tmp_path / "t.parquet", work_dir=tmp_path / "o", options=options(max_text_chars=200))
    assert_adds_up(result)
    got = pq.read_table(result.exchanges_path)
    assert got.schema.equals(contract.EXCHANGES_SCHEMA)
    assert got["prompt"].to_pylist()[:3] == [prompts[0][:200], "ab", "y" * 200]
    assert got["response"].to_pylist() == table["response"].to_pylist()
    c = result.counts["exchanges"]
    assert c["nul_stripped"] == {"prompt": 1667} and c["truncated"]["prompt"] == 3333


def test_parquet_string_column_with_invalid_utf8(tmp_path: Path) -> None:
    # Some writers do not validate UTF-8: build such a string column from raw buffers.
    data = b"ok\xffbadfine"
    offsets = np.array([0, 2, 6, 10], dtype=np.int32)
    prompt = pa.Array.from_buffers(
        pa.string(), 3, [None, pa.py_buffer(offsets.tobytes()), pa.py_buffer(data)]
    )
    table = pa.table(
        {
            "request_id": ["1", "2", "3"],
            "account_id": ["a"] * 3,
            "ts": pa.array([1_776_000_000] * 3, pa.timestamp("s")),
            "ip": ["10.0.0.1"] * 3,
            "prompt": prompt,
        }
    )
    pq.write_table(table, tmp_path / "t.parquet")
    result = ingest(tmp_path / "t.parquet", work_dir=tmp_path / "o", options=options())
    assert_adds_up(result)
    q = pq.read_table(result.quarantine_path).to_pylist()
    assert [(r["row"], r["field"], r["reason"]) for r in q] == [(2, "prompt", "invalid_utf8")]
    assert "\ufffd" in q[0]["raw"]
    assert [r["prompt"] for r in accepted(result)] == ["ok", "fine"]
