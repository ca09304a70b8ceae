"""The metrics store: CloudWatch-like series by (namespace, metric name, dimensions), in bounded memory.

Each metric is one `emulator.scaling.datapoints.MetricSeries` (per-period
SampleCount / Sum / Minimum / Maximum), so alarms and target tracking read
what CloudWatch would give them. Dimensions are a mapping (or pairs) and are
kept as a sorted tuple, so `{"ClusterName": c, "ServiceName": s}` names one
series however it is written. Besides the series the store keeps, per
metric, the latest sample (what a Prometheus gauge shows) and, for counters,
a running total since the process started (what a Prometheus counter shows).

Time is data: timestamps are AWS seconds passed in by the caller. Retention
is bounded (3 hours of AWS time by default): each series drops its older
periods, and a series with no sample for that long is forgotten.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..scaling.datapoints import Datapoint, MetricSeries

DEFAULT_PERIOD = 60                 # CloudWatch's standard resolution for ECS and ALB metrics
DEFAULT_RETENTION = 3 * 3600.0

Dimensions = tuple[tuple[str, str], ...]
DimensionsLike = Mapping[str, str] | Iterable[tuple[str, str]] | None


def dimensions(dims: DimensionsLike) -> Dimensions:
    """The canonical form: (name, value) pairs sorted by name."""
    if dims is None:
        return ()
    pairs = dims.items() if isinstance(dims, Mapping) else dims
    return tuple(sorted((str(k), str(v)) for k, v in pairs))


@dataclass(frozen=True)
class Sample:
    """The latest value put for a metric (for statistics: their average) and when (AWS seconds)."""

    timestamp: float
    value: float


@dataclass(frozen=True)
class MetricKey:
    namespace: str
    name: str
    dimensions: Dimensions

    def dimension(self, name: str, default: str = "") -> str:
        return next((v for k, v in self.dimensions if k == name), default)


class _Entry:
    __slots__ = ("series", "latest", "total")

    def __init__(self, series: MetricSeries) -> None:
        self.series = series
        self.latest: Sample | None = None
        self.total = 0.0


class MetricsStore:
    """Every metric's series, latest sample and running total; see the module docstring."""

    def __init__(self, period: int = DEFAULT_PERIOD, retention: float = DEFAULT_RETENTION) -> None:
        if retention < period:
            raise ValueError(f"retention ({retention}) must be at least one period ({period})")
        self.period = period
        self.retention = float(retention)
        self._metrics: dict[tuple[str, str], dict[Dimensions, _Entry]] = {}
        self._newest = float("-inf")     # the newest timestamp put
        self._swept_at = float("-inf")

    # --- writing ----------------------------------------------------------------

    def put(self, namespace: str, name: str, dims: DimensionsLike, timestamp: float, value: float) -> None:
        """One sample (PutMetricData with a Value)."""
        entry = self._entry(namespace, name, dims, timestamp)
        entry.series.add(timestamp, value)
        self._note_latest(entry, timestamp, value)

    def put_statistics(self, namespace: str, name: str, dims: DimensionsLike, timestamp: float, *,
                       sample_count: float, total: float, minimum: float, maximum: float) -> None:
        """Pre-aggregated samples (PutMetricData's StatisticValues); the latest value is their average."""
        entry = self._entry(namespace, name, dims, timestamp)
        entry.series.add_statistics(timestamp, sample_count, total, minimum, maximum)
        self._note_latest(entry, timestamp, total / sample_count)

    def increment(self, namespace: str, name: str, dims: DimensionsLike, timestamp: float,
                  amount: float = 1.0) -> None:
        """A counter: `amount` more events now (a sample of that size, and the running total grows)."""
        entry = self._entry(namespace, name, dims, timestamp)
        entry.series.add(timestamp, amount)
        entry.total += amount
        self._note_latest(entry, timestamp, amount)

    # --- reading ----------------------------------------------------------------

    def series(self, namespace: str, name: str, dims: DimensionsLike) -> MetricSeries | None:
        entry = self._metrics.get((namespace, name), {}).get(dimensions(dims))
        return entry.series if entry else None

    def datapoints(self, namespace: str, name: str, dims: DimensionsLike, start: float, end: float,
                   period: int | None = None) -> list[Datapoint]:
        """GetMetricStatistics: the periods in [start, end) that have samples, oldest first."""
        series = self.series(namespace, name, dims)
        return series.datapoints(start, end, period) if series else []

    def latest(self, namespace: str, name: str, dims: DimensionsLike) -> Sample | None:
        entry = self._metrics.get((namespace, name), {}).get(dimensions(dims))
        return entry.latest if entry else None

    def total(self, namespace: str, name: str, dims: DimensionsLike) -> float:
        """A counter's running total (0 for a metric never incremented)."""
        entry = self._metrics.get((namespace, name), {}).get(dimensions(dims))
        return entry.total if entry else 0.0

    def find(self, namespace: str, name: str) -> list[tuple[MetricKey, Sample, float]]:
        """Every series of one metric (ListMetrics): (key, latest sample, running total)."""
        return [(MetricKey(namespace, name, dims), entry.latest, entry.total)
                for dims, entry in self._metrics.get((namespace, name), {}).items() if entry.latest is not None]

    def metrics(self) -> list[MetricKey]:
        return [MetricKey(ns, name, dims) for (ns, name), by_dims in self._metrics.items() for dims in by_dims]

    @property
    def newest_timestamp(self) -> float | None:
        return None if self._newest == float("-inf") else self._newest

    def __len__(self) -> int:
        return sum(len(by_dims) for by_dims in self._metrics.values())

    # --- internals --------------------------------------------------------------

    def _entry(self, namespace: str, name: str, dims: DimensionsLike, timestamp: float) -> _Entry:
        if timestamp > self._newest:
            self._newest = timestamp
            if timestamp - self._swept_at >= self.period:
                self._sweep(timestamp)
        by_dims = self._metrics.setdefault((namespace, name), {})
        key = dimensions(dims)
        entry = by_dims.get(key)
        if entry is None:
            entry = by_dims[key] = _Entry(MetricSeries(self.period, self.retention))
        return entry

    @staticmethod
    def _note_latest(entry: _Entry, timestamp: float, value: float) -> None:
        if entry.latest is None or timestamp >= entry.latest.timestamp:
            entry.latest = Sample(timestamp, value)

    def _sweep(self, now: float) -> None:
        """Forget series with no sample within the retention (a service deleted hours ago)."""
        self._swept_at = now
        cutoff = now - self.retention
        for key in list(self._metrics):
            by_dims = self._metrics[key]
            for dims in [d for d, e in by_dims.items() if e.latest is None or e.latest.timestamp < cutoff]:
                del by_dims[dims]
            if not by_dims:
                del self._metrics[key]
