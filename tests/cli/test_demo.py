"""The README's first command: `distillwatch demo` simulates, scans, evaluates and reports."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from distillwatch.cli.main import app


@pytest.mark.slow
def test_demo_runs_end_to_end(tmp_path) -> None:
    out = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", "--out", str(out)], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    results = out / "results"
    for name in ("accounts.parquet", "campaigns.json", "report.html", "report.md", "quarantine.parquet", "metrics.json"):
        assert (results / name).exists(), name
    # one row per account seen in the traffic, as the contract says
    seen = set(pq.read_table(out / "exchanges.parquet", columns=["account_id"])["account_id"].to_pylist())
    scored = pq.read_table(results / "accounts.parquet", columns=["account_id"])["account_id"].to_pylist()
    assert len(scored) == len(set(scored)) and set(scored) == seen
    metrics = json.loads((results / "metrics.json").read_text())
    assert metrics["recall"] >= 0.99 and metrics["fpr"] <= 0.001
    assert (out / "distillwatch.duckdb").exists()
