"""`distillwatch intel ...` and `distillwatch actors ...` (owned by the intel stage)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from distillwatch import store
from distillwatch.intel import attribution as attr
from distillwatch.intel.stix_export import MIN_SPECIFICITY, TLP_LEVELS

T = TypeVar("T")
console = Console()

intel_app = typer.Typer(
    help=(
        "Share campaigns as STIX 2.1 and take in partners' indicators.\n\n"
        "  distillwatch intel export --results demo/results --out bundle.json\n\n"
        "  distillwatch intel import partner_bundle.json --partner 'Provider B'"
    ),
    no_args_is_help=True,
)
actors_app = typer.Typer(
    help=(
        "Known actors: names for who runs campaigns, each a set of campaign fingerprints.\n\n"
        "  distillwatch actors add 'Lab X' --from-results demo/results --campaign C1\n\n"
        "  distillwatch actors label C7 'Lab X'"
    ),
    no_args_is_help=True,
)

DbOption = Annotated[
    Path | None, typer.Option("--db", help="Store file (default: $DISTILLWATCH_DB or ./distillwatch.duckdb).")
]


def _fail(message: str) -> None:
    console.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    raise typer.Exit(2)


@contextmanager
def _user_errors():
    """Turn the errors a user can cause into a one-line message instead of a traceback."""
    try:
        yield
    except (attr.IntelError, KeyError, FileNotFoundError, ValueError) as exc:
        _fail(str(exc.args[0]) if exc.args else str(exc))


def _with_store(db: Path | None, fn: Callable[..., T]) -> T:
    with _user_errors(), store.open_store(db) as con:
        return fn(con)


@intel_app.command("export")
def export_cmd(
    results: Annotated[Path, typer.Option("--results", help="A `distillwatch scan --out` directory.")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the STIX 2.1 bundle (JSON).")],
    campaign: Annotated[str | None, typer.Option("--campaign", help="Export only this campaign id.")] = None,
    tlp: Annotated[str, typer.Option("--tlp", help=f"TLP 2.0 marking: {', '.join(TLP_LEVELS)}.")] = "amber",
    include_raw: Annotated[
        bool,
        typer.Option(
            "--include-raw",
            help="Also export account ids and sample prompts (personal data: off by default).",
        ),
    ] = False,
    producer: Annotated[
        str, typer.Option("--producer", help="Your organisation's name in the bundle's Identity.")
    ] = "distillwatch",
    min_specificity: Annotated[
        float,
        typer.Option(
            "--min-specificity",
            min=0.0,
            max=1.0,
            help="Share only indicators at least this share of whose carriers are the campaign's accounts.",
        ),
    ] = MIN_SPECIFICITY,
) -> None:
    """Write a STIX 2.1 bundle for the campaigns of a results directory.

    Example:

      distillwatch intel export --results demo/results --tlp amber --out bundle.json
    """
    from distillwatch.intel.stix_export import export_results

    if tlp.lower() not in TLP_LEVELS:
        _fail(f"--tlp must be one of {', '.join(TLP_LEVELS)}")
    with _user_errors():
        res = export_results(
            results, out, campaign, tlp.lower(), include_raw, producer, min_specificity=min_specificity
        )
    skipped = ", ".join(f"{n} {k}" for k, n in sorted(res.skipped.items())) or "none"
    console.print(
        f"Wrote {escape(str(out))}: {res.campaigns} campaigns, {res.indicators} indicators, TLP:{tlp.upper()}"
        f"{' [yellow](includes account ids and prompts)[/yellow]' if include_raw else ''}. Not shareable, left out: {escape(skipped)}."
    )


@intel_app.command("import")
def import_cmd(
    bundle: Annotated[Path, typer.Argument(help="A STIX 2.1 bundle (JSON) from a partner.")],
    partner: Annotated[
        str | None,
        typer.Option(
            "--partner", help="Partner name shown in detection reasons (default: the bundle's producer)."
        ),
    ] = None,
    db: DbOption = None,
) -> None:
    """Store a partner's indicators; the next scan matches accounts against them.

    Example:

      distillwatch intel import partner-bundle.json --partner "Example AI" --db demo/distillwatch.duckdb
    """
    from distillwatch.intel.stix_import import import_bundle

    res = _with_store(db, lambda con: import_bundle(con, bundle, partner))
    table = Table(title=f"Imported from {escape(res.partner)}")
    table.add_column("kind")
    table.add_column("indicators", justify="right")
    for kind, n in sorted(res.kinds.items()):
        table.add_row(kind, f"{n:,}")
    console.print(table)
    console.print(f"{res.objects:,} objects, {res.indicators:,} indicators, {res.stored:,} values stored.")
    for actor, n in sorted(res.actors.items()):
        console.print(f"  actor {escape(actor)}: {n} fingerprint(s) from the partner's attributions")
    for reason, n in sorted(res.skipped.items()):
        console.print(f"  skipped {n:,}: {escape(reason)}")


@intel_app.command("track")
def track_cmd(
    results: Annotated[Path, typer.Option("--results", help="A `distillwatch scan --out` directory.")],
    exchanges: Annotated[
        Path | None,
        typer.Option("--exchanges", help="The scan's exchanges (Parquet) for timing and template sketches."),
    ] = None,
    accounts: Annotated[
        Path | None,
        typer.Option("--accounts", help="The scan's accounts table (Parquet) for registration habits."),
    ] = None,
    threshold: Annotated[
        float, typer.Option("--attribution-threshold", min=0.0, max=1.0)
    ] = attr.DEFAULT_THRESHOLD,
    db: DbOption = None,
) -> None:
    """Match a results directory's campaigns with the store's history (scan does this itself).

    Example:

      distillwatch intel track --results demo/results --db demo/distillwatch.duckdb
    """
    from distillwatch.campaigns.model import read_campaigns
    from distillwatch.intel.track import track_results

    mapping = _with_store(
        db,
        lambda con: track_results(
            results, con, exchanges=exchanges, accounts=accounts, attribution_threshold=threshold
        ),
    )
    _print_campaigns(read_campaigns(results / "campaigns.json"), mapping)


def _print_campaigns(campaigns, mapping: dict[str, str] | None = None) -> None:
    table = Table(title="Campaigns")
    for col in ("campaign", "status", "scans", "first seen", "actor", "confidence"):
        table.add_column(col)
    for c in campaigns:
        h, a = c.history, c.attribution
        old = [k for k, v in (mapping or {}).items() if v == c.campaign_id and k != v]
        table.add_row(
            escape(c.campaign_id) + (f" (was {escape(old[0])})" if old else ""),
            h.status if h else "-",
            str(h.scans) if h else "-",
            f"{h.first_seen:%Y-%m-%d}" if h and h.first_seen else "-",
            escape(a.actor) if a and a.actor else "unattributed",
            f"{a.confidence:.2f}" if a else "-",
        )
    console.print(table)
    for c in campaigns:
        if c.attribution:
            console.print(f"[bold]{escape(c.campaign_id)}[/bold]: {escape(c.attribution.explanation[:600])}")


@actors_app.command("add")
def actors_add(
    name: Annotated[str, typer.Argument(help="The actor's name.")],
    description: Annotated[str | None, typer.Option("--description")] = None,
    from_results: Annotated[
        Path | None, typer.Option("--from-results", help="Take fingerprints from this results directory.")
    ] = None,
    campaign: Annotated[
        list[str] | None, typer.Option("--campaign", help="Campaign id(s) in --from-results (repeatable).")
    ] = None,
    db: DbOption = None,
) -> None:
    """Add an actor, optionally with the fingerprints of campaigns in a results directory.

    Example:

      distillwatch actors add "Lab X" --from-results demo/results --campaign C001 --db demo/distillwatch.duckdb
    """
    from distillwatch.intel.track import read_fingerprints

    if campaign and from_results is None:
        _fail("--campaign needs --from-results DIR")

    def run(con) -> int:
        fps = []
        if from_results is not None:
            available = read_fingerprints(from_results)
            wanted = list(campaign or available)
            missing = [c for c in wanted if c not in available]
            if missing:
                raise attr.IntelError(
                    f"{from_results}: no campaign {missing[0][:100]!r} (has {', '.join(sorted(available))[:300]})"
                )
            fps = [available[c] for c in wanted]
        actor = attr.add_actor(con, name, description)
        return attr.add_fingerprints(con, actor, fps, f"results:{from_results}") if fps else 0

    added = _with_store(db, run)
    console.print(f"Actor {escape(name)}: {added} fingerprint(s) added.")


@actors_app.command("list")
def actors_list(db: DbOption = None) -> None:
    """List known actors with their fingerprints and campaigns.

    Example:

      distillwatch actors list --db demo/distillwatch.duckdb
    """
    rows = _with_store(db, attr.list_actors)
    table = Table(title="Known actors")
    for col in ("actor", "fingerprints", "campaigns", "description"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            escape(r["name"]),
            str(r["fingerprints"]),
            escape(", ".join(r["campaigns"])[:200]),
            escape((r["description"] or "")[:200]),
        )
    console.print(table)


@actors_app.command("label")
def actors_label(
    campaign_id: Annotated[str, typer.Argument(help="A tracked campaign id (from a scan with this store).")],
    actor: Annotated[str, typer.Argument(help="The actor's name (created if new).")],
    db: DbOption = None,
) -> None:
    """Label a tracked campaign as an actor's; its fingerprint joins the actor's set.

    Example:

      distillwatch actors label C001 "Lab X" --db demo/distillwatch.duckdb
    """

    def run(con):
        name = attr.add_actor(con, actor)
        return attr.label_campaign(con, campaign_id, name)

    fp = _with_store(db, run)
    console.print(
        f"Campaign {escape(campaign_id)} labelled {escape(actor)} ({fp.accounts:,} accounts, {len(fp.prefixes)} prefixes, "
        f"{len(fp.templates)} template hashes in its fingerprint)."
    )


@actors_app.command("attribute")
def actors_attribute(
    results: Annotated[Path, typer.Option("--results", help="A results directory to re-attribute.")],
    threshold: Annotated[
        float,
        typer.Option(
            "--threshold", min=0.0, max=1.0, help="Below this overall similarity a campaign is unattributed."
        ),
    ] = attr.DEFAULT_THRESHOLD,
    db: DbOption = None,
) -> None:
    """Re-run attribution of a results directory against the actors now known (rewrites campaigns.json).

    Example:

      distillwatch actors attribute --results demo/results --db demo/distillwatch.duckdb
    """
    from distillwatch.campaigns.model import read_campaigns, write_campaigns
    from distillwatch.intel.track import read_fingerprints

    def run(con):
        campaigns = read_campaigns(results / "campaigns.json")
        fps = read_fingerprints(results)
        out = attr.attribute_campaigns(con, campaigns, fps, threshold)
        write_campaigns(results / "campaigns.json", out)
        return out

    _print_campaigns(_with_store(db, run))


def register(app: typer.Typer) -> None:
    app.add_typer(intel_app, name="intel")
    app.add_typer(actors_app, name="actors")
