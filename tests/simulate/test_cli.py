"""`distillwatch simulate` end to end, and its errors."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
from typer.testing import CliRunner

from distillwatch.cli.main import app

runner = CliRunner()


def test_simulate_writes_the_three_files_and_a_summary(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    res = runner.invoke(app, ["simulate", "--preset", "demo", "--scale", "0.1", "--seed", "4", "--out", str(out)])
    assert res.exit_code == 0, res.output
    for name in ("exchanges.parquet", "accounts.parquet", "labels.parquet"):
        assert pq.read_metadata(out / name).num_rows > 0
    assert "campaign C-demo-1" in res.output and "group university" in res.output and "total" in res.output


def test_bad_arguments_are_named(tmp_path: Path) -> None:
    res = runner.invoke(app, ["simulate", "--preset", "nope", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "unknown preset 'nope'" in res.output
    res = runner.invoke(app, ["simulate", "--preset", "demo", "--evasion", "extreme", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "--evasion" in res.output
    res = runner.invoke(app, ["simulate", "--preset", "demo", "--scale", "0", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "--scale must be positive" in res.output
    f = tmp_path / "file"
    f.write_text("x")
    res = runner.invoke(app, ["simulate", "--preset", "demo", "--out", str(f)])
    assert res.exit_code == 2 and "is a file" in res.output


def test_config_round_trip_and_errors(tmp_path: Path) -> None:
    res = runner.invoke(app, ["simulate", "--preset", "demo", "--scale", "0.05", "--evasion", "strong", "--print-config"])
    assert res.exit_code == 0, res.output
    cfg = tmp_path / "mine.yaml"
    cfg.write_text(res.output.replace("genuine_share: 0.35", "genuine_share: 0.5"))
    res = runner.invoke(app, ["simulate", "--config", str(cfg), "--seed", "3", "--out", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    assert pq.read_metadata(tmp_path / "out" / "labels.parquet").num_rows > 0
    cfg.write_text(cfg.read_text().replace("accounts: 6\n", "accounts: -1\n", 1))
    res = runner.invoke(app, ["simulate", "--config", str(cfg), "--out", str(tmp_path / "bad")])
    assert res.exit_code == 2 and "mine.yaml" in res.output and "accounts" in res.output
    res = runner.invoke(app, ["simulate", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "--preset" in res.output
