"""The metric series: per-period statistics as CloudWatch reports them, in bounded memory."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emulator.scaling.datapoints import Datapoint, MetricSeries

T0 = 1_700_000_040.0  # a minute boundary (1_700_000_040 = 28_333_334 x 60)


def series_with(samples, period=60, retention=3600.0) -> MetricSeries:
    s = MetricSeries(period=period, retention=retention)
    for t, v in samples:
        s.add(t, v)
    return s


def test_one_period_has_all_five_statistics():
    s = series_with([(T0 + 1, 10.0), (T0 + 20, 30.0), (T0 + 59.9, 20.0)])
    [dp] = s.datapoints(T0, T0 + 60)
    assert dp == Datapoint(T0, 3, 60.0, 10.0, 30.0)
    assert {name: dp.statistic(name) for name in ("Average", "Sum", "Minimum", "Maximum", "SampleCount")} == {
        "Average": 20.0, "Sum": 60.0, "Minimum": 10.0, "Maximum": 30.0, "SampleCount": 3}


@pytest.mark.parametrize("offset, expected_start", [
    (0.0, T0), (59.999, T0), (60.0, T0 + 60), (-0.001, T0 - 60),
], ids=["on-boundary", "end-of-period", "next-period", "previous-period"])
def test_datapoints_are_aligned_to_period_boundaries(offset, expected_start):
    s = series_with([(T0 + offset, 1.0)])
    [dp] = s.datapoints(T0 - 120, T0 + 120)
    assert dp.timestamp == expected_start


def test_datapoints_skip_empty_periods_and_values_show_them_as_none():
    s = series_with([(T0 + 5, 1.0), (T0 + 125, 3.0)])
    assert [dp.timestamp for dp in s.datapoints(T0, T0 + 180)] == [T0, T0 + 120]
    assert s.values(T0, T0 + 180, "Average") == [(T0, 1.0), (T0 + 60, None), (T0 + 120, 3.0)]


def test_start_is_rounded_down_and_end_is_exclusive():
    s = series_with([(T0 + 5, 1.0), (T0 + 65, 2.0), (T0 + 125, 3.0)])
    assert [dp.sum for dp in s.datapoints(T0 + 30, T0 + 120)] == [1.0, 2.0]


def test_a_longer_period_merges_the_stored_ones_on_its_own_boundaries():
    t5 = 1_700_000_100.0  # a five-minute boundary
    s = series_with([(t5 + 60 * i + 1, float(i)) for i in range(5)])  # 0, 1, 2, 3, 4 in five minutes
    five = s.datapoints(t5, t5 + 300, period=300)
    assert five == [Datapoint(t5, 5, 10.0, 0.0, 4.0)]
    assert five[0].average == 2.0
    assert [dp.timestamp for dp in s.datapoints(t5 + 60, t5 + 300, period=300)] == [t5]


def test_a_period_that_is_not_a_multiple_is_refused():
    with pytest.raises(ValueError, match="multiple"):
        MetricSeries(period=60).datapoints(T0, T0 + 60, period=90)


def test_pre_aggregated_statistics_merge_with_samples():
    s = series_with([(T0 + 1, 50.0)])
    s.add_statistics(T0 + 2, sample_count=3, total=30.0, minimum=5.0, maximum=15.0)
    [dp] = s.datapoints(T0, T0 + 60)
    assert dp == Datapoint(T0, 4, 80.0, 5.0, 50.0)


def test_memory_is_bounded_by_retention():
    s = MetricSeries(period=60, retention=600)
    for minute in range(120):
        s.add(T0 + minute * 60 + 1, 1.0)
    assert len(s) == 10
    assert s.datapoints(T0, T0 + 120 * 60)[0].timestamp == T0 + 110 * 60


def test_a_late_sample_inside_retention_is_kept_and_one_outside_is_dropped():
    s = series_with([(T0 + 600, 1.0)], retention=300)
    s.add(T0 + 420, 2.0)   # three minutes late: kept
    s.add(T0, 9.0)         # ten minutes late: older than retention
    assert [dp.timestamp for dp in s.datapoints(T0, T0 + 660)] == [T0 + 420, T0 + 600]
    s.add(T0 + 900, 3.0)   # trimming still works after the out-of-order insert
    assert [dp.timestamp for dp in s.datapoints(T0, T0 + 960)] == [T0 + 900]


def test_trim_drops_what_is_older_than_asked():
    s = series_with([(T0 + 60 * i, 1.0) for i in range(5)])
    s.trim(T0 + 180)
    assert [dp.timestamp for dp in s.datapoints(T0, T0 + 300)] == [T0 + 180, T0 + 240]


def test_ten_thousand_samples_a_minute_for_an_hour_keep_one_record_a_minute():
    s = MetricSeries(period=60, retention=3600)
    for minute in range(60):
        base = T0 + minute * 60
        for i in range(10_000):
            s.add(base + i * 0.006, float(i % 100))
    assert len(s) == 60
    last = s.datapoints(T0 + 59 * 60, T0 + 3600)[0]
    assert (last.sample_count, last.minimum, last.maximum, last.average) == (10_000, 0.0, 99.0, 49.5)


def test_unknown_statistic_is_refused():
    with pytest.raises(ValueError, match="Unknown statistic"):
        Datapoint(T0, 1, 1.0, 1.0, 1.0).statistic("p99")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 599.999), st.floats(-1e6, 1e6)), min_size=1, max_size=200))
def test_property_aggregates_match_the_raw_samples(samples):
    s = series_with([(T0 + t, v) for t, v in samples])
    for dp in s.datapoints(T0, T0 + 600):
        inside = [v for t, v in samples if dp.timestamp <= T0 + t < dp.timestamp + 60]
        assert dp.sample_count == len(inside)
        assert (dp.minimum, dp.maximum) == (min(inside), max(inside))
        assert dp.sum == pytest.approx(sum(inside), rel=1e-9, abs=1e-6)
    assert sum(dp.sample_count for dp in s.datapoints(T0, T0 + 600)) == len(samples)
