"""The latency histogram's fixed buckets, shared by the rollups, `aiops stats`, alerts and
Prometheus (DESIGN §8), and percentiles read from bucket counts.

Bucket upper bounds grow by a fixed ratio, 2^(1/4) (about 1.19), from 10 ms to 81.92 s:
53 bounds, then one overflow bucket for anything slower. Bucket i holds latencies in
(BOUNDS_S[i-1], BOUNDS_S[i]] (bucket 0: [0, 10 ms]).

A percentile read from the counts is the geometric middle of the bucket that holds it, so
within a bucket it is off by at most a factor of 2^(1/8) (about 9.05 %) from the true
value, for latencies between 10 ms and 81.92 s. Below 10 ms it reads as 10 ms / 2^(1/8);
above 81.92 s (the overflow bucket) as 81.92 s, a lower bound. docs/monitoring.md states it.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence

RATIO = 2 ** 0.25
FIRST_S = 0.010
BOUNDS_S: tuple[float, ...] = tuple(round(FIRST_S * 2 ** (k / 4), 9) for k in range(53))
BUCKETS = len(BOUNDS_S) + 1  # the last one: slower than BOUNDS_S[-1]
ERROR_BOUND = 2 ** 0.125 - 1  # the relative error of a percentile inside the bounds


def bucket_of(seconds: float) -> int:
    """The bucket that holds a latency of `seconds` (negative and NaN count as 0)."""
    if not seconds > 0:
        return 0
    return bisect_left(BOUNDS_S, seconds)


def percentile(counts: Sequence[int], q: float) -> float | None:
    """The `q` quantile (0 < q <= 1) of the latencies counted in `counts` (one count per
    bucket, BUCKETS long), in seconds; None when nothing was counted."""
    if not 0 < q <= 1:
        raise ValueError(f"quantile {q} is not in (0, 1]")
    if len(counts) != BUCKETS:
        raise ValueError(f"{len(counts)} bucket counts, not {BUCKETS}")
    total = sum(counts)
    if total <= 0:
        return None
    rank = math.ceil(q * total)  # the rank-th smallest latency, 1-based
    seen = 0
    for index, count in enumerate(counts):
        seen += count
        if seen >= rank:
            return middle(index)
    return middle(BUCKETS - 1)  # not reached: seen ends at total >= rank


def middle(index: int) -> float:
    """The value a percentile in bucket `index` reads as: its geometric middle."""
    if index >= len(BOUNDS_S):
        return BOUNDS_S[-1]
    return BOUNDS_S[index] / 2 ** 0.125
