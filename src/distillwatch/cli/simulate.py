"""`distillwatch simulate` (owned by the simulate stage)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from distillwatch.simulate.config import EVASION_LEVELS, PRESETS, dump_config, load_config, preset
from distillwatch.simulate.engine import Summary, run


def _table(s: Summary) -> Table:
    t = Table(title=f"simulated {s.preset} (seed {s.seed}, evasion {s.evasion}) in {s.seconds:.1f} s -> {s.out}")
    t.add_column("what")
    t.add_column("accounts", justify="right")
    t.add_column("exchanges", justify="right")
    for name, n in sorted(s.by_group.items(), key=lambda kv: -s.exchanges_by_group[kv[0]]):
        if n:
            t.add_row(f"group {name}", f"{n:,}", f"{s.exchanges_by_group[name]:,}")
    for name, n in s.accounts_by_campaign.items():
        t.add_row(f"campaign {name}", f"{n:,}", f"{s.exchanges_by_campaign[name]:,}")
    t.add_row("total", f"{s.accounts:,}", f"{s.exchanges:,}", style="bold")
    t.caption = (
        f"{s.account_records:,} account records ({s.accounts - s.account_records:,} customers without one, as in real "
        f"exports); {s.exchanges / max(s.seconds, 1e-9):,.0f} exchanges/s"
    )
    return t


def register(app: typer.Typer) -> None:
    @app.command("simulate")
    def simulate(
        out: Annotated[
            Path | None, typer.Option("--out", help="Directory for exchanges.parquet, accounts.parquet, labels.parquet.")
        ] = None,
        preset_name: Annotated[str | None, typer.Option("--preset", help=f"One of: {', '.join(PRESETS)}.")] = None,
        scale: Annotated[float, typer.Option("--scale", help="Multiply accounts and exchanges (e.g. 0.01).")] = 1.0,
        seed: Annotated[int | None, typer.Option("--seed", help="Random seed (default 0); the same seed gives byte-identical files.")] = None,
        evasion: Annotated[str, typer.Option("--evasion", help=f"Attacker evasion: {', '.join(EVASION_LEVELS)}.")] = "none",
        config: Annotated[
            Path | None, typer.Option("--config", help="A YAML simulation config (e.g. edited from --print-config) instead of --preset.")
        ] = None,
        print_config: Annotated[
            bool, typer.Option("--print-config", help="Print the preset's full config as YAML and exit.")
        ] = False,
    ) -> None:
        """Write simulated API traffic with distillation campaigns and ground-truth labels.

        Example:

          distillwatch simulate --preset demo --out demo

          distillwatch simulate --preset reported-campaign --scale 0.01 --evasion strong --seed 7 --out rc1

          distillwatch simulate --preset demo --print-config > mine.yaml; distillwatch simulate --config mine.yaml --out mine
        """
        if evasion not in EVASION_LEVELS:
            raise typer.BadParameter(f"--evasion must be one of {', '.join(EVASION_LEVELS)}, not {evasion!r}")
        if (preset_name is None) == (config is None):
            raise typer.BadParameter("give exactly one of --preset NAME or --config FILE")
        try:
            if config is not None:
                cfg = load_config(config)
                if seed is not None:
                    cfg = cfg.model_copy(update={"seed": seed})
            else:
                cfg = preset(preset_name or "", scale=scale, seed=seed or 0, evasion=evasion)  # type: ignore[arg-type]
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from exc
        if print_config:
            typer.echo(dump_config(cfg), nl=False)
            return
        if out is None:
            raise typer.BadParameter("--out DIR is required (where to write the three Parquet files)")
        if out.exists() and not out.is_dir():
            raise typer.BadParameter(f"--out {out} is a file; give a directory")
        console = Console(stderr=True)
        with Progress(
            TextColumn("[bold]simulate[/]"), BarColumn(), MofNCompleteColumn(), TextColumn("days"),
            TextColumn("{task.fields[rows]:,} exchanges"), TimeElapsedColumn(), console=console, transient=True,
        ) as bar:
            task = bar.add_task("days", total=cfg.days, rows=0)

            def tick(rows: int, day: int, days: int) -> None:
                bar.update(task, completed=day, rows=rows)

            summary = run(cfg, out, progress=tick)
        Console().print(_table(summary))
