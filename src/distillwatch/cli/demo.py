"""`distillwatch demo`: simulate, scan, evaluate and report in one go, on the embedded DuckDB store.

It runs the very same commands a user would type (so the demo shows their real
output), one after the other, and stops at the first that fails.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.rule import Rule


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        out: Annotated[Path, typer.Option("--out", help="Directory for the simulated traffic, the store and the results.")] = Path("demo"),
        evasion: Annotated[str, typer.Option("--evasion", help="Attacker evasion level: none, moderate or strong.")] = "none",
        seed: Annotated[int, typer.Option("--seed", help="Simulator seed.")] = 0,
    ) -> None:
        """Simulate the `demo` preset, scan it, evaluate against the labels and write the report.

        Equivalent to:

          distillwatch simulate --preset demo --out DIR

          distillwatch scan DIR/exchanges.parquet --accounts DIR/accounts.parquet --out DIR/results --db DIR/distillwatch.duckdb

          distillwatch evaluate --results DIR/results --labels DIR/labels.parquet

        Example:

          distillwatch demo --out demo --evasion moderate
        """
        console = Console(stderr=True)
        command = typer.main.get_command(app)
        steps = [
            ["simulate", "--preset", "demo", "--out", str(out), "--evasion", evasion, "--seed", str(seed)],
            [
                "scan", str(out / "exchanges.parquet"), "--accounts", str(out / "accounts.parquet"),
                "--out", str(out / "results"), "--db", str(out / "distillwatch.duckdb"),
            ],
            ["evaluate", "--results", str(out / "results"), "--labels", str(out / "labels.parquet")],
        ]
        for args in steps:
            console.print(Rule(f"distillwatch {' '.join(args)}", style="dim"))
            try:
                command.main(args=args, prog_name="distillwatch", standalone_mode=False)
            except typer.Exit as exc:
                if exc.exit_code:
                    raise
        console.print(
            f"\nReport: {out / 'results' / 'report.html'} (and report.md); "
            f"campaigns: {out / 'results' / 'campaigns.json'}; accounts: {out / 'results' / 'accounts.parquet'}"
        )
