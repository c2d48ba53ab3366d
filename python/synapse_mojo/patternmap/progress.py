"""Progress bars (rich, on stderr) for long pattern-map work, or nothing when disabled.

with progress_bar(True, "embedding patterns", total=len(texts)) as advance:
    for batch in batches:
        ...
        advance(len(batch))
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

Advance = Callable[[int], None]


def _ignore(_: int) -> None:
    return None


@contextmanager
def progress_bar(
    enabled: bool, description: str, total: int | None, *, console: Console | None = None
) -> Iterator[Advance]:
    """Yields ``advance(n)``; shows a bar on stderr while the block runs when ``enabled``."""
    if not enabled:
        yield _ignore
        return
    progress = Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console or Console(stderr=True),
        transient=False,
    )
    with progress:
        task = progress.add_task(description, total=total)
        yield lambda n: progress.advance(task, n)
