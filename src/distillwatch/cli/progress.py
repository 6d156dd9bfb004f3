"""A progress bar over a run's named stages, shared by `scan` and the incremental commands."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn


@contextmanager
def stage_progress(console: Console, name: str, stages: Sequence[str]) -> Iterator[Callable[[str], None]]:
    """A progress bar over ``stages``; yields the ``on_stage`` callback the pipeline calls as each one starts."""
    progress = Progress(
        TextColumn("[bold]{task.description:<10}"), BarColumn(), TextColumn("{task.completed}/{task.total} stages"),
        TimeElapsedColumn(), console=console, transient=False,
    )  # fmt: skip
    with progress:
        task = progress.add_task(name, total=len(stages))
        seen: list[str] = []

        def on_stage(stage: str) -> None:
            if seen:
                progress.advance(task)
            seen.append(stage)
            progress.update(task, description=stage)

        yield on_stage
        progress.update(task, completed=len(stages), description="done")
