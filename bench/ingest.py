"""Benchmark ingest on N rows of contract Parquet: rows/s and peak memory.

    .venv/bin/python bench/ingest.py 2000000 [--dir /tmp/dw-bench] [--format parquet|jsonl|csv]
    .venv/bin/python bench/ingest.py --input /tmp/dw-scale-005/data/exchanges.parquet

Generates the rows (seeded, vectorised; 2.6 KB of templated text per row, in
12 of the contract's columns, so Parquet input is validated and rewritten), or
takes an existing file with ``--input`` (the simulator's output holds exactly
the contract's columns, so a clean file is validated and copied).  Runs
``ingest`` in a fresh child process so its peak RSS is its own, and compares
Parquet with a bare DuckDB read of every column (the floor any validation sits
on) and a bare DuckDB read-and-rewrite.  Prints the load average next to every
timing: on a shared machine the figures are upper bounds.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

CHUNK = 250_000


def _chunk(rng: np.random.Generator, start: int, n: int) -> pa.Table:
    idx = np.arange(start, start + n)
    accounts = rng.integers(0, max(n // 40, 1000), n)
    words = np.array(
        ["refactor", "the", "function", "explain", "step", "by", "prove", "python", "agent", "loop", "why"]
    )
    # Pools as Arrow arrays and `take`: numpy fixed-width unicode would blow up memory.
    templates = pa.array([" ".join(rng.choice(words, k)) for k in rng.integers(20, 400, 512)])
    ts = np.datetime64("2026-04-22T00:00:00", "us") + rng.integers(0, 44 * 86400 * 10**6, n).astype(
        "timedelta64[us]"
    )
    ip_pool = pa.array(
        [f"203.0.{i // 256}.{i % 256}" for i in range(4096)] + [f"2001:DB8::{i:x}" for i in range(1024)]
    )
    return pa.table(
        {
            "request_id": pa.array(np.char.add("req-", idx.astype(str))),
            "account_id": pa.array(np.char.add("acct-", accounts.astype(str))),
            "ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
            "ip": ip_pool.take(rng.integers(0, len(ip_pool), n)),
            "prompt": templates.take(rng.integers(0, len(templates), n)),
            "response": templates.take(rng.integers(0, len(templates), n)),
            "model": pa.array(np.full(n, "model-large")),
            "input_tokens": pa.array(rng.integers(10, 4000, n)),
            "output_tokens": pa.array(rng.integers(10, 4000, n)),
            "n_tools": pa.array(rng.integers(0, 5, n)),
            "user_agent": pa.array(np.full(n, "python-httpx/0.27.0")),
            "country": pa.array(rng.choice(np.array(["US", "DE", "SG", "BR"]), n)),
        }
    )


def generate(n: int, path: Path, fmt: str, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    if fmt == "parquet":
        with pq.ParquetWriter(path, _chunk(rng, 0, 1).schema) as w:
            for start in range(0, n, CHUNK):
                w.write_table(_chunk(rng, start, min(CHUNK, n - start)))
        return
    with open(path, "wb") as f:
        for start in range(0, n, CHUNK):
            t = _chunk(rng, start, min(CHUNK, n - start))
            if fmt == "csv":
                t = t.set_column(2, "ts", t["ts"].cast(pa.string()))
                buf = pa.BufferOutputStream()
                pacsv.write_csv(t, buf, pacsv.WriteOptions(include_header=start == 0))
                f.write(buf.getvalue().to_pybytes())
            else:
                rows = t.set_column(2, "ts", t["ts"].cast(pa.string())).to_pylist()
                f.write("".join(json.dumps(r) + "\n" for r in rows).encode())


def _peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM: reset by exec, unlike ru_maxrss which a spawned child inherits)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child_ingest(path: str, out: str, queue: mp.Queue) -> None:
    from distillwatch.ingest import ingest

    t0 = time.perf_counter()
    result = ingest(path, work_dir=out)
    elapsed = time.perf_counter() - t0
    queue.put({"seconds": elapsed, "peak_rss_mb": _peak_rss_mb(), "counts": result.counts})


def _child_duckdb(path: str, out: str, rewrite: bool, queue: mp.Queue) -> None:
    import duckdb

    t0 = time.perf_counter()
    con = duckdb.connect()
    if rewrite:
        con.sql("SELECT * FROM read_parquet($path)", params={"path": path}).write_parquet(
            str(Path(out) / "bare.parquet")
        )
    else:  # touch every value of every column, return one row
        names = con.execute(
            "SELECT name FROM parquet_schema($path) WHERE num_children IS NULL", {"path": path}
        ).fetchall()
        touch = ", ".join(f'count("{n}"), max(strlen(CAST("{n}" AS VARCHAR)))' for (n,) in names)
        con.execute(f"SELECT {touch} FROM read_parquet($path)", {"path": path}).fetchall()  # noqa: S608 - file's own column names
    queue.put({"seconds": time.perf_counter() - t0, "peak_rss_mb": _peak_rss_mb()})


def _load() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


def _in_child(target, *args) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    p = ctx.Process(target=target, args=(*args, queue))
    p.start()
    p.join()  # results are small: the child can put them and exit
    if p.exitcode != 0:
        raise SystemExit(f"{target.__name__} failed (exit code {p.exitcode})")
    return queue.get()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("rows", type=int, nargs="?", default=1_000_000)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/dw-bench"))
    ap.add_argument("--format", choices=["parquet", "jsonl", "csv"], default="parquet")
    ap.add_argument("--input", type=Path, help="ingest this file instead of generating one")
    args = ap.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    path = args.dir / f"exchanges-{args.rows}.{args.format}"
    if args.input is not None:
        path = args.input
        args.format = "parquet" if path.suffix == ".parquet" else args.format
    elif not path.exists():
        t0 = time.perf_counter()
        generate(args.rows, path, args.format)
        print(
            f"generated {args.rows:,} rows in {time.perf_counter() - t0:.1f}s -> {path} ({path.stat().st_size / 1e6:.0f} MB)"
        )
    load = _load()
    run = _in_child(_child_ingest, str(path), str(args.dir / "out"))
    c = run["counts"]["exchanges"]
    rows = c["read"]
    assert rows == c["accepted"] + c["quarantined"]
    print(
        f"ingest {args.format}: {rows:,} rows in {run['seconds']:.1f}s = {rows / run['seconds']:,.0f} rows/s, "
        f"peak RSS {run['peak_rss_mb']:,.0f} MB, quarantined {c['quarantined']:,} (load {load} -> {_load()})"
    )
    if args.format == "parquet":
        for rewrite, label in ((False, "read of every column"), (True, "read+rewrite")):
            load = _load()
            bare = _in_child(_child_duckdb, str(path), str(args.dir), rewrite)
            print(
                f"bare DuckDB {label}: {bare['seconds']:.1f}s = {rows / bare['seconds']:,.0f} rows/s, "
                f"peak RSS {bare['peak_rss_mb']:,.0f} MB; ingest/bare = {run['seconds'] / bare['seconds']:.1f}x "
                f"(load {load} -> {_load()})"
            )


if __name__ == "__main__":
    main()
