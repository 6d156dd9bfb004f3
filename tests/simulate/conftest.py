"""Small simulated runs shared by the simulator tests (each a few seconds)."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from distillwatch.simulate.config import preset
from distillwatch.simulate.engine import Summary, run


class Run:
    def __init__(self, out: Path, summary: Summary) -> None:
        self.out = out
        self.summary = summary
        self.exchanges = pq.read_table(out / "exchanges.parquet")
        self.accounts = pq.read_table(out / "accounts.parquet")
        self.labels = pq.read_table(out / "labels.parquet")


def _run(tmp: Path, name: str, **kw: object) -> Run:
    cfg = preset(name, **kw)  # type: ignore[arg-type]
    out = tmp / f"{name}-{kw.get('evasion', 'none')}-{kw.get('scale', 1)}"
    return Run(out, run(cfg, out))


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return _run(tmp_path_factory.mktemp("sim"), "demo", scale=0.5, seed=11)


@pytest.fixture(scope="session")
def reported(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return _run(tmp_path_factory.mktemp("sim"), "reported-campaign", scale=0.002, seed=5)


@pytest.fixture(scope="session")
def reported_strong(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return _run(tmp_path_factory.mktemp("sim"), "reported-campaign", scale=0.002, seed=5, evasion="strong")


@pytest.fixture(scope="session")
def earlier(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return _run(tmp_path_factory.mktemp("sim"), "earlier-campaigns", scale=0.003, seed=2, evasion="moderate")
