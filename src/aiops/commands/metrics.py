"""The verbs of `/metrics` (DESIGN §8): count the executions of this process, and write the
Prometheus text exposition for a caller.

    enable_metrics()                 count every execution of the process from now on
    metrics_page(store, caller)      (the exposition, its content type)

What a caller sees is what it may view: the samples of the functions whose `view` list
admits it (an admin sees all), like every other read of the API.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from aiops import observe
from aiops.access import Caller, may

if TYPE_CHECKING:
    from aiops.store import Store


def enable_metrics() -> None:
    """Count every execution this process runs from now on (once, whichever runner runs it)."""
    from aiops import metrics

    observe.add(metrics.OBSERVER)


def metrics_page(store: Store, caller: Caller | None) -> tuple[bytes, str]:
    """The exposition of the counters (every worker's) and of the gauges read now from the
    database, with what `caller` may view; and its content type."""
    from aiops import metrics

    gauges = store.function_gauges(datetime.now(UTC).date())
    if caller is None or caller.is_admin:
        return metrics.exposition(gauges), metrics.CONTENT_TYPE
    names = frozenset(g.name for g in gauges if may(caller, "view", g.access))
    return metrics.exposition(gauges, names.__contains__), metrics.CONTENT_TYPE
