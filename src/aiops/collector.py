"""The cyclic garbage collector paused around work that allocates much and leaves few cycles.

Each pass of the collector walks every object of its generation; work that allocates tens of
thousands of objects (reading, checking and diffing a project; importing a provider's SDK for
one `aiops run`) pays a pass per so many allocations. `gc_paused` pauses collection for the
block; when it resumes, one young pass looks at everything the pause allocated (some 30 ms
after a single run's imports) and frees its cyclic garbage at once.

A process that ends right after the block (the command line's single run) can skip even
that pass: with `promote`, what the pause allocated joins the oldest generation as collection
resumes (`gc.freeze` then `gc.unfreeze`: two list splices, no walk). Not in a process that
lives on: there the cyclic garbage of every pause would wait in the oldest generation for a
full collection, which then takes that much longer at once (in the test suite's process,
promoting every pause made its longest full collections 1.0-1.5 s instead of 0.5-0.7 s, in
the middle of calls with 0.8 s timeouts).

A process that froze objects itself (the server, a batch: `heap_frozen`) keeps them frozen:
no promotion there.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

# What the interpreter keeps frozen of its own when aiops is imported: Python 3.12 moves the
# immortal objects a collection meets into the permanent generation (some hundreds), so there
# a freeze count of 0 is no sign that nobody froze a heap; 3.11 and 3.13 start at 0.
_INTERPRETERS_OWN = gc.get_freeze_count()


def heap_frozen() -> bool:
    """Whether the process froze objects (`gc.freeze`) beyond what the interpreter keeps
    frozen itself: its choice, which nothing in aiops thaws."""
    return gc.get_freeze_count() > _INTERPRETERS_OWN


@contextmanager
def gc_paused(*, promote: bool = False) -> Iterator[None]:
    """Pause the collector for the block; nested pauses resume at the outer one. `promote`:
    the process ends after the block, so resume without a pass (module docstring)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            if promote and not heap_frozen():
                gc.freeze()
                gc.unfreeze()
            gc.enable()
