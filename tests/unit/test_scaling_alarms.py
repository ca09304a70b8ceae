"""CloudWatch alarm evaluation: M of N, missing data as CloudWatch's guide tabulates it, and its reason strings."""

from __future__ import annotations

import pytest

from emulator.scaling.alarms import (ALARM, BREACHING, GREATER_THAN, GREATER_THAN_OR_EQUAL, IGNORE,
                                     INSUFFICIENT_DATA, LESS_THAN, LESS_THAN_OR_EQUAL, MISSING, NOT_BREACHING, OK,
                                     MetricAlarm, evaluate_alarm, evaluate_series, format_timestamp, format_value)
from emulator.scaling.datapoints import MetricSeries

T0 = 1_795_684_440.0  # 26/11/26 09:14:00 UTC
RETAIN = "retain"


def points(pattern: str, breach: float = 90.0, calm: float = 50.0, start: float = T0) -> list:
    """'0 - X' -> [(t, 50.0), (t+60, None), (t+120, 90.0)]: 0 non-breaching, X breaching, - missing."""
    values = {"0": calm, "X": breach, "-": None}
    return [(start + 60 * i, values[c]) for i, c in enumerate(pattern.split())]


def alarm(n=3, m=None, treat=MISSING, threshold=75.0, op=GREATER_THAN) -> MetricAlarm:
    return MetricAlarm("web-cpu-high", threshold, op, n, datapoints_to_alarm=m, treat_missing_data=treat)


def state_of(a: MetricAlarm, pattern: str, current: str) -> str:
    """The state after `pattern`, where X is a value that breaches `a` and 0 one that doesn't."""
    above, below = a.threshold + 15, a.threshold - 25
    breach, calm = (above, below) if a.comparison_operator.startswith("Greater") else (below, above)
    return evaluate_alarm(a, points(pattern, breach, calm), current).state


# "How alarm state is evaluated when data is missing", first table: 3 of 3, 5 datapoints fetched.
THREE_OF_THREE = [
    ("0 - X - X", OK, OK, OK, OK),
    ("0 - - - -", OK, OK, OK, OK),
    ("- - - - -", INSUFFICIENT_DATA, RETAIN, ALARM, OK),
    ("0 X X - X", ALARM, ALARM, ALARM, ALARM),
    ("- - - - X", INSUFFICIENT_DATA, RETAIN, ALARM, OK),
    ("X - - - -", ALARM, RETAIN, ALARM, OK),
]
# Second table: 2 of 3.
TWO_OF_THREE = [
    ("0 - X - X", ALARM, ALARM, ALARM, ALARM),
    ("0 0 X 0 X", ALARM, ALARM, ALARM, ALARM),
    ("0 - X - -", OK, OK, ALARM, OK),
    ("- - - - 0", OK, OK, ALARM, OK),
    ("- - - - X", INSUFFICIENT_DATA, RETAIN, ALARM, OK),
]


def _table_cases(rows, m):
    for row in rows:
        pattern = row[0]
        for treat, expected in zip((MISSING, IGNORE, BREACHING, NOT_BREACHING), row[1:]):
            yield pytest.param(m, pattern, treat, expected, id=f"{m or 3}of3 {pattern} {treat}")


@pytest.mark.parametrize("m, pattern, treat, expected",
                         list(_table_cases(THREE_OF_THREE, None)) + list(_table_cases(TWO_OF_THREE, 2)))
@pytest.mark.parametrize("current", [OK, ALARM])
def test_cloudwatch_missing_data_tables(m, pattern, treat, expected, current):
    got = state_of(alarm(m=m, treat=treat), pattern, current)
    assert got == (current if expected == RETAIN else expected)


@pytest.mark.parametrize("pattern, expected", [
    ("X X X", ALARM),
    ("0 X X", OK),
    ("X X 0", OK),
    ("X 0 X X X", ALARM),   # the newest three decide
    ("X X X X 0", OK),
], ids=lambda v: v if isinstance(v, str) else None)
def test_three_of_three_needs_three_consecutive_breaching_datapoints(pattern, expected):
    assert state_of(alarm(), pattern, OK) == expected


def test_fifteen_of_fifteen_for_the_scale_in_alarm():
    low = alarm(n=15, threshold=67.5, op=LESS_THAN)
    fourteen_low = "0 0 " + " ".join(["X"] * 14)
    assert state_of(low, fourteen_low, OK) == OK
    assert state_of(low, "0 " + " ".join(["X"] * 15), OK) == ALARM
    one_blip = " ".join(["X"] * 7 + ["0"] + ["X"] * 7)
    assert state_of(low, one_blip, OK) == OK


