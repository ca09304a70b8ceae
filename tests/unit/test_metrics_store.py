"""The metrics store: series by namespace, name and dimensions; latest samples, totals, bounded retention."""

from __future__ import annotations

import pytest

from emulator.metrics.store import MetricsStore, dimensions

T0 = 1_700_000_040.0   # on a minute boundary
SVC = {"ClusterName": "c", "ServiceName": "s"}


def test_dimensions_name_one_series_however_they_are_written():
    store = MetricsStore()
    store.put("AWS/ECS", "CPUUtilization", {"ServiceName": "s", "ClusterName": "c"}, T0, 10)
    store.put("AWS/ECS", "CPUUtilization", [("ClusterName", "c"), ("ServiceName", "s")], T0 + 1, 30)

    [point] = store.datapoints("AWS/ECS", "CPUUtilization", SVC, T0, T0 + 60)
    assert (point.sample_count, point.average) == (2, 20)
    assert dimensions(SVC) == (("ClusterName", "c"), ("ServiceName", "s"))


def test_other_dimensions_or_names_are_other_series():
    store = MetricsStore()
    store.put("AWS/ECS", "CPUUtilization", SVC, T0, 10)
    store.put("AWS/ECS", "CPUUtilization", {"ClusterName": "c"}, T0, 50)
    store.put("AWS/ECS", "MemoryUtilization", SVC, T0, 70)

    assert store.latest("AWS/ECS", "CPUUtilization", SVC).value == 10
    assert store.latest("AWS/ECS", "CPUUtilization", {"ClusterName": "c"}).value == 50
    assert store.latest("AWS/ECS", "MemoryUtilization", SVC).value == 70
    assert store.latest("AWS/ECS", "CPUUtilization", {"ClusterName": "other"}) is None
    assert store.datapoints("AWS/ECS", "Nothing", SVC, T0, T0 + 60) == []
    assert len(store) == 3
    assert {(k.dimension("ClusterName"), s.value) for k, s, _ in store.find("AWS/ECS", "CPUUtilization")} == {
        ("c", 10), ("c", 50)}


def test_statistics_aggregate_and_their_average_is_the_latest_value():
    store = MetricsStore()
    store.put_statistics("AWS/ECS", "CPUUtilization", SVC, T0, sample_count=2, total=150, minimum=50, maximum=100)

    [point] = store.datapoints("AWS/ECS", "CPUUtilization", SVC, T0, T0 + 60)
    assert (point.sample_count, point.sum, point.minimum, point.maximum) == (2, 150, 50, 100)
    assert store.latest("AWS/ECS", "CPUUtilization", SVC).value == 75


def test_counters_keep_a_running_total_and_per_period_sums():
    store = MetricsStore()
    store.increment("ECSEmulator", "FailedTaskCount", {"ClusterName": "c"}, T0)
    store.increment("ECSEmulator", "FailedTaskCount", {"ClusterName": "c"}, T0 + 70, 2)

    assert store.total("ECSEmulator", "FailedTaskCount", {"ClusterName": "c"}) == 3
    assert [p.sum for p in store.datapoints("ECSEmulator", "FailedTaskCount", {"ClusterName": "c"},
                                            T0, T0 + 120)] == [1, 2]
    assert store.total("ECSEmulator", "FailedTaskCount", {"ClusterName": "x"}) == 0


def test_a_late_sample_does_not_replace_the_latest():
    store = MetricsStore()
    store.put("AWS/ECS", "CPUUtilization", SVC, T0 + 20, 10)
    store.put("AWS/ECS", "CPUUtilization", SVC, T0, 99)

    assert store.latest("AWS/ECS", "CPUUtilization", SVC).timestamp == T0 + 20


def test_retention_drops_old_periods_and_forgets_silent_series():
    store = MetricsStore(retention=3 * 3600)
    store.put("AWS/ECS", "CPUUtilization", SVC, T0, 10)
    store.put("AWS/ECS", "CPUUtilization", {"ClusterName": "gone"}, T0, 10)
    for minute in range(1, 4 * 60):
        store.put("AWS/ECS", "CPUUtilization", SVC, T0 + minute * 60, 20)

    series = store.series("AWS/ECS", "CPUUtilization", SVC)
    assert len(series) == 3 * 60                                   # three hours of one-minute periods
    assert store.datapoints("AWS/ECS", "CPUUtilization", SVC, T0, T0 + 60) == []
    assert store.latest("AWS/ECS", "CPUUtilization", {"ClusterName": "gone"}) is None
    assert store.newest_timestamp == T0 + (4 * 60 - 1) * 60


def test_retention_shorter_than_a_period_is_refused():
    with pytest.raises(ValueError):
        MetricsStore(period=60, retention=30)
