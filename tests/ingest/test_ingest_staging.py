"""How accepted rows are staged: a pristine contract Parquet file is copied, and the
copying and rewriting routes give the same tables and quarantine."""

from __future__ import annotations

import filecmp
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from distillwatch import contract
from distillwatch.ingest import ingest
from distillwatch.ingest.pipeline import _StagedWriter
from tests.ingest.ingest_helpers import assert_adds_up, options, quarantine_rows

N = 600


def _contract_table(n: int = N, seed: int = 3) -> pa.Table:
    rng = np.random.default_rng(seed)
    start = datetime(2026, 4, 22, tzinfo=UTC)
    columns = {
        "request_id": [f"req-{i}" for i in range(n)],
        "account_id": [f"acct-{int(a)}" for a in rng.integers(0, 30, n)],
        "ts": [start + timedelta(seconds=int(s)) for s in rng.integers(0, 86_400, n)],
        "ip": [f"198.51.100.{int(a)}" for a in rng.integers(1, 255, n)],
        "prompt": [f"explain step {i} of the proof" for i in range(n)],
        "input_tokens": [int(t) for t in rng.integers(1, 4000, n)],
        "country": ["DE"] * n,
    }
    fields = {f.name: f for f in contract.EXCHANGES_SCHEMA}
    arrays = [
        pa.array(columns.get(name), f.type) if name in columns else pa.nulls(n, f.type)
        for name, f in fields.items()
    ]
    return pa.Table.from_arrays(arrays, schema=contract.EXCHANGES_SCHEMA)


def _with(table: pa.Table, name: str, row: int, value: object) -> pa.Table:
    values = table[name].to_pylist()
    values[row] = value
    i = table.schema.get_field_index(name)
    return table.set_column(i, table.schema.field(i), pa.array(values, table.schema.field(i).type))


def _run(table: pa.Table, folder: Path, extra_column: bool) -> tuple:
    """Ingest ``table`` as a contract Parquet file (copy route) or with one extra column
    (which takes it off the copy route), in small batches so changes land mid-file."""
    folder.mkdir()
    src = folder / "exchanges.parquet"
    written = table.append_column("extra", pa.array(["x"] * table.num_rows)) if extra_column else table
    pq.write_table(written, src, row_group_size=128)
    before = src.read_bytes()
    result = ingest(src, work_dir=folder / "out", options=options(batch_rows=100))
    assert src.read_bytes() == before  # the input is never touched
    assert_adds_up(result)
    staged = pq.read_table(result.exchanges_path)
    quarantine = [
        {**r, "source": None, "detail": r["detail"].replace(str(src), "SRC")} for r in quarantine_rows(result)
    ]
    return result, src, staged, quarantine, result.counts["exchanges"]


def test_pristine_contract_parquet_is_copied(tmp_path: Path) -> None:
    table = _contract_table()
    result, src, staged, quarantine, counts = _run(table, tmp_path / "a", extra_column=False)
    assert filecmp.cmp(src, result.exchanges_path, shallow=False)
    assert staged.schema.equals(contract.EXCHANGES_SCHEMA) and staged.equals(table)
    assert quarantine == [] and counts["accepted"] == N


@pytest.mark.parametrize(
    "changes",
    [
        [("ip", 350, "999.1.1.1")],  # a reject after three unchanged batches
        [("ip", 420, "2001:DB8::0001")],  # accepted but rewritten: canonical address
        [("prompt", 0, "a\x00b")],  # the very first batch changes
        [("country", 599, " de "), ("ts", 250, datetime(1970, 1, 1, tzinfo=UTC))],
        [("request_id", 480, "req-7")],  # a duplicate: the first (row 8) is kept
        [("request_id", 480, "req-7"), ("ip", 100, "not an address")],
    ],
)
def test_copy_and_rewrite_routes_agree(tmp_path: Path, changes: list) -> None:
    table = _contract_table()
    for name, row, value in changes:
        table = _with(table, name, row, value)
    copy = _run(table, tmp_path / "copy", extra_column=False)
    rewrite = _run(table, tmp_path / "rewrite", extra_column=True)
    assert not filecmp.cmp(copy[1], copy[0].exchanges_path, shallow=False)  # something changed
    assert copy[2].schema.equals(contract.EXCHANGES_SCHEMA)
    assert copy[2].equals(rewrite[2])
    assert copy[3] == rewrite[3] and copy[4] == rewrite[4]
    assert copy[4]["read"] == N


