"""Choosing the engine that runs detection's table work.

Every per-account and per-window computation in distillwatch is an Ibis
expression, so the same code runs on the embedded DuckDB (the default, one
laptop) or on an existing Apache Spark cluster when the logs outgrow one
machine.  This module is the one place that knows how to open either.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

import duckdb
import ibis
import pyarrow as pa
from ibis.backends import BaseBackend

ENGINES = ("duckdb", "spark")
# Working-table memory of the embedded engine; the rest of a scan (features, graph) needs headroom
# beside it to stay under 8 GB at the reported campaign's scale.  $DISTILLWATCH_DUCKDB_MEMORY overrides.
DEFAULT_DUCKDB_MEMORY = "4GB"


# What ``release_memory`` lowers DuckDB's limit to for a moment: low enough that every block it holds is
# written to its spill directory and the memory goes back to the operating system.
RELEASE_FLOOR = "1MB"
# Where ``connect`` keeps the limit it set (a DuckDB variable of the connection): the setting itself reads
# back rounded ('3.7 GiB' for 4GB), so restoring from it would shrink the limit at every release.
LIMIT_VARIABLE = "distillwatch_memory_limit"


# DuckDB's spill directories: ``distillwatch-duckdb-<pid>-<random>`` under the system temp directory.
SPILL_PREFIX = "distillwatch-duckdb-"


class EngineError(RuntimeError):
    """The requested engine cannot be opened (unknown name, missing extra)."""


def connect(
    engine: str = "duckdb",
    store_path: str | Path | None = None,
    spark_master: str | None = None,
    threads: int | None = None,
    memory_limit: str | None = None,
) -> BaseBackend:
    """Open an Ibis backend for detection's working tables.

    ``store_path`` is a DuckDB file for the working tables (they spill there
    when larger than memory); ``None`` keeps them in memory.  It is a scratch
    database, not the results store (``distillwatch.store``), so a scan never
    leaves intermediate tables in the analyst's store.  ``spark_master`` (e.g.
    ``local[*]`` or ``spark://host:7077``) is used with ``engine="spark"``.
    """
    if engine == "duckdb":
        database = str(store_path) if store_path is not None else ":memory:"
        config: dict[str, Any] = {}
        if threads:
            config["threads"] = threads
        # DuckDB's own default is 80% of RAM, and it keeps working tables (the exchanges with their
        # text) in its buffer pool up to that: bounded here, larger tables spill to a private temp dir.
        limit = memory_limit or default_memory_limit()
        config["memory_limit"] = limit
        remove_orphaned_spill_dirs()
        # The owner's pid is in the name, so a later scan can tell an orphaned directory from a live one.
        spill = tempfile.mkdtemp(prefix=f"{SPILL_PREFIX}{os.getpid()}-")
        atexit.register(shutil.rmtree, spill, True)  # DuckDB removes its files, not the directory
        config["temp_directory"] = spill
        con = ibis.duckdb.connect(database=database, **config)
        # Ordered results make every stage deterministic (same input, same output).
        con.raw_sql("SET preserve_insertion_order = true")
        # DuckDB's own progress bar writes to the terminal (and to logs) between the CLI's stage display.
        con.raw_sql("SET enable_progress_bar = false")
        limit_memory(con.con, limit)  # records the limit for ``release_memory``
        return con
    if engine == "spark":
        try:
            from distillwatch import spark
        except ImportError as exc:  # pragma: no cover - depends on the optional extra
            raise EngineError("engine 'spark' needs the spark extra: pip install 'distillwatch[spark]'") from exc
        # A checkpointed-temp-view backend (distillwatch.spark): the pipeline's temp tables need it.
        return spark.connect(spark_master or os.environ.get("SPARK_MASTER"))
    raise EngineError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")


def default_memory_limit() -> str:
    """DuckDB's working memory for a scan: $DISTILLWATCH_DUCKDB_MEMORY, else ``DEFAULT_DUCKDB_MEMORY``."""
    return os.environ.get("DISTILLWATCH_DUCKDB_MEMORY") or DEFAULT_DUCKDB_MEMORY


