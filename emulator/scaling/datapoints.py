"""A CloudWatch-like metric series: samples in, per-period statistics out, in bounded memory.

CloudWatch keeps, for each period, the five statistics alarms and
GetMetricStatistics can ask for: SampleCount, Sum, Minimum, Maximum and
Average (= Sum / SampleCount). So does this: a sample only updates its
period's (count, sum, min, max), which keeps `add` O(1) and the memory at
one small record per period however many samples arrive (a simulation adds
~10k a minute). Periods start on multiples of the period since the epoch,
as CloudWatch's one-minute datapoints start on the minute. Periods older
than `retention` seconds before the newest sample are dropped.

Time is data: every timestamp is a float of AWS seconds passed in by the
caller. Nothing here reads a clock.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

AVERAGE, SUM, MINIMUM, MAXIMUM, SAMPLE_COUNT = "Average", "Sum", "Minimum", "Maximum", "SampleCount"
STATISTICS = (AVERAGE, SUM, MINIMUM, MAXIMUM, SAMPLE_COUNT)


@dataclass(frozen=True)
class Datapoint:
    """One period's statistics, as GetMetricStatistics returns them (Timestamp = the period's start)."""

    timestamp: float
    sample_count: float
    sum: float
    minimum: float
    maximum: float

    @property
    def average(self) -> float:
        return self.sum / self.sample_count

    def statistic(self, name: str) -> float:
        if name == AVERAGE:
            return self.average
        if name == SUM:
            return self.sum
        if name == MINIMUM:
            return self.minimum
        if name == MAXIMUM:
            return self.maximum
        if name == SAMPLE_COUNT:
            return self.sample_count
        raise ValueError(f"Unknown statistic {name!r}; valid: {', '.join(STATISTICS)}.")


class MetricSeries:
    """One metric (one namespace, name and set of dimensions) stored as per-period aggregates."""

    def __init__(self, period: int = 60, retention: float = 3600.0) -> None:
        if period <= 0:
            raise ValueError(f"period must be positive, not {period!r}")
        if retention < period:
            raise ValueError(f"retention ({retention}) must be at least one period ({period})")
        self.period = period
        self.retention = float(retention)
        # bucket index (start // period) -> [count, sum, min, max]; kept in ascending key order,
        # so trimming pops from the front.
        self._buckets: dict[int, list[float]] = {}
        self._newest: int | None = None

    def __len__(self) -> int:
        """How many periods are stored."""
        return len(self._buckets)

    def add(self, timestamp: float, value: float) -> None:
        """Record one sample (PutMetricData with a single Value)."""
        bucket = self._bucket(timestamp)
        if bucket is None:
            return
        if value < bucket[2]:
            bucket[2] = value
        if value > bucket[3]:
            bucket[3] = value
        bucket[0] += 1
        bucket[1] += value

    def add_statistics(self, timestamp: float, sample_count: float, total: float,
                       minimum: float, maximum: float) -> None:
        """Record pre-aggregated samples (PutMetricData's StatisticValues)."""
        if sample_count <= 0:
            raise ValueError(f"sample_count must be positive, not {sample_count!r}")
        bucket = self._bucket(timestamp)
        if bucket is None:
            return
        bucket[0] += sample_count
        bucket[1] += total
        bucket[2] = min(bucket[2], minimum)
        bucket[3] = max(bucket[3], maximum)

    def datapoints(self, start: float, end: float, period: int | None = None) -> list[Datapoint]:
        """Datapoints of the periods that start in [start, end), oldest first; periods without samples are absent.

        `start` is rounded down to a period boundary, as CloudWatch does.
        `period` (default: the storage period) must be a multiple of it.
        """
        step = self._steps(period)
        width = self.period * step
        first = math.floor(start / width) * step
        out = []
        for index in range(first, self._last_index(end) + 1, step):
            merged = self._merge(index, step)
            if merged is not None:
                out.append(Datapoint(float(index * self.period), *merged))
        return out

    def values(self, start: float, end: float, statistic: str,
               period: int | None = None) -> list[tuple[float, float | None]]:
        """Every period in [start, end) as (timestamp, value), None where no sample arrived: what alarms read."""
        step = self._steps(period)
        width = self.period * step
        first = math.floor(start / width) * step
        out: list[tuple[float, float | None]] = []
        for index in range(first, self._last_index(end) + 1, step):
            merged = self._merge(index, step)
            value = None if merged is None else Datapoint(0.0, *merged).statistic(statistic)
            out.append((float(index * self.period), value))
        return out

    def trim(self, before: float) -> None:
        """Drop every period that starts before `before`."""
        cutoff = math.floor(before / self.period)
        while self._buckets:
            oldest = next(iter(self._buckets))
            if oldest >= cutoff:
                break
            del self._buckets[oldest]

    # --- internals -------------------------------------------------------------

    def _bucket(self, timestamp: float) -> list[float] | None:
        index = int(timestamp // self.period)
        bucket = self._buckets.get(index)
        if bucket is not None:
            return bucket
        if self._newest is not None and index < self._newest:
            if index < self._cutoff(self._newest):
                return None  # older than what we keep: CloudWatch would have expired it too
            bucket = self._buckets[index] = [0, 0.0, math.inf, -math.inf]
            # A late sample opened an older period: restore ascending order for trim().
            self._buckets = dict(sorted(self._buckets.items()))
            return bucket
        bucket = self._buckets[index] = [0, 0.0, math.inf, -math.inf]
        self._newest = index
        self.trim(self._cutoff(index) * self.period)
        return bucket

    def _cutoff(self, newest: int) -> int:
        """The oldest period index kept while `newest` is the newest: `retention` seconds, ending with it."""
        return math.ceil(((newest + 1) * self.period - self.retention) / self.period)

    def _steps(self, period: int | None) -> int:
        if period is None:
            return 1
        if period <= 0 or period % self.period:
            raise ValueError(f"period {period} must be a positive multiple of the series' period ({self.period})")
        return period // self.period

    def _last_index(self, end: float) -> int:
        """The last storage period that starts before `end`."""
        return math.ceil(end / self.period) - 1

    def _merge(self, index: int, step: int) -> tuple[float, float, float, float] | None:
        parts: Iterable[list[float]] = (self._buckets[i] for i in range(index, index + step) if i in self._buckets)
        count = total = 0.0
        low, high = math.inf, -math.inf
        for part in parts:
            count += part[0]
            total += part[1]
            low = min(low, part[2])
            high = max(high, part[3])
        if not count:
            return None
        return count, total, low, high
