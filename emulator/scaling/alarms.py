"""CloudWatch metric-alarm evaluation: the last datapoints in, OK / ALARM / INSUFFICIENT_DATA and the reason out.

Both scaling dimensions act only through alarms (Application Auto Scaling's
AlarmHigh/AlarmLow on a service, the ASG's on CapacityProviderReservation),
so this decides when scaling starts. The rules are CloudWatch's ("Using
Amazon CloudWatch alarms", "How alarm state is evaluated when data is
missing"):

- An alarm looks at an *evaluation range* a little longer than its
  EvaluationPeriods N. With at least N real datapoints there, the newest N
  are evaluated and TreatMissingData doesn't matter.
- With fewer, `breaching` / `notBreaching` fill the gap (as few fills as
  possible; every real datapoint in the range counts). `missing` and
  `ignore` don't fill: M breaching datapoints still mean ALARM, any
  non-breaching one means OK, and with no datapoints at all `missing`
  gives INSUFFICIENT_DATA while `ignore` keeps the current state. One more
  `missing` rule: if the oldest breaching datapoint in the range is at least
  M periods old and nothing newer is non-breaching, the alarm goes to ALARM.
  This reproduces both tables in that guide (the tests replay them).
- ALARM needs M (DatapointsToAlarm, default N) breaching datapoints.

The reason strings follow the ones CloudWatch writes (seen in alarm
history): `Threshold Crossed: 3 datapoints [82.1 (26/11/26 09:14:00), ...]
were greater than the threshold (75.0).`, newest first, with the
`M out of the last N` form when DatapointsToAlarm is set explicitly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal

from .datapoints import AVERAGE, MetricSeries

OK, ALARM, INSUFFICIENT_DATA = "OK", "ALARM", "INSUFFICIENT_DATA"

GREATER_THAN = "GreaterThanThreshold"
GREATER_THAN_OR_EQUAL = "GreaterThanOrEqualToThreshold"
LESS_THAN = "LessThanThreshold"
LESS_THAN_OR_EQUAL = "LessThanOrEqualToThreshold"
_WORDS = {GREATER_THAN: "greater than", GREATER_THAN_OR_EQUAL: "greater than or equal to",
          LESS_THAN: "less than", LESS_THAN_OR_EQUAL: "less than or equal to"}

MISSING, NOT_BREACHING, BREACHING, IGNORE = "missing", "notBreaching", "breaching", "ignore"
TREAT_MISSING_DATA = (MISSING, NOT_BREACHING, BREACHING, IGNORE)

# CloudWatch fetches "a higher number of data points than Evaluation Periods"; its
# example fetches 5 for 3. UNCONFIRMED for other sizes: we always fetch 2 more.
EXTRA_RANGE_PERIODS = 2

Point = tuple[float, "float | None"]  # (period start, value or None when no datapoint arrived)


@dataclass(frozen=True)
class MetricAlarm:
    """The PutMetricAlarm fields that decide the alarm's state."""

    alarm_name: str
    threshold: float
    comparison_operator: str
    evaluation_periods: int
    datapoints_to_alarm: int | None = None  # None: M = N, and the short reason wording
    period: int = 60
    statistic: str = AVERAGE
    treat_missing_data: str = MISSING
    namespace: str = ""
    metric_name: str = ""
    dimensions: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.comparison_operator not in _WORDS:
            raise ValueError(f"Unknown ComparisonOperator {self.comparison_operator!r}")
        if self.treat_missing_data not in TREAT_MISSING_DATA:
            raise ValueError(f"Unknown TreatMissingData {self.treat_missing_data!r}")
        if not 1 <= self.datapoints_to_alarm_or_n <= self.evaluation_periods:
            raise ValueError("DatapointsToAlarm must be between 1 and EvaluationPeriods")

    @property
    def datapoints_to_alarm_or_n(self) -> int:
        """M: how many breaching datapoints put the alarm in ALARM."""
        return self.evaluation_periods if self.datapoints_to_alarm is None else self.datapoints_to_alarm

    @property
    def evaluation_range(self) -> int:
        return self.evaluation_periods + EXTRA_RANGE_PERIODS

    def breaches(self, value: float) -> bool:
        op, threshold = self.comparison_operator, self.threshold
        if op == GREATER_THAN:
            return value > threshold
        if op == GREATER_THAN_OR_EQUAL:
            return value >= threshold
        if op == LESS_THAN:
            return value < threshold
        return value <= threshold

    def window(self, now: float) -> tuple[float, float]:
        """[start, end) of the evaluation range at `now`: whole periods only, the running one excluded."""
        end = math.floor(now / self.period) * self.period
        return end - self.evaluation_range * self.period, end


@dataclass(frozen=True)
class AlarmEvaluation:
    state: str
    reason: str
    latest: float | None = None  # newest real datapoint in the range (what target tracking scales on)


