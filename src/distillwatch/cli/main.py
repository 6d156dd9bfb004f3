"""Entry point of the ``distillwatch`` command.

Every command lives in the module of its stage (``cli/<stage>.py``) and is
registered here, so adding a command touches one module and one line below.
"""

from __future__ import annotations

import typer

from distillwatch import __version__

app = typer.Typer(
    name="distillwatch",
    help=(
        "Find distillation campaigns (coordinated accounts harvesting a model's answers) in API traffic.\n\n"
        "Example, end to end on simulated traffic:\n\n"
        "  distillwatch simulate --preset demo --out demo\n\n"
        "  distillwatch scan demo/exchanges.parquet --accounts demo/accounts.parquet --out demo/results\n\n"
        "  distillwatch evaluate --results demo/results --labels demo/labels.parquet"
    ),
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_show_locals=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"distillwatch {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """distillwatch command line."""


def _register_all() -> None:
    from distillwatch.cli import ingest

    ingest.register(app)

    from distillwatch.cli import respond as respond_cli

    respond_cli.register(app)

    from distillwatch.cli import intel as intel_cli

    intel_cli.register(app)

    from distillwatch.cli import report as report_cli

    report_cli.register(app)

    from distillwatch.cli import scan as scan_cli

    scan_cli.register(app)

    from distillwatch.cli import watch as watch_cli

    watch_cli.register(app)

    from distillwatch.cli import simulate as simulate_cli

    simulate_cli.register(app)

    from distillwatch.cli import demo as demo_cli

    demo_cli.register(app)


_register_all()

if __name__ == "__main__":  # pragma: no cover
    app()