def test_duplicate_in_pristine_file_names_the_first_row(tmp_path: Path) -> None:
    table = _with(_contract_table(), "request_id", 480, "req-7")
    result, _src, staged, quarantine, counts = _run(table, tmp_path / "a", extra_column=False)
    assert counts["by_reason"] == {"duplicate_request_id": 1}
    (q,) = quarantine
    assert q["row"] == 481 and q["detail"].endswith(":8; the first is kept")
    assert staged.num_rows == N - 1 and staged["request_id"].to_pylist().count("req-7") == 1


def test_staged_writer_reports_a_failed_write(tmp_path: Path) -> None:
    writer = _StagedWriter(tmp_path / "x.parquet", pa.schema([("a", pa.int64())]))
    writer.write(pa.table({"b": pa.array(["not the schema"])}))
    with pytest.raises(ValueError):
        writer.close()


@pytest.mark.parametrize("extra_column", [False, True])
def test_hash_collision_without_duplicate_keys_keeps_every_row(
    extra_column: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two different keys with one hash are compared as keys, and both kept."""
    from distillwatch.ingest import pipeline

    monkeypatch.setattr(pipeline, "_repeated_hash", lambda hashes: True)
    table = _contract_table()
    _result, _src, staged, quarantine, counts = _run(table, tmp_path / "a", extra_column=extra_column)
    assert quarantine == [] and counts["accepted"] == N and staged.equals(table)


def test_repeated_hash_finds_repeats_only() -> None:
    from distillwatch.ingest.pipeline import _repeated_hash

    assert not _repeated_hash([np.array([1, 2], dtype=np.uint64), np.array([3], dtype=np.uint64)])
    assert _repeated_hash([np.array([1, 2], dtype=np.uint64), np.array([2], dtype=np.uint64)])
    assert not _repeated_hash([])


@pytest.mark.parametrize("dirty", [False, True])
def test_repeated_free_text_read_as_dictionary_gives_the_same_rows(dirty: bool, tmp_path: Path) -> None:
    """Templated text is read as Arrow dictionaries and checked per distinct value;
    the result equals reading the same rows stored without dictionary encoding."""
    words = [
        "refactor this",
        "explain the proof",
        "why",
        "x" * 300 if dirty else "y",
        "a\x00b" if dirty else "b",
    ]
    table = _contract_table()
    prompts = pa.array([words[i % len(words)] for i in range(N)])
    table = table.set_column(table.schema.get_field_index("prompt"), table.schema.field("prompt"), prompts)
    outcomes = []
    for use_dictionary in (True, False):
        folder = tmp_path / str(use_dictionary)
        folder.mkdir()
        pq.write_table(table, folder / "e.parquet", use_dictionary=use_dictionary, row_group_size=250)
        result = ingest(
            folder / "e.parquet", work_dir=folder / "out", options=options(batch_rows=100, max_text_chars=200)
        )
        assert_adds_up(result)
        outcomes.append((pq.read_table(result.exchanges_path), result.counts["exchanges"]))
    assert outcomes[0][0].equals(outcomes[1][0]) and outcomes[0][1] == outcomes[1][1]
    expected = {"truncated": {"prompt": N // 5}, "nul_stripped": {"prompt": N // 5}} if dirty else {}
    assert {k: v for k, v in outcomes[0][1].items() if k in ("truncated", "nul_stripped") and v} == expected
