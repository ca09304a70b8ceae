"""The ALB's pieces in ELBv2's shapes: target groups, their attributes, listeners, load balancers.

The proxy routes by these, the health checker runs each target group's
health check with its thresholds, and deregistration waits its delay, so
they are checked here once, with AWS's limits and ELBv2's `ValidationError`
wording. ELBv2 speaks PascalCase (`HealthCheckPath`): shapes.py's
PascalCase converter renders and reads these.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import ipaddress
import re
import typing
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..errors import AwsError, ValidationError
from .arn import DEFAULT_ACCOUNT, DEFAULT_REGION, target_group_arn
from .shapes import fail, from_pascal_api, out_of_range, pascal_converter, to_pascal_api

T = TypeVar("T")

def stable_id(*parts: str, length: int = 16) -> str:
    """Hex id derived from names, so loading the same stack twice gives the same ARNs."""
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:length]


# --- target groups -------------------------------------------------------------

HEALTH_CHECK_INTERVAL = (5, 300)
HEALTH_CHECK_TIMEOUT = (2, 120)
THRESHOLD_COUNT = (2, 10)
MATCHER_CODES = (200, 499)
DEREGISTRATION_DELAY = (0, 3600)
SLOW_START = (30, 900)
ALGORITHMS = ("round_robin", "least_outstanding_requests")
TARGET_TYPES = ("instance", "ip")
_NAME = re.compile(r"^[A-Za-z0-9-]{1,32}$")
_MATCHER_ITEM = re.compile(r"^\s*(\d{1,3})\s*(?:-\s*(\d{1,3})\s*)?$", re.ASCII)


@functools.lru_cache(maxsize=256)  # the health checker asks on every check
def parse_matcher(text: str) -> frozenset[int]:
    """The status codes an `HttpCode` matcher accepts: "200", "200,202", "200-299" or a mix.

    Codes must lie in 200-499; `code in parse_matcher(text)` says whether a response passes.
    """
    codes: set[int] = set()
    for item in str(text).split(","):
        m = _MATCHER_ITEM.match(item)
        if not m:
            fail(ValidationError, "Matcher.HttpCode",
                 f"Invalid matcher HTTP code '{text}': use a code, a list ('200,202') or a range ('200-299').")
        first, last = int(m.group(1)), int(m.group(2) or m.group(1))
        if not (MATCHER_CODES[0] <= first <= last <= MATCHER_CODES[1]):
            fail(ValidationError, "Matcher.HttpCode",
                 f"Health check matcher HTTP code '{item.strip()}' must be within '200-499' range.")
        codes.update(range(first, last + 1))
    return frozenset(codes)


@dataclass
class Matcher:
    http_code: str = "200"


@dataclass
class TargetGroupAttributes:
    """ModifyTargetGroupAttributes' keys the emulator acts on; other valid keys kept as strings."""

    deregistration_delay_timeout_seconds: int = 300
    load_balancing_algorithm_type: str = "round_robin"
    slow_start_duration_seconds: int = 0
    other: dict[str, str] = field(default_factory=dict)

    KEYS: typing.ClassVar[dict[str, str]] = {
        "deregistration_delay.timeout_seconds": "deregistration_delay_timeout_seconds",
        "load_balancing.algorithm.type": "load_balancing_algorithm_type",
        "slow_start.duration_seconds": "slow_start_duration_seconds",
    }
    STORED_KEYS: typing.ClassVar[frozenset[str]] = frozenset({
        "stickiness.enabled", "stickiness.type", "stickiness.lb_cookie.duration_seconds",
        "stickiness.app_cookie.cookie_name", "stickiness.app_cookie.duration_seconds",
        "load_balancing.cross_zone.enabled", "load_balancing.algorithm.anomaly_mitigation",
        "target_group_health.unhealthy_state_routing.minimum_healthy_targets.count",
        "target_group_health.unhealthy_state_routing.minimum_healthy_targets.percentage",
        "target_group_health.dns_failover.minimum_healthy_targets.count",
        "target_group_health.dns_failover.minimum_healthy_targets.percentage",
    })

    def to_api(self) -> list[dict[str, str]]:
        typed = [{"Key": key, "Value": str(getattr(self, name))} for key, name in self.KEYS.items()]
        return typed + [{"Key": k, "Value": v} for k, v in sorted(self.other.items())]

    @classmethod
    def from_api(cls, items: Any) -> TargetGroupAttributes:
        """From `[{Key, Value}, ...]`; unknown keys and non-integer numbers are ValidationErrors."""
        attrs = cls()
        for i, item in enumerate(items if isinstance(items, list) else [items]):
            if not isinstance(item, dict) or set(item) != {"Key", "Value"}:
                fail(ValidationError, f"Attributes[{i}]", "Each attribute is {Key: ..., Value: ...}.")
            key, value = item["Key"], item["Value"]
            value = str(value).lower() if isinstance(value, bool) else str(value)  # YAML's true -> "true"
            name = cls.KEYS.get(key)
            if name is None and key not in cls.STORED_KEYS:
                fail(ValidationError, f"Attributes[{i}].Key", f"Target group attribute key '{key}' is not recognized")
            if name == "load_balancing_algorithm_type":
                attrs.load_balancing_algorithm_type = value
            elif name:
                if not re.fullmatch(r"-?\d+", value):
                    fail(ValidationError, f"Attributes[{i}].Value",
                         f"Target group attribute '{key}' must be an integer, not '{value}'")
                setattr(attrs, name, int(value))
            else:
                attrs.other[key] = value
        return attrs


