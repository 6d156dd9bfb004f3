"""`distillwatch watch DIR`: incremental scans of files dropped into a directory (docs/incremental.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

WATCH_HELP = """Run an incremental scan for every new file dropped into DIR (e.g. hourly Parquet exports), each file once.

Each file is one increment on top of the state kept in the store (--db): its rows are validated, enriched and aggregated once; features are merged from the stored partial aggregates; accounts and campaigns are re-scored; each increment writes a results directory OUT/<file stem>. The store records every file by path, size, mtime and content hash, so a file is never processed twice; rows whose request_id was already stored are skipped and counted.

Example:

  distillwatch watch incoming/ --db dw.duckdb --out results --accounts accounts.parquet --interval 300

  distillwatch watch incoming/ --db dw.duckdb --out results --once
"""


def register(app: typer.Typer) -> None:
    @app.command("watch", help=WATCH_HELP, no_args_is_help=True)
    def watch_command(
        directory: Annotated[Path, typer.Argument(help="directory new exchange files are dropped into")],
        db: Annotated[Path, typer.Option("--db", help="the store that keeps the incremental state")],
        out: Annotated[Path, typer.Option("--out", help="parent of the per-increment results directories")],
        accounts: Annotated[Path | None, typer.Option("--accounts", help="accounts table, re-read with every increment")] = None,
        interval: Annotated[float, typer.Option("--interval", min=0.1, help="seconds between looks at DIR")] = 60.0,
        once: Annotated[bool, typer.Option("--once", help="one pass over DIR, then exit")] = False,
        settle: Annotated[float, typer.Option("--settle", min=0.0, help="take a file once unchanged this many seconds")] = 5.0,
        config: Annotated[Path | None, typer.Option("--config", help="detection config YAML")] = None,
        target_fpr: Annotated[float | None, typer.Option("--target-fpr", min=1e-6, max=0.5, help="benign accounts flagged attack, at most")] = None,
        window_days: Annotated[float | None, typer.Option("--window-days", min=0.01, help="features over the last N days (default: all retained)")] = None,
        compact_days: Annotated[float | None, typer.Option("--compact-days", min=0.0, help="fold partitions older than N days into one (exact; they can no longer be reprocessed)")] = None,
    ) -> None:
        from distillwatch.incremental import IncrementError
        from distillwatch.incremental.progress import print_increment
        from distillwatch.incremental.watch import watch
        from distillwatch.signals.config import ConfigError

        err = Console(stderr=True)
        out_console = Console()

        def fail(message: str) -> None:
            err.print(f"[red]error:[/] {escape(message)}")
            raise typer.Exit(2)

        if not directory.is_dir():
            fail(f"{directory}: not a directory")
        try:
            results = watch(
                directory, db, out, accounts=accounts, interval=interval, once=once, settle_seconds=settle,
                on_file=lambda p: err.print(f"increment: {escape(p.name)}"),
                on_result=lambda p, r: print_increment(out_console, r),
                config=config, target_fpr=target_fpr, window_days=window_days, compact_days=compact_days,
            )  # fmt: skip
        except (IncrementError, ConfigError) as exc:
            fail(str(exc))
        except KeyboardInterrupt:
            raise typer.Exit(130) from None
        if once:
            out_console.print(f"{len(results)} new file(s) processed")
