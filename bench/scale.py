"""Full-scale benchmark: generate the reported campaign, scan it end to end, compare with the floor.

    .venv/bin/python bench/scale.py [--scale 1.0] [--out /tmp/dw-scale] [--skip-generate]
                                    [--engine duckdb|spark] [--evasion none] [--profile]

Stages, each in its own child process so its wall time and peak memory are its own:

1. ``distillwatch simulate --preset reported-campaign --scale S`` (skipped with
   ``--skip-generate`` when OUT/data already holds the files);
2. ``distillwatch scan`` of that data (timings per stage come from run.json);
3. the floor: one bare DuckDB query over the same Parquet that reads every
   column the scan reads (per-account count, distinct addresses and days,
   total prompt/system length, token sums, ...). No detector can be faster than
   reading its input once; the ratio scan/floor says how far from that we are;
4. ``distillwatch evaluate`` of the verdicts against the simulator's labels (when
   OUT/data/labels.parquet exists): precision, recall and FPR of ``attack`` at
   this scale, and the benign accounts flagged per group.

Peak memory is the child's maximum resident set size, read from ``os.wait4``
(the per-child form of ``getrusage(RUSAGE_CHILDREN)``: the latter is the
maximum over *all* children so far, so the simulator's peak would mask the
scan's). The scan also records its peak per stage in run.json (``peak_rss_gb``,
taken from the kernel's high-water mark, which it resets at each stage); that
reset also resets what ``wait4`` reports, so the scan's peak is the largest of
its stage peaks and the ``wait4`` figure. ``--profile`` runs the scan under py-spy and writes a flame graph
(SVG) and a raw collapsed-stack file next to the results.

The figures are printed as a table and written to OUT/scale.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import pyarrow.parquet as pq

BIN = Path(sys.executable).parent
# Columns of the exchanges table that the scan reads (contract fields except `response`,
# which no signal uses); the floor reads the same ones so the comparison is fair.
SCAN_COLUMNS = (
    "request_id", "account_id", "ts", "ip", "prompt", "system", "model", "input_tokens", "output_tokens",
    "n_tools", "conversation_id", "user_agent", "api_key_id", "org_id", "asn", "country",
)  # fmt: skip


@dataclass
class Step:
    name: str
    seconds: float
    cpu_seconds: float  # user + system: less sensitive than wall time to other load on the machine
    peak_rss_gb: float
    returncode: int


def run_child(name: str, argv: list[str], log: Path, env: dict[str, str] | None = None) -> Step:
    """Run ``argv`` to completion; wall time and the child's own peak RSS (not its siblings')."""
    t0 = time.perf_counter()
    with open(log, "wb") as fh:
        proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    # Linux reports ru_maxrss in KiB.
    cpu = usage.ru_utime + usage.ru_stime
    step = Step(name, round(seconds, 2), round(cpu, 2), round(usage.ru_maxrss / 1024**2, 3), proc.returncode)
    if step.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise SystemExit(f"{name} failed (exit {step.returncode}); last lines of {log}:\n{tail}")
    return step


FLOOR_SCRIPT = """
import sys, time, duckdb
path, cols = sys.argv[1], sys.argv[2].split(",")
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
present = {r[0] for r in con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [path]).fetchall()}
def q(c):
    return '"' + c.replace('"', '""') + '"'
# One aggregate per column the scan reads, grouped by account: a scan cannot do less work.
aggs = ["count(*)", f"count(DISTINCT {q('ip')})", f"count(DISTINCT CAST({q('ts')} AS DATE))", f"min({q('ts')})",
        f"max({q('ts')})", f"sum(length({q('prompt')}))", f"count(DISTINCT hash({q('request_id')}))"]
for c in cols:
    if c not in present or c in ("account_id", "ip", "ts", "prompt", "request_id"):
        continue
    aggs.append(f"max(length(CAST({q(c)} AS VARCHAR)))")
