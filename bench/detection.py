"""Detection quality and speed on simulated traffic (issue 4's quality bar).

Simulates each preset at each evasion level, scans it, evaluates against the
labels and prints one table: recall and false-positive rate (verdict attack),
recall counting suspects, AUROC, `attack` verdicts among the hard benign groups,
benign accounts flagged `attack` per group, and the scan's wall time.  Bars: recall >= 99% at FPR <= 0.1% (evasion none and
moderate), recall >= 90% at strong, and no university / coding-agent /
batch-evaluation / reseller account flagged `attack`.

    .venv/bin/python bench/detection.py                 # demo and reported-campaign --scale 0.01
    .venv/bin/python bench/detection.py --presets demo --evasion none --keep /tmp/bench
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

HARD_GROUPS = ("university", "coding_agents", "batch_eval", "reseller")
PRESETS = {"demo": [], "reported-campaign": ["--scale", "0.01"]}


def run(preset: str, evasion: str, work: Path, seed: int) -> dict:
    from distillwatch.evaluate import evaluate, write_metrics
    from distillwatch.pipeline import scan

    data = work / f"{preset}-{evasion}"
    if not (data / "labels.parquet").exists():
        cmd = [sys.executable, "-m", "distillwatch.cli.main", "simulate", "--preset", preset, *PRESETS[preset],
               "--evasion", evasion, "--seed", str(seed), "--out", str(data)]
        subprocess.run(cmd, check=True, capture_output=True)
    out = data / "results"
    t0 = time.perf_counter()
    result = scan(data / "exchanges.parquet", out, accounts=data / "accounts.parquet", db=data / "store.duckdb")
    seconds = time.perf_counter() - t0
    m = evaluate(out, data / "labels.parquet")
    write_metrics(out, m)
    hard = sum(m["per_group"].get(g, {}).get("attack", 0) for g in HARD_GROUPS)
    return {"preset": preset, "evasion": evasion, "m": m, "hard": hard, "seconds": seconds,
            "exchanges": result.exchanges, "accounts": result.accounts}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", nargs="+", default=list(PRESETS), choices=list(PRESETS))
    ap.add_argument("--evasion", nargs="+", default=["none", "moderate", "strong"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", type=Path, help="keep simulated data and results here (default: a temporary folder)")
    args = ap.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="dw-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    table = Table(title="distillwatch detection benchmark", title_justify="left")
    for col in ("preset", "evasion", "accounts", "exchanges", "recall", "FPR", "precision", "recall+suspect",
                "AUROC", "hard-group attacks", "FP by group", "scan s", "bar"):
        table.add_column(col, justify="left" if col in ("preset", "evasion", "bar") else "right")
    console = Console(width=200)
    for preset in args.presets:
        for evasion in args.evasion:
            r = run(preset, evasion, work, args.seed)
            m = r["m"]
            need = 0.90 if evasion == "strong" else 0.99
            ok = (m["recall"] or 0) >= need and (m["fpr"] or 0) <= 0.001 and r["hard"] == 0
            f = lambda x: "-" if x is None else f"{x:.4f}"  # noqa: E731
            by_group = ", ".join(f"{g} {v['attack']}" for g, v in sorted(m["per_group"].items()) if v["attack"]) or "-"
            table.add_row(preset, evasion, f"{r['accounts']:,}", f"{r['exchanges']:,}", f(m["recall"]), f(m["fpr"]),
                          f(m["precision"]), f(m["with_suspect"]["recall"]), f(m["auroc"]), str(r["hard"]), by_group,
                          f"{r['seconds']:.1f}", "[green]met[/]" if ok else "[red]missed[/]")
            console.print(f"{preset}/{evasion}: recall {f(m['recall'])} fpr {f(m['fpr'])} in {r['seconds']:.1f}s")
    console.print(table)
    console.print(f"data and results in {work}")


if __name__ == "__main__":
    main()
