"""The progress bar of a batch: done of total, elapsed, the time left, and what calls wait for
when rate limits throttle them (`aiops.limits.Waits`)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TimeElapsedColumn,
)
from rich.text import Text


class EtaColumn(ProgressColumn):
    """The time left: from the pace so far, and never less than the longest wait for a rate
    limit in progress (a pace measured before the limits held calls back says seconds while
    the last calls wait a minute)."""

    def __init__(self, waits: Any) -> None:
        super().__init__()
        self.waits = waits

    def render(self, task: Task) -> Text:
        if task.finished:
            return Text("eta 0:00:00", style="progress.remaining")
        pace = task.time_remaining
        waiting = self.waits.longest() if self.waits is not None else 0.0
        if pace is None and not waiting:
            return Text("eta -:--:--", style="progress.remaining")
        minutes, seconds = divmod(round(max(pace or 0.0, waiting)), 60)
        hours, minutes = divmod(minutes, 60)
        return Text(f"eta {hours}:{minutes:02d}:{seconds:02d}", style="progress.remaining")


class ThrottleColumn(ProgressColumn):
    """`waiting for groq/llama-3.1-8b-instant tpm 6000: 12 calls, next in 4s; 212 went to a
    fallback`, or nothing while no limit holds calls back."""

    def __init__(self, waits: Any) -> None:
        super().__init__()
        self.waits = waits

    def render(self, task: Task) -> Text:
        return Text(self.waits.describe() if self.waits is not None else "", style="yellow",
                    no_wrap=True, overflow="ellipsis")


def batch_progress(console: Console, runner: Any) -> Progress:
    waits = getattr(getattr(runner, "limiter", None), "waits", None)
    return Progress("[progress.description]{task.description}", BarColumn(),
                    MofNCompleteColumn(), TimeElapsedColumn(), EtaColumn(waits),
                    ThrottleColumn(waits), console=console)
