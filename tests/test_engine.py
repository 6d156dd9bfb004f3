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


def _memory(con) -> tuple[int, int]:
    """(bytes DuckDB holds in memory, bytes in its spill files)."""
    row = con.con.execute("SELECT sum(memory_usage_bytes), sum(temporary_storage_bytes) FROM duckdb_memory()").fetchone()
    return int(row[0]), int(row[1])


def test_release_memory_spills_tables_and_keeps_the_limit_and_data() -> None:
    from distillwatch.engine import connect, release_memory

    con = connect("duckdb", memory_limit="1GB")
    con.raw_sql("CREATE TEMP TABLE t AS SELECT i, i * 2 AS x FROM range(3000000) r(i)")
    limit = con.con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    held, _ = _memory(con)

    assert release_memory(con)

    after, spilled = _memory(con)
    assert held > 10_000_000 and after < held // 10 and spilled > 0
    # Restored from the limit connect() set, not from its rounded read-back ('953.6 MiB'), so repeated
    # releases do not shrink it.
    assert release_memory(con)
    assert con.con.execute("SELECT current_setting('memory_limit')").fetchone()[0] == limit
    assert con.con.execute("SELECT count(*), sum(x) FROM t").fetchone() == (3_000_000, 2 * sum(range(3_000_000)))
    con.disconnect()


def test_release_memory_leaves_other_connections_alone() -> None:
    import ibis

    from distillwatch.engine import release_memory

    con = ibis.duckdb.connect()  # not opened by connect(): its limit is not known exactly
    limit = con.con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    assert not release_memory(con)
    assert con.con.execute("SELECT current_setting('memory_limit')").fetchone()[0] == limit


def test_insert_arrow_appends_by_name_and_keeps_no_reference() -> None:
    import gc
    import weakref

    import pyarrow as pa

    from distillwatch.engine import connect, insert_arrow

    con = connect("duckdb", memory_limit="1GB")
    con.create_table("dw_target", pa.table({"key": pa.array([1], pa.int64()), "band": pa.array([10], pa.uint64())}), temp=True)
    batch = pa.table({"band": pa.array([20, 30], pa.uint64()), "key": pa.array([2, 3], pa.int64())})  # other column order
    alive = weakref.ref(batch)

    insert_arrow(con, "dw_target", batch)
    del batch
    gc.collect()

    assert alive() is None  # a loop of batches holds one at a time, not all of them
    rows = con.con.execute("SELECT key, band FROM dw_target ORDER BY key").fetchall()
    assert rows == [(1, 10), (2, 20), (3, 30)]
    views = con.con.execute("SELECT count(*) FROM duckdb_views() WHERE view_name LIKE 'dw_insert_%'").fetchone()
    assert views == (0,)
    con.disconnect()