pascal_converter.register_unstructure_hook(TargetGroupAttributes, TargetGroupAttributes.to_api)


@dataclass
class TargetGroup:
    """A target group as DescribeTargetGroups shows it, plus its attributes."""

    target_group_name: str
    target_group_arn: str | None = None
    protocol: str = "HTTP"
    port: int | None = None
    vpc_id: str | None = None
    health_check_protocol: str = "HTTP"
    health_check_port: str = "traffic-port"
    health_check_enabled: bool = True
    health_check_path: str = "/"
    health_check_interval_seconds: int = 30
    health_check_timeout_seconds: int = 5
    healthy_threshold_count: int = 5
    unhealthy_threshold_count: int = 2
    matcher: Matcher = field(default_factory=Matcher)
    target_type: str = "instance"
    load_balancer_arns: list[str] = field(default_factory=list)
    attributes: TargetGroupAttributes = field(default_factory=TargetGroupAttributes)

    def to_api(self, *, with_attributes: bool = False) -> dict[str, Any]:
        """DescribeTargetGroups' shape; `with_attributes` adds `Attributes` (for storing it whole)."""
        data = to_pascal_api(self)
        if not with_attributes:
            data.pop("Attributes")
        return data

    @classmethod
    def from_api(cls, data: Any) -> TargetGroup:
        """From DescribeTargetGroups' shape, with or without `Attributes`."""
        if not isinstance(data, dict):
            fail(ValidationError, "", "A target group is an object.")
        data = dict(data)
        attributes = TargetGroupAttributes.from_api(data.pop("Attributes", []))
        return dataclasses.replace(from_pascal_api(cls, data, ValidationError), attributes=attributes)

    def matches(self, status_code: int) -> bool:
        return status_code in parse_matcher(self.matcher.http_code)