def evaluate_alarm(alarm: MetricAlarm, datapoints: Sequence[Point],
                   current_state: str = INSUFFICIENT_DATA) -> AlarmEvaluation:
    """The alarm's state from its evaluation range `datapoints` (oldest first, None = missing)."""
    window = list(datapoints)[-alarm.evaluation_range:]
    real = [(t, v) for t, v in window if v is not None]
    latest = real[-1][1] if real else None
    n, m = alarm.evaluation_periods, alarm.datapoints_to_alarm_or_n
    if len(real) >= n:
        return _judge(alarm, real[-n:], latest)
    if alarm.treat_missing_data in (BREACHING, NOT_BREACHING):
        return _judge(alarm, real, latest, fills=n - len(real), fills_breach=alarm.treat_missing_data == BREACHING)
    breaching = [p for p in real if alarm.breaches(p[1])]
    if len(breaching) >= m or len(breaching) < len(real):
        return _judge(alarm, real, latest)  # M breaching, or one non-breaching: the real datapoints settle it
    # Fewer than M datapoints, every one of them breaching (or none at all).
    if alarm.treat_missing_data == IGNORE:
        return AlarmEvaluation(current_state, f"Missing data ignored: the alarm stays {current_state}.", latest)
    if breaching and _oldest_breach_age(alarm, window) >= m:
        return AlarmEvaluation(ALARM, _crossed(alarm, breaching, True), latest)
    unknown = n - len(real)
    return AlarmEvaluation(INSUFFICIENT_DATA,
                           f"Insufficient Data: {unknown} {_plural(unknown, 'datapoint')} "
                           f"{'was' if unknown == 1 else 'were'} unknown.", latest)


def evaluate_series(alarm: MetricAlarm, series: MetricSeries, now: float,
                    current_state: str = INSUFFICIENT_DATA) -> AlarmEvaluation:
    """Evaluate the alarm on a stored series at `now`."""
    start, end = alarm.window(now)
    return evaluate_alarm(alarm, series.values(start, end, alarm.statistic, alarm.period), current_state)


def _oldest_breach_age(alarm: MetricAlarm, window: list[Point]) -> int:
    """How many periods old (newest = 1) the oldest breaching datapoint in the range is."""
    for index, (_, value) in enumerate(window):
        if value is not None and alarm.breaches(value):
            return len(window) - index
    return 0


def _judge(alarm: MetricAlarm, real: list[Point], latest: float | None,
           fills: int = 0, fills_breach: bool = False) -> AlarmEvaluation:
    breaching = [p for p in real if alarm.breaches(p[1])]
    count = len(breaching) + (fills if fills_breach else 0)
    if count >= alarm.datapoints_to_alarm_or_n:
        return AlarmEvaluation(ALARM, _crossed(alarm, breaching, True, fills, fills_breach), latest)
    calm = [p for p in real if not alarm.breaches(p[1])]
    return AlarmEvaluation(OK, _crossed(alarm, calm, False, fills, fills_breach), latest)


def _crossed(alarm: MetricAlarm, listed: list[Point], breaching: bool,
             missing: int = 0, missing_breach: bool = False) -> str:
    """CloudWatch's `Threshold Crossed: ...` sentence for the datapoints that decided the state."""
    words = _WORDS[alarm.comparison_operator] if breaching else "not " + _WORDS[alarm.comparison_operator]
    k = len(listed)
    items = ", ".join(f"{format_value(v)} ({format_timestamp(t)})" for t, v in reversed(listed))
    if not listed:
        text = f"Threshold Crossed: no datapoints were received for {missing} {_plural(missing, 'period')}"
    elif alarm.datapoints_to_alarm is None:
        text = (f"Threshold Crossed: {k} {_plural(k, 'datapoint')} [{items}] {'was' if k == 1 else 'were'} "
                f"{words} the threshold ({format_value(alarm.threshold)})")
    else:
        text = (f"Threshold Crossed: {k} out of the last {alarm.evaluation_periods} datapoints [{items}] "
                f"{'was' if k == 1 else 'were'} {words} the threshold ({format_value(alarm.threshold)})")
    if missing:
        label = "Breaching" if missing_breach else "NonBreaching"
        text += (f" and {missing} missing {_plural(missing, 'datapoint')} "
                 f"{'was' if missing == 1 else 'were'} treated as [{label}]")
    if alarm.datapoints_to_alarm is not None and listed:
        # UNCONFIRMED: the ALARM -> OK wording; CloudWatch's OK -> ALARM one is observed.
        need = alarm.datapoints_to_alarm if breaching else alarm.evaluation_periods - alarm.datapoints_to_alarm + 1
        text += f" (minimum {need} {_plural(need, 'datapoint')} for {'OK -> ALARM' if breaching else 'ALARM -> OK'} " \
                "transition)"
    return text + "."


def _plural(count: int, word: str) -> str:
    return word if count == 1 else word + "s"


def format_timestamp(timestamp: float) -> str:
    """CloudWatch's datapoint stamp in reasons: dd/mm/yy HH:MM:SS, UTC."""
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).strftime("%d/%m/%y %H:%M:%S")


def format_value(value: float) -> str:
    """A number as Java's Double.toString writes it (CloudWatch is Java): 75.0, 82.1, 1.0E7."""
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0 or 1e-3 <= abs(value) < 1e7:
        return repr(value)
    sign, digits, exponent = Decimal(repr(value)).as_tuple()
    power = len(digits) + int(exponent) - 1
    digits_text = "".join(map(str, digits)).rstrip("0") or "0"
    mantissa = digits_text[0] + "." + (digits_text[1:] or "0")
    return f"{'-' if sign else ''}{mantissa}E{power}"
