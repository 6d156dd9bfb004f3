"""The embedded store: one DuckDB file that holds everything distillwatch remembers.

Each pipeline stage owns one SQL file in ``store/schema/`` (``NNN_<stage>.sql``);
they are applied in name order, every statement idempotent (``CREATE ... IF NOT
EXISTS``), so opening a store always brings it to the current layout.  All
queries that carry values use parameters: nothing attacker-controlled is ever
concatenated into SQL.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

import duckdb

DEFAULT_DB = "distillwatch.duckdb"
DB_ENV = "DISTILLWATCH_DB"


def default_db_path() -> Path:
    """``$DISTILLWATCH_DB`` if set, else ``./distillwatch.duckdb``."""
    return Path(os.environ.get(DB_ENV, DEFAULT_DB))


def _schema_sql() -> list[tuple[str, str]]:
    folder = resources.files("distillwatch.store") / "schema"
    files = sorted((p.name, p.read_text(encoding="utf-8")) for p in folder.iterdir() if p.name.endswith(".sql"))
    return files


def migrate(con: duckdb.DuckDBPyConnection) -> None:
    for _name, sql in _schema_sql():
        con.execute(sql)


def connect(path: str | Path | None = None, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open (creating if needed) the store at ``path`` and bring its tables up to date."""
    db = Path(path) if path is not None else default_db_path()
    if not read_only:
        db.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(db), read_only=read_only)
    if not read_only:
        migrate(con)
    return con


@contextmanager
def open_store(path: str | Path | None = None, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    con = connect(path, read_only=read_only)
    try:
        yield con
    finally:
        con.close()
