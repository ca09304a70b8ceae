"""The ALB's CloudWatch figures per target group, as plain counters the proxy bumps per request.

Names follow `AWS/ApplicationELB`: RequestCount (requests for which a
target was chosen), HTTPCode_Target_NXX_Count (answers from targets),
HTTPCode_ELB_5XX_Count (502/503/504 the ALB made itself), TargetResponseTime
(from sending the request to the target until its response headers), and
RequestCount per target. The metrics layer reads `snapshot()`; workers in
other processes send snapshots that `merge` adds up. No prometheus_client
here: the exporter comes later and reads these.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Any

# Upper bounds (seconds) of the TargetResponseTime histogram; the last bucket is +Inf.
RESPONSE_TIME_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                         1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class TargetGroupStats:
    """Counters for one target group; every method is O(1) and allocation-free."""

    __slots__ = ("request_count", "target_codes", "elb_codes", "rt_count", "rt_sum", "rt_max",
                 "rt_buckets", "per_target")

    def __init__(self) -> None:
        self.request_count = 0
        self.target_codes = [0] * 6          # index: status // 100
        self.elb_codes: dict[int, int] = {}  # status -> count, for responses the ALB made
        self.rt_count = 0
        self.rt_sum = 0.0
        self.rt_max = 0.0
        self.rt_buckets = [0] * (len(RESPONSE_TIME_BUCKETS) + 1)
        self.per_target: dict[str, int] = {}

    def record_request(self, target_id: str) -> None:
        """A target was chosen for a request (CloudWatch counts RequestCount then)."""
        self.request_count += 1
        per = self.per_target
        per[target_id] = per.get(target_id, 0) + 1

    def record_target_response(self, status: int, seconds: float) -> None:
        """The target's response headers arrived, `seconds` after the request was sent."""
        klass = status // 100
        if 1 <= klass <= 5:
            self.target_codes[klass] += 1
        self.rt_count += 1
        self.rt_sum += seconds
        if seconds > self.rt_max:
            self.rt_max = seconds
        self.rt_buckets[bisect_left(RESPONSE_TIME_BUCKETS, seconds)] += 1

    def record_requests(self, target_id: str, count: int, status: int = 200, seconds: float = 0.01) -> None:
        """`count` requests answered alike by one target at once (synthetic traffic in simulations)."""
        if count <= 0:
            return
        self.request_count += count
        self.per_target[target_id] = self.per_target.get(target_id, 0) + count
        klass = status // 100
        if 1 <= klass <= 5:
            self.target_codes[klass] += count
        self.rt_count += count
        self.rt_sum += seconds * count
        self.rt_max = max(self.rt_max, seconds)
        self.rt_buckets[bisect_left(RESPONSE_TIME_BUCKETS, seconds)] += count

    def record_elb_response(self, status: int) -> None:
        """The ALB answered itself (400, 502, 503, 504)."""
        self.elb_codes[status] = self.elb_codes.get(status, 0) + 1

    # --- reading -----------------------------------------------------------------------

    def elb_count(self, klass: int) -> int:
        return sum(n for code, n in self.elb_codes.items() if code // 100 == klass)

    def snapshot(self) -> dict[str, Any]:
        """CloudWatch's names -> values since start (monotonic counters)."""
        data: dict[str, Any] = {"RequestCount": self.request_count}
        for klass in range(2, 6):
            data[f"HTTPCode_Target_{klass}XX_Count"] = self.target_codes[klass]
        data["HTTPCode_ELB_4XX_Count"] = self.elb_count(4)
        data["HTTPCode_ELB_5XX_Count"] = self.elb_count(5)
        for code in (502, 503, 504):
            data[f"HTTPCode_ELB_{code}_Count"] = self.elb_codes.get(code, 0)
        data["TargetResponseTime"] = {
            "count": self.rt_count, "sum": self.rt_sum, "max": self.rt_max,
            "buckets": list(zip(RESPONSE_TIME_BUCKETS + (float("inf"),), self.rt_buckets)),
        }
        data["RequestCountPerTarget"] = dict(self.per_target)
        data["elb_codes"] = dict(self.elb_codes)
        return data

    def merge(self, other: TargetGroupStats) -> None:
        """Add another process's counters to these (the parent sums its workers)."""
        self.request_count += other.request_count
        for i, n in enumerate(other.target_codes):
            self.target_codes[i] += n
        for code, n in other.elb_codes.items():
            self.elb_codes[code] = self.elb_codes.get(code, 0) + n
        self.rt_count += other.rt_count
        self.rt_sum += other.rt_sum
        self.rt_max = max(self.rt_max, other.rt_max)
        for i, n in enumerate(other.rt_buckets):
            self.rt_buckets[i] += n
        for target_id, n in other.per_target.items():
            self.per_target[target_id] = self.per_target.get(target_id, 0) + n

    def take(self) -> TargetGroupStats:
        """These counters, moved into a new object, and these reset to zero (for shipping deltas)."""
        moved = TargetGroupStats()
        moved.merge(self)
        self.__init__()  # type: ignore[misc]
        return moved

    def to_wire(self) -> dict[str, Any]:
        return {"request_count": self.request_count, "target_codes": self.target_codes,
                "elb_codes": {str(k): v for k, v in self.elb_codes.items()},
                "rt_count": self.rt_count, "rt_sum": self.rt_sum, "rt_max": self.rt_max,
                "rt_buckets": self.rt_buckets, "per_target": self.per_target}

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> TargetGroupStats:
        stats = cls()
        stats.request_count = int(data["request_count"])
        stats.target_codes = [int(n) for n in data["target_codes"]]
        stats.elb_codes = {int(k): int(v) for k, v in data["elb_codes"].items()}
        stats.rt_count, stats.rt_sum, stats.rt_max = int(data["rt_count"]), float(data["rt_sum"]), float(data["rt_max"])
        stats.rt_buckets = [int(n) for n in data["rt_buckets"]]
        stats.per_target = {str(k): int(v) for k, v in data["per_target"].items()}
        return stats
