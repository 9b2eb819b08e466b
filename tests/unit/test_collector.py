"""aiops.collector.gc_paused: with `promote` (a process that ends after the block), what a
pause allocated is not walked by a young pass as the collector resumes; without it (a process
that lives on), that pass runs and frees the pause's cyclic garbage at once; a process's own
GC choices (collection off, a frozen heap) are kept."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from aiops.collector import gc_paused, heap_frozen


@pytest.fixture(autouse=True)
def _gc_restored() -> Iterator[None]:
    gc.unfreeze()  # nothing frozen by an earlier test
    yield
    gc.enable()
    gc.unfreeze()


def _young_passes_after(allocate: int) -> list[int]:
    """The number of objects each young pass looked at, for the passes that `allocate`
    new containers trigger."""
    seen: list[int] = []

    def watch(phase: str, info: dict[str, int]) -> None:
        if phase == "start" and info["generation"] == 0:
            seen.append(gc.get_count()[0])

    gc.callbacks.append(watch)
    try:
        kept = [[] for _ in range(allocate)]
    finally:
        gc.callbacks.remove(watch)
    del kept
    return seen


def test_promoted_what_a_pause_allocated_joins_the_oldest_generation() -> None:
    gc.collect()
    with gc_paused(promote=True):
        assert not gc.isenabled()
        held = [[i] for i in range(50_000)]  # a project's worth of containers
    assert gc.isenabled()
    assert gc.get_count()[0] < 100  # no young pass is owed for them
    oldest = {id(o) for o in gc.get_objects(generation=2)}
    assert id(held) in oldest and all(id(o) in oldest for o in held)
    assert gc.get_freeze_count() == 0  # promoted, not left frozen
    # The next young passes look at new objects only, not at the 50,000.
    threshold = gc.get_threshold()[0]
    passes = _young_passes_after(3 * threshold)
    assert passes and all(n <= threshold + 1 for n in passes)


def test_unpromoted_the_first_young_pass_frees_the_pauses_cycles() -> None:
    """In a process that lives on, garbage cycles made during a pause are freed by the young
    pass as collection resumes, not left for a full collection."""
    gc.collect()
    freed: list[int] = []

    def watch(phase: str, info: dict[str, int]) -> None:
        if phase == "stop" and info["generation"] < 2:
            freed.append(info["collected"])

    gc.callbacks.append(watch)
    try:
        with gc_paused():
            for _ in range(20_000):
                cycle: list[object] = []
                cycle.append(cycle)
            del cycle
            assert not freed
        [[] for _ in range(gc.get_threshold()[0] + 1)]
    finally:
        gc.callbacks.remove(watch)
    assert sum(freed) >= 20_000


def test_nested_pauses_resume_at_the_outer_one() -> None:
    with gc_paused():
        with gc_paused():
            pass
        assert not gc.isenabled()
    assert gc.isenabled()


def test_collection_off_stays_off() -> None:
    gc.disable()
    with gc_paused():
        held = [[] for _ in range(1000)]
    assert not gc.isenabled()
    assert id(held) not in {id(o) for o in gc.get_objects(generation=2)}


def test_a_heap_the_process_froze_stays_frozen() -> None:
    gc.collect()  # Python 3.12 moves its immortal objects to the permanent generation here
    assert not heap_frozen()  # those are not a heap the process froze
    gc.freeze()
    assert heap_frozen()
    frozen = gc.get_freeze_count()
    with gc_paused(promote=True):
        [[] for _ in range(1000)]
    assert gc.isenabled() and gc.get_freeze_count() == frozen  # not thawed by the pause


def test_an_error_in_the_block_resumes_collection() -> None:
    with pytest.raises(RuntimeError), gc_paused():
        raise RuntimeError("boom")
    assert gc.isenabled()
