"""`distillwatch ingest` (owned by the ingest stage)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Register the ingest commands on ``app`` (filled in by the ingest stage)."""
