"""The vectorised CSV and JSON Lines paths read exactly as the line-by-line ones.

Each case is ingested twice: as usual, and with pyarrow's parse turned off so every
block goes through Python's ``csv`` / ``json`` modules.  Accepted tables, counts and
quarantine rows must be identical.
"""

from __future__ import annotations

import gzip
import json
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from distillwatch.ingest import UnreadableInputError, ingest, readers
from tests.ingest.ingest_helpers import FIXTURES, assert_adds_up, options

HEADER = b"request_id,account_id,ts,ip,prompt,input_tokens,country,extra"


def _outcome(path: Path, work: Path, accounts: Path | None = None, **opts: object) -> tuple:
    result = ingest(path, accounts=accounts, work_dir=work, options=options(**opts))
    assert_adds_up(result)
    tables = {
        t: pq.read_table(result.exchanges_path if t == "exchanges" else result.accounts_path)
        for t in result.counts
    }
    quarantine = pq.read_table(result.quarantine_path).to_pylist()
    return tables, quarantine, result.counts


def _no_pyarrow_csv(*_args: object) -> None:
    return None


def _no_pyarrow_json(*_args: object, **_kw: object) -> pa.Table:
    raise pa.ArrowInvalid("fast path disabled by the test")


def _both(path: Path, work: Path, monkeypatch: pytest.MonkeyPatch, **kw: object) -> tuple[tuple, tuple]:
    fast = _outcome(path, work / "fast", **kw)
    with monkeypatch.context() as m:
        m.setattr(readers, "_csv_plain_block", _no_pyarrow_csv)
        m.setattr(readers.pajson, "read_json", _no_pyarrow_json)
        slow = _outcome(path, work / "slow", **kw)
    return fast, slow


def _assert_same(fast: tuple, slow: tuple) -> None:
    assert fast[2] == slow[2]  # counts, by reason, truncations, NULs
    assert fast[1] == slow[1]  # quarantine rows: row, field, reason, detail, raw
    for name, table in fast[0].items():
        assert table.equals(slow[0][name]), name


