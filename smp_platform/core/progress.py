"""One progress bar per refresh stage (posts, posts/s, ETA), for people at a terminal.

Off a terminal (a log file, CI) rich draws no live bars, so no carriage returns reach the log;
the bars' final state is printed once when the display stops.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any


class StageProgress:
    """A rich ``Progress`` with one task per stage; ``advance(stage, n)`` after each batch."""

    def __init__(self, progress: Any, totals: Mapping[str, int]):
        self._progress = progress
        self._tasks = {
            stage: progress.add_task(stage, total=total) for stage, total in totals.items() if total
        }

    def advance(self, stage: str, posts: int) -> None:
        if stage in self._tasks:
            self._progress.advance(self._tasks[stage], posts)


@contextmanager
def stage_progress(totals: Mapping[str, int], *, enabled: bool = True) -> Iterator[StageProgress]:
    """Bars for ``totals`` (stage -> posts); a no-op display when ``enabled`` is False."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    class PostsPerSecond(TextColumn):
        def __init__(self) -> None:
            super().__init__("")

        def render(self, task: Any) -> Any:
            from rich.text import Text

            # posts done over time elapsed: batches are few, too few samples for rich's speed
            elapsed = task.elapsed or 0.0
            speed = task.completed / elapsed if elapsed > 0 and task.completed else None
            return Text(f"{speed:,.1f} posts/s" if speed else "- posts/s", style="cyan")

    progress = Progress(
        TextColumn("[bold]{task.description:<11}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        PostsPerSecond(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        disable=not enabled,
    )
    with progress:
        yield StageProgress(progress, totals)