@pytest.mark.parametrize("op, value, breaches", [
    (GREATER_THAN, 75.0, False), (GREATER_THAN, 75.1, True),
    (GREATER_THAN_OR_EQUAL, 75.0, True), (GREATER_THAN_OR_EQUAL, 74.9, False),
    (LESS_THAN, 75.0, False), (LESS_THAN, 74.9, True),
    (LESS_THAN_OR_EQUAL, 75.0, True), (LESS_THAN_OR_EQUAL, 75.1, False),
], ids=lambda v: str(v))
def test_comparison_operators(op, value, breaches):
    assert alarm(op=op).breaches(value) is breaches


def test_alarm_reason_in_cloudwatch_words_newest_first():
    result = evaluate_alarm(alarm(), [(T0 - 120, 80.0), (T0 - 60, 79.5), (T0, 82.1)])
    assert result.state == ALARM
    assert result.reason == ("Threshold Crossed: 3 datapoints [82.1 (26/11/26 09:14:00), 79.5 (26/11/26 09:13:00), "
                             "80.0 (26/11/26 09:12:00)] were greater than the threshold (75.0).")
    assert result.latest == 82.1


def test_ok_reason_names_the_datapoints_that_did_not_breach():
    result = evaluate_alarm(alarm(), [(T0 - 120, 80.0), (T0 - 60, 90.0), (T0, 60.0)])
    assert result.state == OK
    assert result.reason == "Threshold Crossed: 1 datapoint [60.0 (26/11/26 09:14:00)] was not greater than the " \
                            "threshold (75.0)."


def test_m_out_of_n_reason_when_datapoints_to_alarm_is_set():
    a = alarm(m=2, op=GREATER_THAN_OR_EQUAL)
    result = evaluate_alarm(a, [(T0 - 120, 80.0), (T0 - 60, 10.0), (T0, 82.0)])
    assert result.reason == ("Threshold Crossed: 2 out of the last 3 datapoints [82.0 (26/11/26 09:14:00), "
                             "80.0 (26/11/26 09:12:00)] were greater than or equal to the threshold (75.0) "
                             "(minimum 2 datapoints for OK -> ALARM transition).")


@pytest.mark.parametrize("treat, pattern, reason", [
    (MISSING, "- - - - -", "Insufficient Data: 3 datapoints were unknown."),
    (NOT_BREACHING, "- - - - -", "Threshold Crossed: no datapoints were received for 3 periods and 3 missing "
                                 "datapoints were treated as [NonBreaching]."),
    (BREACHING, "- - - - 0", "Threshold Crossed: 1 datapoint [50.0 (26/11/26 09:18:00)] was not greater than the "
                             "threshold (75.0) and 2 missing datapoints were treated as [Breaching]."),
], ids=["insufficient", "all-missing-not-breaching", "fills-breaching"])
def test_missing_data_reasons(treat, pattern, reason):
    assert evaluate_alarm(alarm(treat=treat), points(pattern)).reason == reason


def test_only_the_evaluation_range_is_read():
    # Old breaching datapoints beyond the 5-period range don't count.
    assert state_of(alarm(), "X X X - - - - -", OK) == INSUFFICIENT_DATA


def test_evaluate_series_uses_whole_periods_before_now():
    series = MetricSeries()
    for minute, value in enumerate([80.0, 85.0, 90.0, 10.0]):
        series.add(T0 + 60 * minute + 30, value)
    # At 09:17:10 the 09:17 minute (value 10) is still running: 80, 85, 90 are the newest whole periods.
    assert evaluate_series(alarm(), series, T0 + 190).state == ALARM
    assert evaluate_series(alarm(), series, T0 + 250).state == OK


@pytest.mark.parametrize("value, text", [
    (75, "75.0"), (82.1, "82.1"), (6.046241709654764, "6.046241709654764"), (0.0, "0.0"),
    (1e7, "1.0E7"), (12345678.0, "1.2345678E7"), (0.0001, "1.0E-4"), (-2.5e-5, "-2.5E-5"), (200.0, "200.0"),
], ids=lambda v: str(v))
def test_values_are_written_as_java_writes_doubles(value, text):
    assert format_value(value) == text


def test_timestamps_are_written_day_first_utc():
    assert format_timestamp(T0) == "26/11/26 09:14:00"


def test_datapoints_to_alarm_above_evaluation_periods_is_refused():
    with pytest.raises(ValueError):
        alarm(n=3, m=4)