@pytest.mark.parametrize("name", ["hostile.csv", "hostile.jsonl"])
@pytest.mark.parametrize("block", [1024, 8 << 20])
def test_hostile_fixtures_read_the_same_both_ways(
    name: str, block: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    accounts = FIXTURES / "accounts.csv" if name.endswith(".csv") else None
    fast, slow = _both(FIXTURES / name, tmp_path, monkeypatch, accounts=accounts, json_block_bytes=block)
    _assert_same(fast, slow)
    assert fast[2]["exchanges"]["quarantined"] > 0


def _clean_csv(n: int, crlf: bool) -> bytes:
    end = b"\r\n" if crlf else b"\n"
    rows = [HEADER]
    for i in range(n):
        prompt = f'"step {i}, with ""quotes""\nand a second line"' if i % 7 == 0 else f"plain prompt {i}"
        rows.append(
            f"r{i},a{i % 13},2026-04-22T10:{i % 60:02d}:00Z,10.0.{i % 200}.1,{prompt},{i},de,x".encode()
        )
    return end.join(rows) + end


@pytest.mark.parametrize("crlf", [False, True])
def test_clean_csv_takes_the_fast_path(crlf: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "e.csv"
    path.write_bytes(_clean_csv(3000, crlf))
    fast_blocks = []
    real = readers._csv_plain_block

    def counting(*args: object) -> pa.Table | None:
        table = real(*args)
        fast_blocks.append(table is not None)
        return table

    monkeypatch.setattr(readers, "_csv_plain_block", counting)
    fast = _outcome(path, tmp_path / "fast", json_block_bytes=4096)
    monkeypatch.undo()
    assert len(fast_blocks) > 10 and all(fast_blocks)
    with monkeypatch.context() as m:
        m.setattr(readers, "_csv_plain_block", _no_pyarrow_csv)
        slow = _outcome(path, tmp_path / "slow", json_block_bytes=4096)
    _assert_same(fast, slow)
    assert fast[2]["exchanges"]["accepted"] == 3000
    rows = pq.read_table(tmp_path / "fast" / "ingest" / "exchanges.parquet")["prompt"].to_pylist()
    assert rows[7] == 'step 7, with "quotes"\nand a second line'  # quoted newline kept (CRLF inside too)
    # Row numbers are physical lines: the two-line records push every later row down.
    q = pq.read_table(tmp_path / "fast" / "quarantine.parquet")
    assert q.num_rows == 0


def test_gzip_csv_reads_the_same_both_ways(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    body = _clean_csv(500, False).replace(b"r250,", b"r1,").replace(b",10.0.17.1,", b",10.0.17.300,")
    path = tmp_path / "e.csv.gz"
    path.write_bytes(gzip.compress(body))
    fast, slow = _both(path, tmp_path, monkeypatch, json_block_bytes=2048)
    _assert_same(fast, slow)
    assert fast[2]["exchanges"]["by_reason"] == {"bad_ip": 3, "duplicate_request_id": 1}  # rows 17, 217, 417


# Pieces of CSV that are hard to read: quoted commas, newlines and doubled quotes,
# a quote in the middle of a bare field, blank and ragged lines, bad bytes, NUL, CR.
cells = st.sampled_from(
    [
        b"r1",
        b"a",
        b"2026-04-22T00:00:00Z",
        b"10.0.0.1",
        b"2001:DB8::1",
        b"12",
        b"",
        b'""',
        b'"x,y"',
        b'"two\nlines"',
        b'"two\r\nlines"',
        b'"say ""hi"""',
        b'ab"c',
        b'"ab"c',
        b"caf\xc3\xa9",
        b"\xff\xfe",
        b"nul\x00",
        b"cr\rhere",
        b'"open',
        b"de",
    ]
)
legal_cells = st.sampled_from(
    [
        b"r1",
        b"a",
        b"2026-04-22T00:00:00Z",
        b"10.0.0.1",
        b"12",
        b"",
        b'""',
        b'"x,y"',
        b'"two\nlines"',
        b'"say ""hi"""',
    ]
)
legal_rows = st.lists(legal_cells, min_size=8, max_size=8).map(lambda cs: b",".join(cs))
hostile_rows = st.lists(cells, min_size=1, max_size=10).map(lambda cs: b",".join(cs))
# Mostly well-formed rows (blocks pyarrow reads), some hostile ones (blocks Python reads).
rows = st.one_of(legal_rows, legal_rows, legal_rows, hostile_rows)
endings = st.sampled_from([b"\n", b"\n", b"\r\n", b"\n\n"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(rows, endings), min_size=1, max_size=120), st.sampled_from([1024, 4096]))
def test_any_csv_reads_the_same_both_ways(body: list[tuple[bytes, bytes]], block: int) -> None:
    data = HEADER + b"\n" + b"".join(r + e for r, e in body)
    with tempfile.TemporaryDirectory() as d, pytest.MonkeyPatch.context() as m:
        path = Path(d) / "e.csv"
        path.write_bytes(data)
        try:
            fast = _outcome(path, Path(d) / "fast", json_block_bytes=block)
        except UnreadableInputError as e:
            fast_error = str(e)
        else:
            fast_error = None
        m.setattr(readers, "_csv_plain_block", _no_pyarrow_csv)
        try:
            slow = _outcome(path, Path(d) / "slow", json_block_bytes=block)
        except UnreadableInputError as e:
            assert fast_error == str(e)
            return
        assert fast_error is None
        _assert_same(fast, slow)


def test_jsonl_with_long_lines_reads_the_same_both_ways(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = []
    for i in range(400):
        record = {"request_id": f"r{i}", "account_id": "a", "ts": "2026-04-22T00:00:00Z", "ip": "10.0.0.1"}
        record["prompt"] = "x" * (3_000_000 if i == 200 else 50)  # a line longer than pyarrow's 1 MB blocks
        lines.append(json.dumps(record))
    lines[300] = lines[300][:-1]  # malformed
    path = tmp_path / "e.jsonl"
    path.write_text("\n".join(lines) + "\n")
    fast, slow = _both(path, tmp_path, monkeypatch)
    _assert_same(fast, slow)
    assert fast[2]["exchanges"]["by_reason"] == {"malformed_json": 1}
    assert fast[2]["exchanges"]["truncated"] == {"prompt": 1}
