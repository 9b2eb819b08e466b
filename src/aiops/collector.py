"""The cyclic garbage collector paused around work that allocates much and leaves no cycles.

Each pass of the collector walks every object of its generation; work that allocates tens of
thousands of objects (reading, checking and diffing a project; importing a provider's SDK for
one `aiops run`) pays a pass per so many allocations, and then, when collection resumes, one
young pass over everything allocated during the pause: some 30 ms after a single run's
imports. `gc_paused` avoids both: what the pause allocated joins the oldest generation as it
resumes (`gc.freeze` then `gc.unfreeze`: two list splices, no walk), to be looked at by the
next full collection, as if it had survived the young ones. A process that froze objects
itself (the server, a batch: `heap_frozen`) keeps them frozen: there, collection simply
resumes.
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
def gc_paused() -> Iterator[None]:
    """Pause the collector for the block; nested pauses resume at the outer one."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            if not heap_frozen():
                gc.freeze()
                gc.unfreeze()
            gc.enable()
