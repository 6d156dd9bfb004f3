"""The hostile fixture set: every bad record is quarantined with its reason, row and field."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from distillwatch import contract
from distillwatch.ingest import UnreadableInputError, ingest
from tests.ingest.ingest_helpers import FIXTURES, accepted, assert_adds_up, options, quarantine_rows

INJECTION = "=cmd|' /C calc'!A0"


def _by_row(result) -> dict[int, tuple[str | None, str]]:
    return {r["row"]: (r["field"], r["reason"]) for r in quarantine_rows(result) if r["table"] == "exchanges"}


def test_hostile_jsonl_every_line_accounted(tmp_path: Path) -> None:
    result = ingest(FIXTURES / "hostile.jsonl", work_dir=tmp_path, options=options())
    assert_adds_up(result)
    assert _by_row(result) == {
        4: (None, "malformed_json"),  # truncated object
        5: (None, "malformed_json"),  # an array, not an object
        6: ("ip", "bad_ip"),
        7: ("ts", "timestamp_out_of_range"),  # epoch 0
        8: ("ts", "timestamp_out_of_range"),  # year 2999
        9: ("ts", "bad_timestamp"),
        10: ("account_id", "missing_required"),
        11: ("input_tokens", "wrong_type"),  # "12.5"
        12: ("n_tools", "wrong_type"),  # a list
        13: ("request_id", "duplicate_request_id"),  # the first (line 1) is kept
        15: ("output_tokens", "out_of_range"),
        16: ("country", "bad_value"),
        17: (None, "invalid_utf8"),
        18: (None, "malformed_json"),  # a raw NUL byte inside a JSON string is not JSON
    }
    c = result.counts["exchanges"]
    assert (c["read"], c["accepted"]) == (17, 3)  # the blank line 14 is not a record
    rows = {r["request_id"]: r for r in accepted(result)}
    assert rows["r-0001"]["account_id"] == "acct_1"  # first occurrence kept
    assert rows["r-0001"]["country"] == "US"
    assert rows["r-0002"]["ip"] == "2001:db8::1"
    assert rows["r-0002"]["prompt"] == INJECTION  # data, verbatim
    assert rows["r-0002"]["input_tokens"] == 12  # "12" coerced
    assert rows["r-0002"]["ts"].isoformat() == "2026-04-22T09:00:00+00:00"  # +02:00 converted
    assert rows["r-0003"]["ts"].isoformat() == "2026-04-22T09:30:00+00:00"  # naive read as UTC
    assert rows["r-0003"]["ip"] == "192.0.2.1"  # IPv4-mapped IPv6
    assert rows["r-0003"]["prompt"] == "nulinside"  # escaped NUL stripped
    assert rows["r-0003"]["input_tokens"] == 7  # 7.0 is unambiguous
    assert c["nul_stripped"] == {"prompt": 1}


def test_quarantine_keeps_source_and_bounded_raw(tmp_path: Path) -> None:
    result = ingest(FIXTURES / "hostile.jsonl", work_dir=tmp_path, options=options(raw_max_chars=64))
    rows = quarantine_rows(result)
    assert {r["source"] for r in rows} == {str(FIXTURES / "hostile.jsonl")}
    assert all(len(r["raw"]) <= 64 + len("... [99999 more chars]") for r in rows)
    assert all(r["detail"] for r in rows)
    assert pq.read_schema(result.quarantine_path).names == [
        "table",
        "source",
        "row",
        "field",
        "reason",
        "detail",
        "raw",
    ]


def test_hostile_csv(tmp_path: Path) -> None:
    result = ingest(FIXTURES / "hostile.csv", work_dir=tmp_path, options=options())
    assert_adds_up(result)
    assert _by_row(result) == {
        5: (None, "bad_csv_row"),  # missing columns
        7: (None, "invalid_utf8"),
        8: ("ts", "timestamp_out_of_range"),
        9: ("account_id", "missing_required"),
        10: ("ip", "bad_ip"),
        11: ("input_tokens", "wrong_type"),
        13: (None, "bad_csv_row"),  # too many fields
        14: ("request_id", "duplicate_request_id"),
    }
    rows = {r["request_id"]: r for r in accepted(result)}
    assert rows["c-2"]["prompt"] == "a prompt\r\nspanning, two lines"  # quoted newline kept
    assert rows["c-2"]["ts"].isoformat() == "2026-04-22T14:00:00+00:00"  # -05:00 converted
    assert rows["c-4"]["prompt"] == INJECTION
    assert rows["c-4"]["input_tokens"] is None  # empty cell is null
    assert result.counts["exchanges"]["read"] == 11  # the blank line is not a record


def test_accounts_table(tmp_path: Path) -> None:
    result = ingest(
        FIXTURES / "hostile.csv", accounts=FIXTURES / "accounts.csv", work_dir=tmp_path, options=options()
    )
    assert_adds_up(result)
    assert pq.read_schema(result.accounts_path).equals(contract.ACCOUNTS_SCHEMA)
    rows = {r["account_id"]: r for r in accepted(result, "accounts")}
    assert set(rows) == {"acct_1", "acct_2", "acct_3"}
    assert rows["acct_1"]["email"] == "alice@example.com"  # first of the duplicates kept
    assert rows["acct_2"]["signup_ip"] == "2001:db8::2"
    q = {(r["row"], r["reason"]) for r in quarantine_rows(result) if r["table"] == "accounts"}
    assert q == {(5, "bad_timestamp"), (6, "bad_ip"), (7, "duplicate_account_id")}


def test_megabyte_prompt_is_truncated_and_counted(tmp_path: Path) -> None:
    big = "x" * (1 << 20)
    line = '{"request_id": "big", "account_id": "a", "ts": "2026-04-22T00:00:00Z", "ip": "10.0.0.1", "prompt": "%s"}\n'
    path = tmp_path / "big.jsonl"
    path.write_text(line % big + line.replace("big", "small") % "ok")
    result = ingest(
        path, work_dir=tmp_path / "out", options=options(max_text_chars=1000, json_block_bytes=4096)
    )
    assert_adds_up(result)
    rows = {r["request_id"]: r for r in accepted(result)}
    assert len(rows["big"]["prompt"]) == 1000
    assert rows["small"]["prompt"] == "ok"
    assert result.counts["exchanges"]["truncated"] == {"prompt": 1}


def test_truncation_counts_characters_not_bytes(tmp_path: Path) -> None:
    t = pa.table(
        {
            "request_id": ["1", "2"],
            "account_id": ["a", "a"],
            "ts": pa.array([0, 0], pa.timestamp("s")).cast(pa.timestamp("s")),
            "ip": ["10.0.0.1", "10.0.0.1"],
            "prompt": ["é" * 10, "é" * 11],
        }
    )
    t = t.set_column(2, "ts", pa.array([1_776_000_000, 1_776_000_000], pa.timestamp("s")))
    pq.write_table(t, tmp_path / "t.parquet")
    result = ingest(tmp_path / "t.parquet", work_dir=tmp_path / "o", options=options(max_text_chars=10))
    prompts = [r["prompt"] for r in accepted(result)]
    assert prompts == ["é" * 10, "é" * 10]
    assert result.counts["exchanges"]["truncated"] == {"prompt": 1}


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("empty.jsonl", b"", "empty"),
        ("blank.csv", b"\n\n  \n", "no records"),
        ("fake.parquet", b"request_id,account_id\n", "not a Parquet file"),
        ("page.jsonl", b"<!doctype html><p>502</p>\n", "does not start with a JSON object"),
        ("data.csv.gz", b"request_id\n", "not gzip"),
        ("data.txt", b"{}", "unsupported file type"),
        ("bin.csv", b"\x00" * 100, "binary"),
    ],
)
def test_unreadable_files_name_the_file(tmp_path: Path, name: str, content: bytes, problem: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(UnreadableInputError) as e:
        ingest(path, work_dir=tmp_path / "out", options=options())
    assert str(path) in str(e.value) and problem in str(e.value)


def test_parquet_named_jsonl_and_missing_columns(tmp_path: Path) -> None:
    pq.write_table(pa.table({"request_id": ["1"]}), tmp_path / "x.parquet")
    shutil.copy(tmp_path / "x.parquet", tmp_path / "x.jsonl")
    with pytest.raises(UnreadableInputError, match="is a Parquet file"):
        ingest(tmp_path / "x.jsonl", work_dir=tmp_path / "o")
    with pytest.raises(UnreadableInputError, match="no column account_id, ts, ip"):
        ingest(tmp_path / "x.parquet", work_dir=tmp_path / "o")
    (tmp_path / "h.csv").write_text("request_id,ip\n1,10.0.0.1\n")
    with pytest.raises(UnreadableInputError, match="no column account_id, ts"):
        ingest(tmp_path / "h.csv", work_dir=tmp_path / "o")
    with pytest.raises(UnreadableInputError, match="no such file"):
        ingest(tmp_path / "missing.parquet", work_dir=tmp_path / "o")


def test_truncated_gzip_is_a_clear_error(tmp_path: Path) -> None:
    # Big enough (decompressed) that the cut is met while reading, not while sniffing the head.
    data = gzip.compress((FIXTURES / "hostile.jsonl").read_bytes() * 4000)
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(data[: len(data) * 9 // 10])
    with pytest.raises(UnreadableInputError, match="read failed part-way") as e:
        ingest(path, work_dir=tmp_path / "o", options=options())
    assert str(path) in str(e.value)


def test_lone_surrogate_escape_is_invalid_utf8(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    good = '{"request_id": "1", "account_id": "a", "ts": "2026-04-22T00:00:00Z", "ip": "10.0.0.1", "prompt": "ok"}'
    bad = '{"request_id": "2", "account_id": "a", "ts": "2026-04-22T00:00:00Z", "ip": "10.0.0.1", "prompt": "x\\ud800y"}'
    path.write_text(good + "\n" + bad + "\n")
    result = ingest(path, work_dir=tmp_path / "o", options=options())
    assert_adds_up(result)
    q = quarantine_rows(result)
    assert [(r["row"], r["reason"]) for r in q] == [(2, "invalid_utf8")]
    assert "\\ud800" in q[0]["raw"]
    assert [r["request_id"] for r in accepted(result)] == ["1"]
