"""Same seed, same bytes; another seed, other traffic."""

from __future__ import annotations

import hashlib
from pathlib import Path

from distillwatch.simulate.config import preset
from distillwatch.simulate.engine import run

FILES = ("exchanges.parquet", "accounts.parquet", "labels.parquet")


def _digests(out: Path) -> dict[str, str]:
    return {f: hashlib.sha256((out / f).read_bytes()).hexdigest() for f in FILES}


def test_same_seed_gives_identical_files(tmp_path: Path) -> None:
    cfg = preset("demo", scale=0.2, seed=42, evasion="moderate")
    run(cfg, tmp_path / "a")
    run(cfg, tmp_path / "b")
    assert _digests(tmp_path / "a") == _digests(tmp_path / "b")
    run(preset("demo", scale=0.2, seed=43, evasion="moderate"), tmp_path / "c")
    differ = _digests(tmp_path / "c")
    assert all(differ[f] != _digests(tmp_path / "a")[f] for f in FILES)
