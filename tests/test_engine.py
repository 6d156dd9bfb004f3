"""The engine module: DuckDB spill directories of killed scans are cleaned up by the next scan."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from distillwatch.engine import SPILL_PREFIX, remove_orphaned_spill_dirs


def _dead_pid() -> int:
    # A child that has exited and been reaped: its pid names no running process.
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_orphaned_spill_dir_is_removed_and_live_ones_stay(tmp_path: Path) -> None:
    orphan = tmp_path / f"{SPILL_PREFIX}{_dead_pid()}-abc123"
    (orphan / "duckdb_temp_storage").mkdir(parents=True)
    (orphan / "duckdb_temp_storage" / "block.tmp").write_bytes(b"x" * 1024)
    live = tmp_path / f"{SPILL_PREFIX}{os.getpid()}-def456"
    live.mkdir()
    legacy = tmp_path / f"{SPILL_PREFIX}q1w2e3"  # an older name without a pid: cannot tell, left alone
    legacy.mkdir()
    unrelated = tmp_path / "something-else-1"
    unrelated.mkdir()

    removed = remove_orphaned_spill_dirs(tmp_path)

    assert removed == [orphan]
    assert not orphan.exists()
    assert live.is_dir() and legacy.is_dir() and unrelated.is_dir()


def test_connect_names_its_spill_dir_after_its_process(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    from distillwatch.engine import connect

    con = connect("duckdb")
    spill = con.raw_sql("SELECT current_setting('temp_directory')").fetchone()[0]
    con.disconnect()
    assert Path(spill).parent == tmp_path
    assert Path(spill).name.startswith(f"{SPILL_PREFIX}{os.getpid()}-")
    # The running process's own directory survives a sweep.
    assert remove_orphaned_spill_dirs(tmp_path) == []