def parse_target_group(data: Any, region: str = DEFAULT_REGION, account: str = DEFAULT_ACCOUNT) -> TargetGroup:
    """CreateTargetGroup's request (`Name`, ..., plus `Attributes` as ModifyTargetGroupAttributes takes)."""
    if not isinstance(data, dict):
        fail(ValidationError, "", "A target group is an object of CreateTargetGroup parameters.")
    if "TargetGroupName" in data or "Name" not in data:
        fail(ValidationError, "Name", "CreateTargetGroup names the group with 'Name'.")
    request = {("TargetGroupName" if k == "Name" else k): v for k, v in data.items()}
    for output_only in ("TargetGroupArn", "LoadBalancerArns"):
        if output_only in request:
            fail(ValidationError, output_only, f"Unknown parameter '{output_only}': ELBv2 sets it.")
    try:
        tg = TargetGroup.from_api(request)
        tg.target_group_arn = target_group_arn(tg.target_group_name, stable_id(region, tg.target_group_name),
                                               region=region, account=account)
        validate_target_group(tg)
    except AwsError as exc:  # point at the request's key, `Name`
        if getattr(exc, "field_path", "") == "TargetGroupName":
            exc.field_path = "Name"  # type: ignore[attr-defined]
        raise
    return tg


def validate_target_group(tg: TargetGroup) -> None:
    _check_name("Target group", "TargetGroupName", tg.target_group_name)
    if tg.target_type not in TARGET_TYPES:
        fail(ValidationError, "TargetType",
             f"Target type '{tg.target_type}' is not supported by this emulator; use instance or ip.")
    for path, value in (("Protocol", tg.protocol), ("HealthCheckProtocol", tg.health_check_protocol)):
        if value != "HTTP":
            fail(ValidationError, path, f"{path} '{value}' is not supported by this emulator's ALB; use HTTP.")
    if tg.port is None:
        fail(ValidationError, "Port", "A port must be specified")
    out_of_range(ValidationError, "Port", tg.port, 1, 65535)
    if tg.health_check_port != "traffic-port" and not (
            tg.health_check_port.isdigit() and 1 <= int(tg.health_check_port) <= 65535):
        fail(ValidationError, "HealthCheckPort",
             f"Health check port '{tg.health_check_port}' must be 'traffic-port' or a port number (1-65535)")
    if not tg.health_check_path.startswith("/") or len(tg.health_check_path) > 1024:
        fail(ValidationError, "HealthCheckPath", "Health check path must begin with '/' and be at most 1024 characters")
    interval, timeout = tg.health_check_interval_seconds, tg.health_check_timeout_seconds
    out_of_range(ValidationError, "HealthCheckIntervalSeconds", interval, *HEALTH_CHECK_INTERVAL)
    out_of_range(ValidationError, "HealthCheckTimeoutSeconds", timeout, *HEALTH_CHECK_TIMEOUT)
    if timeout >= interval:
        fail(ValidationError, "HealthCheckTimeoutSeconds",
             f"Health check timeout '{timeout}' must be smaller than the interval '{interval}'")
    out_of_range(ValidationError, "HealthyThresholdCount", tg.healthy_threshold_count, *THRESHOLD_COUNT)
    out_of_range(ValidationError, "UnhealthyThresholdCount", tg.unhealthy_threshold_count, *THRESHOLD_COUNT)
    parse_matcher(tg.matcher.http_code)
    validate_attributes(tg.attributes)


def validate_attributes(attrs: TargetGroupAttributes) -> None:
    delay = attrs.deregistration_delay_timeout_seconds
    if not DEREGISTRATION_DELAY[0] <= delay <= DEREGISTRATION_DELAY[1]:
        fail(ValidationError, "Attributes",
             f"'deregistration_delay.timeout_seconds' value '{delay}' must be between '0' and '3600'")
    if attrs.load_balancing_algorithm_type not in ALGORITHMS:
        fail(ValidationError, "Attributes",
             f"'load_balancing.algorithm.type' value '{attrs.load_balancing_algorithm_type}' is not valid; "
             f"valid values: {', '.join(ALGORITHMS)}")
    slow = attrs.slow_start_duration_seconds
    if slow != 0 and not SLOW_START[0] <= slow <= SLOW_START[1]:
        fail(ValidationError, "Attributes",
             f"'slow_start.duration_seconds' value '{slow}' must be 0 (off) or between '30' and '900'")
    if slow and attrs.load_balancing_algorithm_type == "least_outstanding_requests":
        fail(ValidationError, "Attributes",
             "Slow start cannot be enabled with the 'least_outstanding_requests' load balancing algorithm")


