"""`scan --since/--until` and `watch` on the command line: an increment, a refused overlap, clear errors."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from distillwatch.cli.main import app
from tests.incremental.helpers import simulate_demo

ENV = {"COLUMNS": "160"}


@pytest.fixture(scope="module")
def small_demo(tmp_path_factory):
    return simulate_demo(tmp_path_factory.mktemp("cli") / "demo", scale=0.05)


@pytest.mark.slow
def test_scan_slice_then_overlap_refused(small_demo, tmp_path) -> None:
    args = ["scan", str(small_demo / "exchanges.parquet"), "--accounts", str(small_demo / "accounts.parquet"),
            "--db", str(tmp_path / "s.duckdb")]  # fmt: skip
    first = CliRunner().invoke(
        app, [*args, "--since", "2026-05-04", "--until", "2026-05-06", "--out", str(tmp_path / "a")], env=ENV
    )
    assert first.exit_code == 0, first.output
    assert "rows outside the slice" in first.output and "duplicates skipped" in first.output
    assert (tmp_path / "a" / "accounts.parquet").exists() and (tmp_path / "a" / "run.json").exists()
    again = CliRunner().invoke(
        app,
        [*args, "--since", "2026-05-05T12:00Z", "--until", "2026-05-07", "--out", str(tmp_path / "b")],
        env=ENV,
    )
    assert again.exit_code == 2
    assert "overlaps partition" in again.output and "--reprocess" in again.output


def test_scan_slice_needs_both_bounds_and_a_store(small_demo, tmp_path) -> None:
    base = ["scan", str(small_demo / "exchanges.parquet"), "--out", str(tmp_path / "o")]
    one = CliRunner().invoke(
        app, [*base, "--since", "2026-05-04", "--db", str(tmp_path / "s.duckdb")], env=ENV
    )
    assert one.exit_code == 2 and "both --since and --until" in one.output
    no_db = CliRunner().invoke(app, [*base, "--since", "2026-05-04", "--until", "2026-05-05"], env=ENV)
    assert no_db.exit_code == 2 and "--db" in no_db.output
    bad = CliRunner().invoke(
        app,
        [*base, "--since", "yesterday", "--until", "2026-05-05", "--db", str(tmp_path / "s.duckdb")],
        env=ENV,
    )
    assert bad.exit_code == 2 and "not an ISO 8601" in bad.output


def test_watch_refuses_a_missing_directory(tmp_path) -> None:
    res = CliRunner().invoke(
        app,
        [
            "watch",
            str(tmp_path / "nope"),
            "--db",
            str(tmp_path / "s.duckdb"),
            "--out",
            str(tmp_path / "o"),
            "--once",
        ],
        env=ENV,
    )
    assert res.exit_code == 2 and "not a directory" in res.output