t0 = time.perf_counter()
n = con.execute(
    f"SELECT count(*), sum(c) FROM (SELECT {q('account_id')}, {', '.join(aggs)}, count(*) AS c "
    f"FROM read_parquet(?) GROUP BY {q('account_id')})", [path]
).fetchone()
print(f"floor_seconds={time.perf_counter() - t0:.3f} accounts={n[0]} rows={n[1]}")
"""


def floor(parquet: Path, log: Path) -> tuple[Step, float, int]:
    """The bare DuckDB query; returns (step, query seconds without interpreter start, rows)."""
    # Identifiers come from the fixed SCAN_COLUMNS list (quoted); the path is a query parameter.
    step = run_child("floor", [sys.executable, "-c", FLOOR_SCRIPT, str(parquet), ",".join(SCAN_COLUMNS)], log)
    found = re.findall(r"floor_seconds=([\d.]+) accounts=(\d+) rows=(\d+)", log.read_text(errors="replace"))
    if not found:
        raise SystemExit(f"floor query printed no result; see {log}")
    fields = dict(zip(("floor_seconds", "accounts", "rows"), found[-1], strict=True))
    return step, float(fields["floor_seconds"]), int(fields["rows"])


def profile_summary(raw: Path, top: int = 20) -> list[tuple[str, float]]:
    """Share of samples under each distillwatch function (inclusive), from py-spy's raw collapsed stacks."""
    inclusive: dict[str, int] = {}
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        # Per function (line numbers dropped); each counts once per sample even when it recurses.
        for frame in {re.sub(r":\d+\)$", ")", f) for f in stack.split(";") if "distillwatch/" in f}:
            inclusive[frame] = inclusive.get(frame, 0) + n
    ranked = sorted(inclusive.items(), key=lambda kv: -kv[1])[:top]
    return [(frame, n / total) for frame, n in ranked] if total else []


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--scale", type=float, default=1.0, help="reported-campaign scale (1.0 = 28.8M campaign + 61M benign)"
    )
    ap.add_argument("--out", type=Path, default=Path("/tmp/dw-scale"), help="working directory")
    ap.add_argument("--skip-generate", action="store_true", help="reuse OUT/data from an earlier run")
    ap.add_argument(
        "--generate-only", action="store_true", help="write OUT/data and stop (start it early: ~20 min at 1x)"
    )
    ap.add_argument("--evasion", default="none", choices=("none", "moderate", "strong"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--engine", default="duckdb", choices=("duckdb", "spark"))
    ap.add_argument("--spark-master", default=None, help="with --engine spark (default local[*])")
    ap.add_argument(
        "--profile", action="store_true", help="run the scan under py-spy (needs py-spy installed)"
    )
    ap.add_argument("--config", type=Path, help="detection configuration for the scan (e.g. max_keys on link_near_duplicate)")
    args = ap.parse_args(argv)

    out: Path = args.out
    data = out / "data"
    results = out / "results"
    out.mkdir(parents=True, exist_ok=True)
    steps: list[Step] = []
    dw = str(BIN / "distillwatch")

    if not args.skip_generate:
        if data.exists():
            shutil.rmtree(data)
        steps.append(
            run_child(
                "simulate",
                [
                    dw,
                    "simulate",
                    "--preset",
                    "reported-campaign",
                    "--scale",
                    str(args.scale),
                    "--seed",
                    str(args.seed),
                    "--evasion",
                    args.evasion,
                    "--out",
                    str(data),
                ],
                out / "simulate.log",
            )
        )
    exchanges = data / "exchanges.parquet"
    if args.generate_only:
        for st in steps:
            print(
                f"{st.name}: {st.seconds:.1f} s wall, {st.cpu_seconds:.1f} CPU s, peak RSS {st.peak_rss_gb:.2f} GB"
            )
        return 0
    if not exchanges.exists():
        raise SystemExit(f"{exchanges}: not found (run without --skip-generate first)")
    rows = pq.ParquetFile(exchanges).metadata.num_rows if exchanges.is_file() else None

    if results.exists():
        shutil.rmtree(results)
    store = out / "store.duckdb"
    store.unlink(missing_ok=True)
    scan_argv = [
        dw,
        "scan",
        str(exchanges),
        "--accounts",
        str(data / "accounts.parquet"),
        "--out",
        str(results),
        "--db",
        str(store),
        "--engine",
        args.engine,
    ]
    if args.spark_master:
        scan_argv += ["--spark-master", args.spark_master]
    if args.config:
        scan_argv += ["--config", str(args.config)]
    if args.profile:
        spy = shutil.which("py-spy") or str(BIN / "py-spy")
        scan_argv = [
            spy,
            "record",
            "--rate",
            "20",
            "--format",
            "raw",
            "-o",
            str(out / "scan.pyspy.txt"),
            "--",
        ] + scan_argv
    # The machine may be shared: the load average before and after says how far to trust wall times.
    load_before = _loadavg()
    steps.append(run_child("scan", scan_argv, out / "scan.log"))
    load_after = _loadavg()
    run = json.loads((results / "run.json").read_text())
    rows = rows or int(run["counts"].get("rows_read", 0))

    floor_step, floor_query, floor_rows = floor(exchanges, out / "floor.log")
    steps.append(floor_step)
    detection = evaluate(dw, results, data / "labels.parquet", out / "evaluate.log")

    scan = next(s for s in steps if s.name == "scan")
    # The scan resets its high-water mark at every stage (see the module doc): its peak is the largest one.
    stage_peaks = {k: float(v) for k, v in run.get("peak_rss_gb", {}).items()}
    scan.peak_rss_gb = max([scan.peak_rss_gb, *stage_peaks.values()])
    timings = {k: float(v) for k, v in run.get("timings", {}).items()}
    # What run.json does not time: interpreter start, imports, store tracking, the report.
    timings["other (start-up, track, report)"] = round(scan.seconds - sum(timings.values()), 2)
    summary = {
        "scale": args.scale,
        "engine": args.engine,
        "rows": rows,
        "accounts": run.get("accounts"),
        "campaigns": run.get("campaigns"),
        "verdicts": run.get("verdicts"),
        "steps": [asdict(s) for s in steps],
        "scan_stage_seconds": timings,
        "scan_stage_peak_rss_gb": stage_peaks,
        "scan_rows_per_second": round(rows / scan.seconds) if scan.seconds else None,
        "floor_query_seconds": floor_query,
        "floor_rows": floor_rows,
        "floor_rows_per_second": round(rows / floor_query) if floor_query else None,
        "scan_over_floor": round(scan.seconds / floor_query, 2) if floor_query else None,
        "targets": {
            "peak_rss_gb<=8": scan.peak_rss_gb <= 8.0,
            "scan<=4x floor": scan.seconds <= 4 * floor_query,
        },
        "detection": detection,
        "profiled": args.profile,
        "loadavg_before_scan": load_before,
        "loadavg_after_scan": load_after,
    }
    if args.profile and (out / "scan.pyspy.txt").exists():
        summary["profile_inclusive_share"] = profile_summary(out / "scan.pyspy.txt")
    (out / "scale.json").write_text(json.dumps(summary, indent=2))
    _print(summary)
    return 0


def evaluate(dw: str, results: Path, labels: Path, log: Path) -> dict | None:
    """Precision, recall and FPR of verdict `attack` against the simulator's labels (None without labels).

    Speed at scale is worth nothing if the verdicts are wrong at scale: the first default-configuration scan
    that completed at 1x flagged 1,716 benign VPN customers that no smaller scale showed.
    """
    if not labels.exists():
        return None
    run_child("evaluate", [dw, "evaluate", "--results", str(results), "--labels", str(labels)], log)
    m = json.loads((results / "metrics.json").read_text())
    flagged = {g: v["attack"] for g, v in m.get("per_group", {}).items() if v.get("attack")}
    return {"precision": m["precision"], "recall": m["recall"], "fpr": m["fpr"], "benign_flagged_by_group": flagged}


def _loadavg() -> list[float]:
    """1, 5 and 15 minute load averages (empty where /proc is missing)."""
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return []


def _print(s: dict) -> None:
    print(
        f"reported-campaign scale {s['scale']}: {s['rows']:,} exchanges, {s['accounts']:,} accounts, "
        f"{s['campaigns']} campaigns, verdicts {s['verdicts']}  (engine {s['engine']})"
    )
    print(f"{'step':<34}{'wall s':>10}{'CPU s':>10}{'peak RSS GB':>14}")
    for st in s["steps"]:
        print(f"{st['name']:<34}{st['seconds']:>10.1f}{st['cpu_seconds']:>10.1f}{st['peak_rss_gb']:>14.2f}")
    print(f"load average before / after the scan: {s['loadavg_before_scan']} / {s['loadavg_after_scan']}")
    peaks = s.get("scan_stage_peak_rss_gb", {})
    print(f"scan stages (run.json timings and peaks):{'peak RSS GB':>17}" if peaks else "scan stages (run.json timings):")
    for k, v in s["scan_stage_seconds"].items():
        # "other" covers start-up, tracking and the report: the scan's "between stages" peak.
        peak = peaks.get(k, peaks.get("between stages") if k.startswith("other") else None)
        print(f"  {k:<32}{v:>10.1f}" + (f"{peak:>14.2f}" if peak is not None else ""))
    print(
        f"scan rows/s {s['scan_rows_per_second']:,}; floor query {s['floor_query_seconds']:.1f} s "
        f"({s['floor_rows_per_second']:,} rows/s); scan/floor = {s['scan_over_floor']}"
    )
    d = s.get("detection")
    if d:
        def fmt(x: float | None) -> str:
            return "n/a" if x is None else f"{x:.4f}"

        print(
            f"detection (verdict attack, simulator's labels): precision {fmt(d['precision'])}, recall {fmt(d['recall'])}, "
            f"FPR {fmt(d['fpr'])}; benign accounts flagged by group: {d['benign_flagged_by_group'] or 'none'}"
        )
    for frame, share in s.get("profile_inclusive_share", []):
        print(f"  {share:6.1%}  {frame}")
    print("targets:", ", ".join(f"{k}: {'met' if v else 'NOT met'}" for k, v in s["targets"].items()))


if __name__ == "__main__":
    raise SystemExit(main())
