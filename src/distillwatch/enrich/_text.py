"""Shared vectorised helpers for per-text enrichment.

Everything here works on whole Arrow arrays: no Python loop runs per row.
Hashes are *stable* (MD5-based, identical across runs, machines and DuckDB
versions) because template hashes and MinHash signatures are stored and
compared later (campaign fingerprints, attribution).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# Attacker-controlled text can be megabytes long; per-text work only looks at
# the first MAX_CHARS characters so one hostile row cannot stall a scan.
MAX_CHARS = 4096

# Arrow and numpy kernels release the GIL, so large batches are split across threads.
THREADS = max(1, min(4, os.cpu_count() or 1))
PARALLEL_MIN_ROWS = 20_000
MAX_CHUNK_ROWS = 50_000

T = TypeVar("T")

_con: duckdb.DuckDBPyConnection | None = None
_con_lock = threading.Lock()


def _cursor() -> duckdb.DuckDBPyConnection:
    """A cursor on a private in-memory DuckDB (connecting costs ~25 ms, so reuse it)."""
    global _con
    with _con_lock:
        if _con is None:
            _con = duckdb.connect(":memory:")
        return _con.cursor()


def as_strings(values: pa.Array | pa.ChunkedArray | Sequence[str | None] | Iterable[str | None]) -> pa.Array:
    """Coerce input to one contiguous Arrow string array (nulls kept).

    Accepts Arrow arrays (string, large_string, dictionary, null), chunked
    arrays, or a Python sequence.  Raises TypeError naming the type otherwise.
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks else pa.array([], pa.string())
    if not isinstance(values, pa.Array):
        values = pa.array(list(values), type=pa.string())
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    if pa.types.is_null(values.type):
        return pa.nulls(len(values), pa.string())
    if pa.types.is_large_string(values.type) or pa.types.is_string_view(values.type):
        values = values.cast(pa.string())
    if not pa.types.is_string(values.type):
        raise TypeError(f"expected an array of strings, got Arrow type {values.type}")
    return values


def bounded(texts: pa.Array, max_chars: int = MAX_CHARS) -> pa.Array:
    """The first max_chars characters of each text (invalid UTF-8 cannot occur in Arrow strings)."""
    return pc.utf8_slice_codeunits(texts, 0, max_chars)


def md5_64(strings: pa.Array) -> np.ndarray:
    """Stable 64-bit hash per string: the first 8 bytes of MD5(utf-8), read little-endian.

    Reproducible anywhere: ``int.from_bytes(hashlib.md5(s.encode()).digest()[:8], "little")``.
    Nulls hash to 0.  Only distinct values are hashed (dictionary encoding), so
    repetitive input such as tokens or templates costs little.
    """
    strings = as_strings(strings)
    if len(strings) == 0:
        return np.zeros(0, dtype=np.uint64)
    enc = pc.dictionary_encode(strings)
    cur = _cursor()
    try:
        rel = cur.from_arrow(pa.table({"s": enc.dictionary}))
        hashed = rel.project("md5_number_upper(s) AS h").to_arrow_table().column("h")
    finally:
        cur.close()
    uniq_h = np.asarray(hashed.to_numpy(zero_copy_only=False), dtype=np.uint64)
    idx = enc.indices
    out = np.zeros(len(strings), dtype=np.uint64)
    valid = ~np.asarray(pc.is_null(idx).to_numpy(zero_copy_only=False))
    out[valid] = uniq_h[idx.filter(pc.is_valid(idx)).to_numpy()]
    return out


_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: a fast bijective mixer of uint64 (wrapping arithmetic)."""
    x = np.asarray(x, dtype=np.uint64)
    with np.errstate(over="ignore"):
        x = x ^ (x >> np.uint64(30))
        x = x * _M1
        x = x ^ (x >> np.uint64(27))
        x = x * _M2
        x = x ^ (x >> np.uint64(31))
    return x


def valid_mask(arr: pa.Array) -> np.ndarray:
    """Boolean numpy mask, True where the Arrow value is not null."""
    return np.asarray(pc.is_valid(arr).to_numpy(zero_copy_only=False), dtype=bool)


def list_parent_indices(lists: pa.ListArray) -> np.ndarray:
    """For a list array, the row index each flattened element belongs to."""
    return np.asarray(pc.list_parent_indices(lists).to_numpy(zero_copy_only=False), dtype=np.int64)


def file_stamps(paths: Sequence[Path]) -> tuple[tuple[Path, int, int], ...]:
    """(path, mtime_ns, size) per existing file: a cache key that changes when a list file is edited."""
    out = []
    for p in paths:
        st = p.stat() if p.exists() else None
        out.append((p, st.st_mtime_ns if st else -1, st.st_size if st else -1))
    return tuple(out)


def in_chunks(fn: Callable[[pa.Array], T], arr: pa.Array) -> list[T]:
    """fn over contiguous slices of arr, results in order.

    Batches of PARALLEL_MIN_ROWS or more are split across THREADS threads,
    and no slice is longer than MAX_CHUNK_ROWS, so memory stays bounded
    whatever the batch size (feature matrices and shingle arrays cost tens
    of bytes per word).
    """
    n = len(arr)
    min_rows, max_rows = PARALLEL_MIN_ROWS, MAX_CHUNK_ROWS
    if n < min_rows or (THREADS == 1 and n <= max_rows):
        return [fn(arr)]
    step = min(-(-n // THREADS), max_rows)
    parts = [arr.slice(i, step) for i in range(0, n, step)]
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        return list(pool.map(fn, parts))