def _check_name(what: str, path: str, name: str) -> None:
    if not _NAME.match(name or ""):
        fail(ValidationError, path, f"{what} name '{name}' must be 1-32 characters, only alphanumeric "
                                    "characters and hyphens (-)")
    if name.startswith("-") or name.endswith("-"):
        fail(ValidationError, path, f"{what} name '{name}' cannot begin or end with '-'")


# --- listeners and load balancers ---------------------------------------------

@dataclass
class Action:
    type: str = "forward"
    target_group_arn: str | None = None


@dataclass
class Listener:
    port: int
    default_actions: list[Action]
    protocol: str = "HTTP"
    listener_arn: str | None = None
    load_balancer_arn: str | None = None

    @property
    def target_group_arn(self) -> str | None:
        """Where the default action forwards."""
        return next((a.target_group_arn for a in self.default_actions if a.type == "forward"), None)

    def to_api(self) -> dict[str, Any]:
        return to_pascal_api(self)

    @classmethod
    def from_api(cls, data: Any) -> Listener:
        return from_pascal_api(cls, data, ValidationError)


@dataclass
class LoadBalancer:
    """An ALB; `Listeners` and `Host` (the address the local proxy binds) are the emulator's additions."""

    load_balancer_name: str
    load_balancer_arn: str | None = None
    type: str = "application"
    scheme: str = "internet-facing"
    listeners: list[Listener] = field(default_factory=list)
    host: str = "127.0.0.1"

    def to_api(self) -> dict[str, Any]:
        return to_pascal_api(self)

    @classmethod
    def from_api(cls, data: Any) -> LoadBalancer:
        return from_pascal_api(cls, data, ValidationError)

    @property
    def resource_label_prefix(self) -> str:
        """`app/<name>/<id>`, the load-balancer half of ALBRequestCountPerTarget's ResourceLabel."""
        return (self.load_balancer_arn or "").split(":loadbalancer/", 1)[-1]


def load_balancer_arn(name: str, region: str = DEFAULT_REGION, account: str = DEFAULT_ACCOUNT) -> str:
    return f"arn:aws:elasticloadbalancing:{region}:{account}:loadbalancer/app/{name}/{stable_id(region, name)}"


def listener_arn(lb_arn: str, port: int) -> str:
    return lb_arn.replace(":loadbalancer/", ":listener/", 1) + "/" + stable_id(lb_arn, str(port))


def validate_load_balancer(lb: LoadBalancer) -> None:
    _check_name("Load balancer", "LoadBalancerName", lb.load_balancer_name)
    if lb.load_balancer_name.startswith("internal-"):
        fail(ValidationError, "LoadBalancerName", "Load balancer name cannot begin with 'internal-'")
    try:
        ipaddress.ip_address(lb.host)
    except ValueError:
        if lb.host != "localhost":
            fail(ValidationError, "Host", f"Host '{lb.host}' must be an IP address (e.g. 127.0.0.1) or localhost")
    seen: set[int] = set()
    for i, listener in enumerate(lb.listeners):
        out_of_range(ValidationError, f"Listeners[{i}].Port", listener.port, 1, 65535)
        if listener.port in seen:
            fail(ValidationError, f"Listeners[{i}].Port", f"A listener already exists on port {listener.port}")
        seen.add(listener.port)
        if listener.protocol != "HTTP":
            fail(ValidationError, f"Listeners[{i}].Protocol",
                 f"Listener protocol '{listener.protocol}' is not supported by this emulator's ALB; use HTTP.")
        if not listener.target_group_arn:
            fail(ValidationError, f"Listeners[{i}].DefaultActions",
                 "A listener needs a forward action to a target group")