def limit_memory(raw: duckdb.DuckDBPyConnection, memory_limit: str | None = None) -> str:
    """Bounds a DuckDB connection opened elsewhere (the incremental path's store) as ``connect`` does.

    Sets its memory limit (``memory_limit``, else ``default_memory_limit()``) and records it,
    so ``release_memory`` can hand its buffer pool back before the graph work.  Larger
    working tables spill to the connection's temp directory (``<store>.tmp`` for a file).
    Returns the limit set.
    """
    limit = memory_limit or default_memory_limit()
    raw.execute("SET memory_limit = ?", [limit])
    raw.execute(f"SET VARIABLE {LIMIT_VARIABLE} = ?", [limit])
    return limit


def release_memory(con: BaseBackend) -> bool:
    """Hands the embedded DuckDB's memory back to the operating system; True when it did.

    For a scan's Python-only work (Leiden over the account graph, scoring): DuckDB keeps
    its buffer pool, up to its limit, after its queries end, including the memory of
    tables already dropped, while igraph and numpy need the room.  Lowering the limit
    makes DuckDB write the blocks it holds to its spill directory and free the rest;
    the limit is restored at once, and blocks are read back when a later query needs
    them.  Only connections opened by ``connect`` (which records their limit) are
    touched; Spark's memory is the cluster's.
    """
    if not is_duckdb(con):
        return False
    raw = con.con
    found = raw.execute(f"SELECT getvariable('{LIMIT_VARIABLE}')").fetchone()
    if not found or found[0] is None:
        return False
    try:
        raw.execute(f"SET memory_limit = '{RELEASE_FLOOR}'")
    except duckdb.OutOfMemoryException:
        # Blocks pinned by an unfinished result cannot be written out: what could be is, the rest stays.
        pass
    finally:
        raw.execute("SET memory_limit = ?", [found[0]])
    return True


def insert_arrow(con: BaseBackend, table: str, rows: pa.Table) -> None:
    """Appends the Arrow table ``rows`` to the engine's table ``table`` (columns matched by name).

    On DuckDB without Ibis' ``insert``: that wraps ``rows`` in an in-memory table that stays
    referenced after the insert, so a loop appending batches keeps every batch alive (at 0.2 of
    the reported campaign, the content sample's prompt bands: 0.72 GB held to the end of the scan).
    Here ``rows`` is registered under a private name, copied, and unregistered.
    """
    if not is_duckdb(con):
        con.insert(table, rows)
        return
    raw = con.con
    view = f"dw_insert_{uuid.uuid4().hex}"
    raw.register(view, rows)
    try:
        # Both names are the caller's table name and our own, quoted: no user text reaches the statement.
        raw.execute(f"INSERT INTO {_quoted(table)} BY NAME SELECT * FROM {_quoted(view)}")  # noqa: S608
    finally:
        raw.unregister(view)


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def remove_orphaned_spill_dirs(temp_root: str | Path | None = None) -> list[Path]:
    """Removes spill directories whose scan is no longer running; returns them.

    A scan removes its spill directory when it exits, but not when it is
    killed (out of memory, SIGKILL, a lost session), and a killed 90M-row scan
    leaves tens of GB there.  A directory is orphaned when the process whose
    pid it carries is gone; directories of running processes (and those
    without a pid in their name) are left alone.
    """
    root = Path(temp_root) if temp_root is not None else Path(tempfile.gettempdir())
    removed = []
    for path in root.glob(f"{SPILL_PREFIX}*"):
        pid_text = path.name[len(SPILL_PREFIX) :].split("-", 1)[0]
        if not path.is_dir() or not pid_text.isdigit() or _process_alive(int(pid_text)):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def is_duckdb(con: BaseBackend) -> bool:
    return getattr(con, "name", "") == "duckdb"
