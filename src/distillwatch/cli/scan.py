"""`distillwatch scan`, `distillwatch evaluate` and `distillwatch signals` (owned by the detect stage)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from distillwatch.cli.progress import stage_progress

SCAN_HELP = """Detect distillation campaigns: score every account, link accounts into campaigns, explain every verdict.

Runs ingest -> enrich -> features -> signals -> link -> score -> campaigns and writes the results directory OUT: accounts.parquet (one row per account: score, verdict attack/suspect/benign, campaign_id, reasons), campaigns.json, signals.parquet, edges.parquet, daily.parquet, population.json, run.json, quarantine.parquet and the report. Verdict thresholds are calibrated on the traffic itself to --target-fpr.

With --since and --until (and --db), the slice [SINCE, UNTIL) of EXCHANGES is processed as one increment on top of the state kept in the store: its per-row work is done once and stored, features are merged from the stored partial aggregates, and account and campaign state are updated (docs/incremental.md). A slice overlapping one already processed is refused unless --reprocess.

Example:

  distillwatch scan demo/exchanges.parquet --accounts demo/accounts.parquet --out demo/results

  distillwatch scan logs/all.parquet --since 2026-05-04 --until 2026-05-05 --db dw.duckdb --out results/2026-05-04
"""

EVALUATE_HELP = """Measure a scan against labels: precision, recall and false-positive rate (verdict attack, and again counting suspect), recall per campaign, campaign purity, false positives per benign group, AUROC. Prints a table and writes RESULTS/metrics.json.

Example:

  distillwatch evaluate --results demo/results --labels demo/labels.parquet
"""

SIGNALS_HELP = """List the detection signals: id, family, severity, weight, whether enabled, and what each one means.

Example:

  distillwatch signals --config my-signals.yaml
