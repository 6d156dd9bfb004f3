"""`distillwatch report` (owned by the report stage)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Register ``distillwatch report DIR [--redact]`` on ``app``."""

    @app.command("report")
    def report(
        results: Annotated[
            Path, typer.Argument(help="Results directory written by `distillwatch scan --out DIR`.")
        ],
        redact: Annotated[
            bool,
            typer.Option(
                "--redact",
                help="Replace sample prompts and e-mail addresses and domains with redaction markers.",
            ),
        ] = False,
    ) -> None:
        """Re-render DIR/report.html and DIR/report.md from the results saved in DIR.

        Example: distillwatch report demo/results --redact
        """
        from distillwatch.report import render  # heavy imports (matplotlib, ibis) only when used

        if not results.is_dir():
            typer.echo(f"error: {results} is not a directory (expected the --out DIR of a scan)", err=True)
            raise typer.Exit(2)
        html, md = render(results, redact=redact)
        typer.echo(f"wrote {html}")
        typer.echo(f"wrote {md}")
