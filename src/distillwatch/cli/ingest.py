"""`distillwatch ingest` (owned by the ingest stage)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

HELP = """Read request logs, validate every record, and stage the accepted ones.

Inputs: one Parquet file, a directory of Parquet files, JSON Lines (.jsonl, .jsonl.gz), a .json document, or CSV. Chat request logs (OpenAI / Anthropic style) and OpenTelemetry GenAI spans (OTLP JSON) are recognised automatically (--adapter forces one).

Writes OUT/ingest/exchanges.parquet (and OUT/ingest/accounts.parquet) and OUT/quarantine.parquet with every record set aside and why, records the run in the store, and prints the accounting: rows read = accepted + quarantined, by reason. Quarantined rows are not an error (exit 0); an unreadable file is (exit 2).

Example:

  distillwatch ingest logs/exchanges.jsonl.gz --accounts logs/accounts.csv --out out
"""


class AdapterChoice(StrEnum):
    auto = "auto"
    contract = "contract"
    chat = "chat"
    otel = "otel"


def _accounting_table(counts: dict) -> Table:
    table = Table(
        title="ingest accounting: read = accepted + quarantined", title_justify="left", min_width=64
    )
    table.add_column("table")
    table.add_column("reason")
    table.add_column("rows", justify="right")
    for name, c in counts.items():
        table.add_row(f"[bold]{name}[/]", "read", f"{c['read']:,}")
        table.add_row("", "accepted", f"{c['accepted']:,}")
        table.add_row("", "quarantined", f"{c['quarantined']:,}")
        for reason, n in c["by_reason"].items():
            table.add_row("", f"  {escape(reason)}", f"{n:,}")
        for field, n in c.get("truncated", {}).items():
            table.add_row("", f"[dim]note: {escape(field)} truncated (kept)[/]", f"[dim]{n:,}[/]")
        for field, n in c.get("nul_stripped", {}).items():
            table.add_row(
                "", f"[dim]note: NUL bytes stripped from {escape(field)} (kept)[/]", f"[dim]{n:,}[/]"
            )
        if c.get("ignored_spans"):
            table.add_row(
                "", "[dim]note: non-GenAI spans skipped (not exchanges)[/]", f"[dim]{c['ignored_spans']:,}[/]"
            )
        table.add_section()
    return table


def register(app: typer.Typer) -> None:
    """Register the ingest commands on ``app``."""

    @app.command("ingest", help=HELP, no_args_is_help=True)
    def ingest_command(
        exchanges: Annotated[
            Path,
            typer.Argument(
                metavar="EXCHANGES",
                help="exchanges: .parquet, a directory of them, .jsonl[.gz], .json or .csv",
            ),
        ],
        accounts: Annotated[
            Path | None, typer.Option("--accounts", help="accounts table, same formats")
        ] = None,
        out: Annotated[
            Path, typer.Option("--out", help="directory for staged tables and quarantine.parquet")
        ] = Path("out"),
        db: Annotated[
            Path | None,
            typer.Option(
                "--db", help="the DuckDB store (default: $DISTILLWATCH_DB, else ./distillwatch.duckdb)"
            ),
        ] = None,
        max_text_chars: Annotated[
            int, typer.Option("--max-text-chars", help="longer strings are truncated (counted, kept)")
        ] = 100_000,
        adapter: Annotated[
            AdapterChoice, typer.Option("--adapter", help="log shape; auto sniffs it")
        ] = AdapterChoice.auto,
        progress: Annotated[
            bool, typer.Option("--progress/--no-progress", help="show a progress bar")
        ] = True,
    ) -> None:
        from distillwatch.ingest import IngestOptions, UnreadableInputError, ingest
        from distillwatch.store import connect

        try:
            options = IngestOptions(max_text_chars=max_text_chars, adapter=adapter.value)
        except ValidationError as e:
            typer.echo(f"error: invalid option: {e.errors()[0]['msg']}", err=True)
            raise typer.Exit(2) from None
        con = connect(db)
        try:
            result = ingest(exchanges, accounts, work_dir=out, con=con, options=options, progress=progress)
        except UnreadableInputError as e:
            typer.echo(f"error: {e}".replace("\n", " ")[:500], err=True)
            raise typer.Exit(2) from None
        finally:
            con.close()
        out_console = Console()
        out_console.print(_accounting_table(result.counts))
        out_console.print(
            f"run {escape(result.run_id)}: accepted rows in {escape(str(result.exchanges_path))}"
        )
        if result.quarantined:
            out_console.print(
                f"[yellow]{result.quarantined:,} record(s) quarantined[/] with their reasons in "
                f"{escape(str(result.quarantine_path))} (not an error: exit 0)"
            )
