"""`distillwatch ingest` through typer's CliRunner, and runs recorded in the store."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
from typer.testing import CliRunner

from distillwatch.cli.main import app
from distillwatch.ingest import ingest
from distillwatch.store import connect
from tests.ingest.ingest_helpers import FIXTURES

runner = CliRunner()


def test_cli_prints_accounting_and_exits_0_with_quarantine(tmp_path: Path) -> None:
    db = tmp_path / "store.duckdb"
    result = runner.invoke(
        app,
        [
            "ingest",
            str(FIXTURES / "hostile.csv"),
            "--accounts",
            str(FIXTURES / "accounts.csv"),
            "--out",
            str(tmp_path / "o"),
            "--db",
            str(db),
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "read = accepted + quarantined" in result.output
    assert "bad_csv_row" in result.output and "duplicate_account_id" in result.output
    assert "quarantined" in result.output and "exit 0" in result.output
    with duckdb.connect(str(db), read_only=True) as con:
        status, read, acc, q, by_reason = con.execute(
            "SELECT status, exchanges_read, exchanges_accepted, exchanges_quarantined, by_reason FROM runs"
        ).fetchone()
        assert status == "ok" and read == acc + q == 11
        assert json.loads(by_reason)["accounts"]["duplicate_account_id"] == 1
        assert con.execute("SELECT count(*) FROM ingest_sources").fetchone()[0] == 2


def test_cli_unreadable_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "ingest",
            str(FIXTURES / "not_parquet.parquet"),
            "--out",
            str(tmp_path),
            "--db",
            str(tmp_path / "s.duckdb"),
        ],
    )
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "not_parquet.parquet" in lines[0] and "Traceback" not in result.output


def test_cli_rejects_bad_options(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "ingest",
            str(FIXTURES / "hostile.csv"),
            "--max-text-chars",
            "0",
            "--db",
            str(tmp_path / "s.duckdb"),
        ],
    )
    assert result.exit_code == 2
    result = runner.invoke(app, ["ingest", str(FIXTURES / "hostile.csv"), "--adapter", "xml"])
    assert result.exit_code == 2


def test_cli_with_progress_bar_and_env_store(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("DISTILLWATCH_DB", str(tmp_path / "env.duckdb"))
    result = runner.invoke(app, ["ingest", str(FIXTURES / "otel_genai.jsonl"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert "non-GenAI" in result.output  # the HTTP span is reported, not silently skipped
    with duckdb.connect(str(tmp_path / "env.duckdb"), read_only=True) as con:
        assert con.execute("SELECT adapter FROM ingest_sources").fetchone()[0] == "otel"


def test_cli_help_shows_an_example() -> None:
    result = runner.invoke(app, ["ingest", "--help"])
    assert result.exit_code == 0
    assert "Example" in result.output and "distillwatch ingest" in result.output


def test_failed_run_is_recorded(tmp_path: Path) -> None:
    import gzip

    from distillwatch.ingest import UnreadableInputError

    path = tmp_path / "cut.jsonl.gz"
    data = gzip.compress(
        b'{"request_id": "1", "account_id": "a", "ts": "2026-04-22T00:00:00Z", "ip": "10.0.0.1"}\n' * 80000
    )
    path.write_bytes(data[: len(data) * 9 // 10])
    con = connect(tmp_path / "s.duckdb")
    try:
        ingest(path, work_dir=tmp_path / "o", con=con)
    except UnreadableInputError:
        pass
    else:  # pragma: no cover - the file is cut, reading must fail
        raise AssertionError("expected UnreadableInputError")
    status, error = con.execute("SELECT status, error FROM runs").fetchone()
    assert status == "failed" and "cut.jsonl.gz" in error
    con.close()
