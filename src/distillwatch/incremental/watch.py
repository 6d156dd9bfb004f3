"""`distillwatch watch DIR`: an increment for every new file dropped into a directory, each file once.

A file is new when no processed partition carries its content hash (sha256); the
store records path, size, mtime and hash of each (``inc_partitions``), so a file
renamed or touched is not processed twice, and a file rewritten with new content
is (its rows already stored are then skipped as duplicates, by request_id).
Files still being written are left for the next pass: a file is taken once its
size and mtime have not changed for ``settle_seconds``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from distillwatch import store as store_mod
from distillwatch.incremental.run import IncrementResult, file_identity, run_increment

# Inputs ingest reads; anything else in the directory (temporary files, notes) is ignored.
SUFFIXES = (".parquet", ".jsonl", ".jsonl.gz", ".json", ".ndjson", ".csv", ".csv.gz")


def candidate_files(directory: Path, settle_seconds: float) -> list[Path]:
    """Input files in ``directory``, oldest first (mtime, then name), that have stopped changing."""
    now = time.time()
    files = []
    for p in directory.iterdir():
        if not p.is_file() or p.name.startswith(".") or not p.name.lower().endswith(SUFFIXES):
            continue
        if now - p.stat().st_mtime < settle_seconds:
            continue
        files.append(p)
    return sorted(files, key=lambda p: (p.stat().st_mtime, p.name))


def processed_hashes(db: str | Path) -> set[str]:
    with store_mod.open_store(db) as store:
        rows = store.execute(
            "SELECT content_hash FROM inc_partitions WHERE content_hash IS NOT NULL"
        ).fetchall()
    return {r[0] for r in rows}


def new_files(
    directory: Path, db: str | Path, settle_seconds: float
) -> Iterator[tuple[Path, dict[str, Any]]]:
    """(path, identity) of files in ``directory`` not processed yet."""
    done = processed_hashes(db)
    for path in candidate_files(directory, settle_seconds):
        ident = file_identity(path)
        if ident["content_hash"] in done:
            continue
        done.add(ident["content_hash"])
        yield path, ident


def results_dir(out: Path, path: Path) -> Path:
    """A fresh results directory for the increment of ``path``: OUT/<stem>, or OUT/<stem>-2, -3, ..."""
    stem = path.name.split(".")[0] or "increment"
    candidate, k = out / stem, 1
    while candidate.exists():
        k += 1
        candidate = out / f"{stem}-{k}"
    return candidate


def watch(
    directory: str | Path,
    db: str | Path,
    out: str | Path,
    accounts: str | Path | None = None,
    interval: float = 60.0,
    once: bool = False,
    settle_seconds: float = 5.0,
    on_file: Callable[[Path], None] | None = None,
    on_result: Callable[[Path, IncrementResult], None] | None = None,
    **increment_options: Any,
) -> list[IncrementResult]:
    """Run an increment per new file in ``directory``; with ``once``, one pass and return.

    Each increment writes its results directory to ``OUT/<file stem>`` (``-2``, ``-3``... if taken).
    """
    directory, out = Path(directory), Path(out)
    if not directory.is_dir():
        raise NotADirectoryError(f"{directory}: not a directory")
    results: list[IncrementResult] = []
    while True:
        for path, ident in new_files(directory, db, settle_seconds):
            if on_file:
                on_file(path)
            res = run_increment(
                path, db, results_dir(out, path), accounts=accounts, identity=ident, **increment_options
            )
            results.append(res)
            if on_result:
                on_result(path, res)
        if once:
            return results
        time.sleep(interval)
