"""Stages and summary of an increment (shared by `scan --since/--until` and `watch`)."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from distillwatch.incremental.run import IncrementResult

# Stages of an increment, in order (run_increment's stage names).
INCREMENT_STAGES = (
    "ingest",
    "partials",
    "features",
    "signals",
    "link",
    "score",
    "campaigns",
    "write",
    "state",
)


def parse_utc(text: str, option: str) -> datetime:
    """An ISO 8601 date or time; without a zone it is UTC."""
    try:
        t = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{option} {text[:40]!r}: not an ISO 8601 date or time (e.g. 2026-05-04 or 2026-05-04T06:00Z)"
        ) from None
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def print_increment(console: Console, result: IncrementResult) -> None:
    c = result.counts.get("exchanges", {})
    table = Table(title=f"increment {result.part_id} ({escape(str(result.run_id))})", title_justify="left")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("rows read", f"{c.get('read', 0):,}")
    table.add_row("rows quarantined", f"{c.get('quarantined', 0):,}")
    table.add_row("rows outside the slice", f"{c.get('outside_slice', 0):,}")
    table.add_row("duplicates skipped (stored before)", f"{c.get('duplicates_skipped', 0):,}")
    table.add_row("rows accepted", f"{c.get('accepted', 0):,}")
    table.add_row("partitions in the window", f"{len(result.merge.partitions):,}")
    if result.merge.overlapping_accounts:
        table.add_row(
            "accounts with overlapping partitions (gaps approximate)",
            f"{result.merge.overlapping_accounts:,}",
        )
    for verdict in ("attack", "suspect", "benign"):
        table.add_row(f"verdict {verdict}", f"{result.verdicts.get(verdict, 0):,}")
    table.add_row("campaigns", f"{result.campaigns:,}")
    table.add_row("seconds", f"{sum(result.timings.values()):.1f}")
    console.print(table)
    if result.run_id is None:
        console.print("no exchanges stored yet: nothing scored")
        return
    console.print(f"results in {escape(str(result.out))}")
