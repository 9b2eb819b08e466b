"""`aiops.stats.Folder`: summed rollup rows of one key added up as integers, the same as the
WindowStats of each row added up."""

from __future__ import annotations

import random

import pytest

from aiops import latency
from aiops.stats import OK, Folder, WindowStats, summed


def test_folding_rows_is_adding_their_stats() -> None:
    rng = random.Random(7)
    folder, added = Folder(), WindowStats()
    for _ in range(200):
        outcome = rng.choice((OK, OK, "ProviderError", "OutputError"))
        calls = rng.randint(1, 9)
        histogram = [0] * latency.BUCKETS
        for _ in range(calls):
            histogram[rng.randrange(latency.BUCKETS)] += 1
        amounts = (rng.randint(0, 5000), rng.randint(0, 900), rng.randint(0, 10**7))
        folder.add(outcome, calls, *amounts, histogram)
        added = added + WindowStats(
            calls=calls, errors_by_kind={} if outcome == OK else {outcome: calls},
            input_tokens=amounts[0], output_tokens=amounts[1], cost_nusd=amounts[2],
            histogram=tuple(histogram))
    assert folder.stats() == added
    assert set(added.errors_by_kind) == {"ProviderError", "OutputError"}


def test_summed_stats_are_the_stats_added_pairwise() -> None:
    rng = random.Random(8)
    parts = []
    for i in range(50):
        histogram = [0] * latency.BUCKETS
        if i % 3:  # and some without latency, as a read without buckets gives
            histogram[rng.randrange(latency.BUCKETS)] = rng.randint(1, 9)
        parts.append(WindowStats(
            calls=rng.randint(0, 20), errors_by_kind={rng.choice(("ProviderError",
                                                                  "OutputError")): 1},
            input_tokens=rng.randint(0, 99), output_tokens=rng.randint(0, 99),
            cost_nusd=rng.randint(0, 10**6), histogram=tuple(histogram)))
    assert summed(parts) == sum(parts, WindowStats()) != WindowStats()
    assert summed([]) == WindowStats()


def test_rows_without_buckets_leave_the_histogram_empty() -> None:
    folder = Folder()
    folder.add("ProviderError", 3, 10, 2, 5)
    folder.add(OK, 4, 1, 1, 1)
    assert folder.stats() == WindowStats(calls=7, errors_by_kind={"ProviderError": 3},
                                         input_tokens=11, output_tokens=3, cost_nusd=6)
    assert folder.stats().p50_ms is None


def test_a_histogram_of_other_buckets_is_refused() -> None:
    with pytest.raises(ValueError, match=f"not {latency.BUCKETS}"):
        Folder().add(OK, 1, 0, 0, 0, [1] * (latency.BUCKETS - 1))