"""


def _fail(console: Console, message: str) -> None:
    console.print(f"[red]error:[/] {escape(message)}")
    raise typer.Exit(2)


@contextmanager
def _input_errors(console: Console, *expected: type[Exception]) -> Iterator[None]:
    """One line naming the problem, and exit 2, for input errors an analyst can fix (``expected``: bad
    configuration, a refused slice), a missing file or an unreadable input."""
    try:
        yield
    except expected as exc:
        _fail(console, str(exc))
    except FileNotFoundError as exc:
        _fail(console, f"{exc.filename}: not found" if exc.filename else str(exc))
    except Exception as exc:  # the ingest stage's typed error for unreadable inputs
        if type(exc).__name__ == "UnreadableInputError":
            _fail(console, str(exc))
        raise


def register(app: typer.Typer) -> None:
    """Register the detection commands on ``app``."""

    @app.command("scan", help=SCAN_HELP, no_args_is_help=True)
    def scan_command(
        exchanges: Annotated[Path, typer.Argument(help="exchanges: Parquet file or directory, JSONL(.gz) or CSV")],
        out: Annotated[Path, typer.Option("--out", help="results directory")],
        accounts: Annotated[Path | None, typer.Option("--accounts", help="accounts table (optional)")] = None,
        db: Annotated[Path | None, typer.Option("--db", help="the store (default $DISTILLWATCH_DB or ./distillwatch.duckdb)")] = None,
        config: Annotated[Path | None, typer.Option("--config", help="detection config YAML (default: the shipped one)")] = None,
        target_fpr: Annotated[float | None, typer.Option("--target-fpr", min=1e-6, max=0.5, help="benign accounts flagged attack, at most")] = None,
        network_list: Annotated[list[Path] | None, typer.Option("--network-list", help="extra CIDR file (datacenter/VPN/Tor); repeatable")] = None,
        mmdb: Annotated[Path | None, typer.Option("--mmdb", help="MaxMind-format database for address facts")] = None,
        email_list: Annotated[list[Path] | None, typer.Option("--email-list", help="extra disposable-domain file; repeatable")] = None,
        engine: Annotated[str, typer.Option("--engine", help="duckdb (embedded) or spark")] = "duckdb",
        spark_master: Annotated[str | None, typer.Option("--spark-master", help="with --engine spark: local[*] (default), spark://host:7077, yarn, k8s://...")] = None,
        since: Annotated[str | None, typer.Option("--since", help="incremental: start of the slice (UTC, ISO 8601, inclusive)")] = None,
        until: Annotated[str | None, typer.Option("--until", help="incremental: end of the slice (UTC, ISO 8601, exclusive)")] = None,
        reprocess: Annotated[bool, typer.Option("--reprocess", help="incremental: replace partitions the slice overlaps")] = False,
        window_days: Annotated[float | None, typer.Option("--window-days", min=0.01, help="incremental: features over the last N days (default: all retained)")] = None,
        compact_days: Annotated[float | None, typer.Option("--compact-days", min=0.0, help="incremental: fold partitions older than N days into one (exact; they can no longer be reprocessed)")] = None,
    ) -> None:
        from distillwatch.features.enrichment import Lists
        from distillwatch.pipeline import STAGES, scan
        from distillwatch.signals.config import ConfigError

        console = Console(stderr=True)
        from distillwatch.engine import ENGINES

        if engine not in ENGINES:
            _fail(console, f"--engine {engine!r}: choose one of {', '.join(ENGINES)}")
        if spark_master and engine != "spark":
            _fail(console, "--spark-master needs --engine spark")
        if spark_master:
            # engine.connect reads $SPARK_MASTER; this process is the Spark driver, so setting it here is local.
            os.environ["SPARK_MASTER"] = spark_master
        lists = Lists(network_paths=list(network_list or []), mmdb=mmdb, email_paths=list(email_list or []))
        if since is not None or until is not None:
            _incremental(console, exchanges, out, accounts, db, config, target_fpr, lists, engine, since, until, reprocess,
                         window_days, compact_days)
            return
        with _input_errors(console, ConfigError), stage_progress(console, "scan", STAGES) as on_stage:
            result = scan(exchanges, out, accounts=accounts, db=db, config=config, target_fpr=target_fpr,
                          engine=engine, lists=lists, on_stage=on_stage)
        _summary(result)

    def _incremental(console, exchanges, out, accounts, db, config, target_fpr, lists, engine, since, until, reprocess,
                     window_days, compact_days) -> None:
        from distillwatch.incremental import IncrementError, run_increment
        from distillwatch.incremental.progress import INCREMENT_STAGES, parse_utc, print_increment
        from distillwatch.signals.config import ConfigError

        if since is None or until is None:
            _fail(console, "give both --since and --until")
        if db is None:
            _fail(console, "--since/--until keep state in the store: give --db FILE")
        if engine != "duckdb":
            _fail(console, "incremental scans run on the duckdb engine (their state is in the DuckDB store)")
        try:
            t0, t1 = parse_utc(since, "--since"), parse_utc(until, "--until")
        except ValueError as exc:
            _fail(console, str(exc))
        with _input_errors(console, IncrementError, ConfigError), stage_progress(console, "increment", INCREMENT_STAGES) as on_stage:
            result = run_increment(exchanges, db, out, accounts=accounts, since=t0, until=t1, reprocess=reprocess,
                                   config=config, target_fpr=target_fpr, lists=lists, window_days=window_days,
                                   compact_days=compact_days, on_stage=on_stage)
        print_increment(Console(), result)

    def _summary(result) -> None:
        console = Console()
        c = result.counts.get("exchanges", {})
        table = Table(title=f"scan {escape(result.run_id)}", title_justify="left")
        table.add_column("measure")
        table.add_column("value", justify="right")
        table.add_row("rows read", f"{c.get('read', 0):,}")
        table.add_row("rows scored", f"{c.get('accepted', 0):,}")
        table.add_row("rows quarantined", f"{c.get('quarantined', 0):,}")
        table.add_row("accounts", f"{result.accounts:,}")
        for verdict in ("attack", "suspect", "benign"):
            table.add_row(f"verdict {verdict}", f"{result.verdicts[verdict]:,}")
        table.add_row("campaigns", f"{len(result.campaigns):,}")
        table.add_row("target FPR", f"{result.thresholds['target_fpr']:g}")
        table.add_row("seconds", f"{sum(result.timings.values()):.1f}")
        console.print(table)
        if result.campaigns:
            ct = Table(title="campaigns", title_justify="left")
            for col in ("campaign", "accounts", "exchanges", "first seen", "days", "per account-day", "top capability", "confidence"):
                ct.add_column(col, justify="left" if col in ("campaign", "top capability") else "right")
            for camp in result.campaigns:
                top = max(camp.capabilities.items(), key=lambda kv: kv[1])[0] if camp.capabilities else "-"
                ct.add_row(escape(camp.campaign_id), f"{camp.accounts:,}", f"{camp.exchanges:,}", f"{camp.first_seen:%Y-%m-%d}",
                           str(camp.days), f"{camp.exchanges_per_account_per_day:.1f}", top.replace("_", " "), f"{camp.confidence:.2f}")
            console.print(ct)
        console.print(f"results in {escape(str(result.out))}")

    @app.command("evaluate", help=EVALUATE_HELP, no_args_is_help=True)
    def evaluate_command(
        results: Annotated[Path, typer.Option("--results", help="results directory of a scan")],
        labels: Annotated[Path, typer.Option("--labels", help="labels Parquet (account_id, is_attack, campaign_id[, group])")],
    ) -> None:
        from distillwatch.evaluate import EvaluationError, evaluate, write_metrics

        console = Console()
        try:
            metrics = evaluate(results, labels)
        except EvaluationError as exc:
            _fail(Console(stderr=True), str(exc))
        path = write_metrics(results, metrics)

        def f(x) -> str:
            return "-" if x is None else f"{x:.4f}"

        t = Table(title="evaluation (verdict attack; and counting suspect)", title_justify="left")
        for col in ("measure", "attack", "attack+suspect"):
            t.add_column(col, justify="right" if col != "measure" else "left")
        ws = metrics["with_suspect"]
        t.add_row("precision", f(metrics["precision"]), f(ws["precision"]))
        t.add_row("recall", f(metrics["recall"]), f(ws["recall"]))
        t.add_row("false-positive rate", f(metrics["fpr"]), f(ws["fpr"]))
        t.add_row("AUROC of score", f(metrics["auroc"]), "")
        console.print(t)
        pc = Table(title="per campaign", title_justify="left")
        for col in ("campaign", "accounts", "recall", "recall+suspect", "found as"):
            pc.add_column(col)
        for cid, m in metrics["per_campaign"].items():
            found = ", ".join(f"{escape(k)}:{v}" for k, v in list(m["detected_as"].items())[:4])
            pc.add_row(escape(cid), str(m["accounts"]), f(m["recall"]), f(m["recall_with_suspect"]), found or "-")
        console.print(pc)
        pg = Table(title="benign groups", title_justify="left")
        for col in ("group", "accounts", "attack", "suspect", "FPR"):
            pg.add_column(col)
        for grp, m in metrics["per_group"].items():
            pg.add_row(escape(grp), str(m["accounts"]), str(m["attack"]), str(m["suspect"]), f(m["fpr"]))
        console.print(pg)
        console.print(f"metrics in {escape(str(path))}")

    @app.command("signals", help=SIGNALS_HELP)
    def signals_command(
        config: Annotated[Path | None, typer.Option("--config", help="detection config YAML")] = None,
        verbose: Annotated[bool, typer.Option("--verbose", "-v", help="also show descriptions and false positives")] = False,
    ) -> None:
        from distillwatch.signals import load_signals
        from distillwatch.signals.config import ConfigError, effective, load_config

        try:
            cfg = load_config(config)
        except ConfigError as exc:
            _fail(Console(stderr=True), str(exc))
        t = Table(title="detection signals", title_justify="left", show_lines=verbose)
        for col in ("id", "family", "kind", "severity", "weight", "on"):
            t.add_column(col, no_wrap=True)
        t.add_column("title")
        if verbose:
            t.add_column("description / false positives / tags")
        for sid, sig in load_signals().items():
            enabled, weight, params = effective(cfg, sig)
            m = sig.meta
            row = [escape(sid), m.family, m.kind, m.severity, f"{weight:g}", "yes" if enabled else "[dim]no[/]", escape(m.title)]
            if verbose:
                row.append(
                    escape(m.description)
                    + ("\n[dim]false positives: " + escape("; ".join(m.false_positives)) + "[/]" if m.false_positives else "")
                    + "\n[dim]params: " + escape(", ".join(f"{k}={v}" for k, v in params.items())) + "[/]"
                    + "\n[dim]tags: " + escape(", ".join(m.tags)) + "[/]"
                )
            t.add_row(*row)
        Console().print(t)
