"""Shared helpers of the incremental tests: the demo split into daily files, feature comparison."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from distillwatch.simulate.config import preset
from distillwatch.simulate.engine import run


def simulate_demo(out: Path, scale: float = 1.0) -> Path:
    """The simulator's demo preset (seed 0) in ``out``."""
    run(preset("demo", scale=scale, seed=0), out)
    return out


def split_days(exchanges: Path, into: Path) -> list[Path]:
    """One Parquet file per UTC day of ``exchanges``, time-ordered, named YYYY-MM-DD.parquet."""
    into.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    days = [
        r[0]
        for r in con.execute(
            "SELECT DISTINCT CAST(ts AS DATE) d FROM read_parquet(?) ORDER BY d", [str(exchanges)]
        ).fetchall()
    ]
    paths = []
    for d in days:
        path = into / f"{d.isoformat()}.parquet"
        rel = con.execute(
            "SELECT * FROM read_parquet(?) WHERE CAST(ts AS DATE) = ? ORDER BY ts, request_id",
            [str(exchanges), d],
        ).to_arrow_table()
        pq.write_table(rel, path)
        paths.append(path)
    return paths


def table_differences(a: pa.Table, b: pa.Table, rel: float = 1e-9) -> list[str]:
    """Columns where ``a`` and ``b`` differ: numbers beyond ``rel`` (relative and absolute), anything else exactly."""
    problems = []
    if a.column_names != b.column_names:
        return [f"columns differ: {sorted(set(a.column_names) ^ set(b.column_names))}"]
    if a.num_rows != b.num_rows:
        return [f"rows differ: {a.num_rows} vs {b.num_rows}"]
    for name in a.column_names:
        x, y = a.column(name), b.column(name)
        numeric = all(pa.types.is_integer(t) or pa.types.is_floating(t) for t in (x.type, y.type))
        if numeric:
            xa = pc.cast(x, pa.float64()).to_numpy(zero_copy_only=False)
            ya = pc.cast(y, pa.float64()).to_numpy(zero_copy_only=False)
            exact = pa.types.is_integer(x.type) and pa.types.is_integer(y.type)
            same = (
                np.array_equal(xa, ya, equal_nan=True)
                if exact
                else np.allclose(xa, ya, rtol=rel, atol=rel, equal_nan=True)
            )
            if not same:
                problems.append(f"{name}: values differ")
        elif not x.cast(y.type).equals(y):
            problems.append(f"{name}: values differ")
    return problems
