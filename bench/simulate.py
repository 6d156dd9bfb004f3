"""Simulator throughput and peak memory.

    .venv/bin/python bench/simulate.py                      # reported-campaign at --scale 0.05
    .venv/bin/python bench/simulate.py --scale 0.2 --evasion strong
    .venv/bin/python bench/simulate.py --full --out /data/rc # the whole reported campaign (~90M rows)

Prints rows per second and peak resident memory (``resource.getrusage``),
the numbers docs/simulator.md quotes.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from pathlib import Path

from distillwatch.simulate.config import EVASION_LEVELS, PRESETS, preset
from distillwatch.simulate.engine import run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="reported-campaign", choices=PRESETS)
    ap.add_argument("--scale", type=float, default=0.05)
    ap.add_argument("--full", action="store_true", help="scale 1.0 (the full preset; reported-campaign is ~90M rows)")
    ap.add_argument("--evasion", default="none", choices=EVASION_LEVELS)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, help="keep the output here (default: a temporary directory, removed)")
    args = ap.parse_args()
    scale = 1.0 if args.full else args.scale
    out = args.out or Path(tempfile.mkdtemp(prefix="dw-sim-bench-"))
    cfg = preset(args.preset, scale=scale, seed=args.seed, evasion=args.evasion)
    last = [time.perf_counter()]

    def tick(rows: int, day: int, days: int) -> None:
        now = time.perf_counter()
        if now - last[0] > 30:
            last[0] = now
            print(f"  day {day}/{days}: {rows:,} rows", flush=True)

    t0, c0 = time.perf_counter(), time.process_time()
    summary = run(cfg, out, progress=tick)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # Linux reports KiB
    size_gb = sum(f.stat().st_size for f in out.glob("*.parquet")) / 1e9
    print(f"preset {args.preset} scale {scale} evasion {args.evasion} seed {args.seed}")
    print(f"accounts {summary.accounts:,}  exchanges {summary.exchanges:,}  campaigns {dict(summary.exchanges_by_campaign)}")
    # CPU time as well as wall time: on a shared machine the wall clock mostly measures the neighbours.
    print(f"seconds {seconds:,.1f}  rows/s {summary.exchanges / seconds:,.0f}  cpu seconds {cpu:,.1f}  "
          f"rows per cpu-second {summary.exchanges / cpu:,.0f}  peak memory {peak_gb:.2f} GB  output {size_gb:.2f} GB")
    if args.out is None:
        shutil.rmtree(out)


if __name__ == "__main__":
    main()
