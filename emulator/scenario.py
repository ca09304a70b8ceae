"""Stack files: one YAML file declares a whole ECS-on-EC2 stack, each section in AWS's own request shape.

People paste from AWS's docs, so every section is the JSON of the call that
would create it (CreateCluster, CreateAutoScalingGroup, CreateCapacityProvider,
RegisterTaskDefinition, CreateTargetGroup, CreateService, PutScalingPolicy).
Loading validates everything and every cross-reference up front and has no
side effects: it returns a `Stack` or raises one `StackError` naming the file,
the line, the key path (`services[0].deploymentConfiguration.maximumPercent`)
and the problem in AWS's words. Applying a stack is the app's job.
"""

from __future__ import annotations

import difflib
import importlib.resources
import math
import os
import re
from dataclasses import dataclass, field
from importlib.resources.abc import Traversable
from typing import Any, Callable

import yaml

from .control.metric_alarms import PutMetricAlarmRequest, parse_metric_alarm
from .errors import AwsError, InvalidParameterException
from .model.arn import DEFAULT_REGION, cluster_arn, resource_of, short_name
from .model.cluster import CapacityProviderStrategyItem, Cluster, Tag
from .model.elb import (Action, Listener, LoadBalancer, TargetGroup, listener_arn, load_balancer_arn,
                        parse_target_group, validate_load_balancer)
from .model.scaling import (AutoScalingGroup, CapacityProvider, ScalableTarget, ScalingPolicy, check_provider_group,
                            parse_auto_scaling_group, parse_capacity_provider, parse_scalable_target,
                            parse_scaling_policy, service_resource_id)
from .model.service_request import (CreateServiceRequest, check_against_task_definition, parse_create_service,
                                    validate_capacity_provider_strategy)
from .model.task_definition import TaskDefinition
from .model.shapes import from_camel_api
from .model.task_definition_validation import parse_task_definition
from .placement.query import compile_expression

SECTIONS = ("settings", "cluster", "autoScalingGroups", "capacityProviders", "taskDefinitions",
            "targetGroups", "loadBalancers", "services", "scalingPolicies", "metricAlarms")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
_CLUSTER_NAME = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
_ANY_HOST = ("0.0.0.0", "::")
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: same results, ~10x faster


class StackError(ValueError):
    """A stack file that cannot load: `file:line: key.path: problem`."""

    def __init__(self, source: str, path: str, problem: str, line: int | None = None,
                 column: int | None = None) -> None:
        self.source, self.path, self.problem, self.line, self.column = source, path, problem, line, column
        where = source + (f":{line}" if line else "") + (f":{column}" if column else "")
        super().__init__(f"{where}: {path}: {problem}" if path else f"{where}: {problem}")


@dataclass(frozen=True)
class ResourceScale:
    """Fraction of an instance type's nominal vCPU and memory the real Docker host gets."""

    cpu: float = 0.25
    memory: float = 0.25


@dataclass(frozen=True)
class Settings:
    time_scale: float = 1.0
    region: str = DEFAULT_REGION
    instance_resource_scale: ResourceScale = field(default_factory=ResourceScale)


@dataclass
class Stack:
    source: str
    settings: Settings
    cluster: Cluster
    auto_scaling_groups: list[AutoScalingGroup] = field(default_factory=list)
    capacity_providers: list[CapacityProvider] = field(default_factory=list)
    task_definitions: list[TaskDefinition] = field(default_factory=list)  # file order = registration order
    target_groups: list[TargetGroup] = field(default_factory=list)
    load_balancers: list[LoadBalancer] = field(default_factory=list)
    services: list[CreateServiceRequest] = field(default_factory=list)
    scalable_targets: list[ScalableTarget] = field(default_factory=list)
    scaling_policies: list[ScalingPolicy] = field(default_factory=list)
    metric_alarms: list[PutMetricAlarmRequest] = field(default_factory=list)  # AlarmActions as policy ARNs

    def task_definition(self, ref: str) -> TaskDefinition | None:
        """`family` (its last in the file) or `family:N` (its Nth: the revision a fresh emulator gives it)."""
        family, _, revision = resource_of(ref).removeprefix("task-definition/").partition(":")
        same = [td for td in self.task_definitions if td.family == family]
        if not revision:
            return same[-1] if same else None
        return same[int(revision) - 1] if revision.isdigit() and 0 < int(revision) <= len(same) else None

    def target_group(self, name_or_arn: str) -> TargetGroup | None:
        return next((tg for tg in self.target_groups if name_or_arn in (tg.target_group_arn, tg.target_group_name)
                     or _arn_name(name_or_arn, "targetgroup/") == tg.target_group_name), None)

    def auto_scaling_group(self, name_or_arn: str) -> AutoScalingGroup | None:
        name = _arn_name(name_or_arn, "autoScalingGroupName/") or name_or_arn
        return next((g for g in self.auto_scaling_groups if g.auto_scaling_group_name == name), None)

    def capacity_provider(self, name_or_arn: str) -> CapacityProvider | None:
        return next((cp for cp in self.capacity_providers if cp.name == short_name(name_or_arn)), None)

    def service(self, name: str) -> CreateServiceRequest | None:
        return next((s for s in self.services if s.service_name == name), None)

    def load_balancer_for(self, tg: TargetGroup) -> LoadBalancer | None:
        """The load balancer with a listener forwarding to `tg`."""
        return next((lb for lb in self.load_balancers
                     if any(li.target_group_arn == tg.target_group_arn for li in lb.listeners)), None)


def _arn_name(arn: str, marker: str) -> str | None:
    """`web-tg` from `...:targetgroup/web-tg/abc` (marker `targetgroup/`), None if not such an ARN."""
    if not arn.startswith("arn:") or marker not in arn:
        return None
    return arn.split(marker, 1)[1].split("/", 1)[0]


# --- entry points --------------------------------------------------------------

def default_stack_path() -> Traversable:
    """The seed article's production stack, shipped inside the package."""
    return importlib.resources.files("emulator") / "stacks" / "default.yaml"


def example_stack_paths() -> list[Traversable]:
    folder = importlib.resources.files("emulator") / "stacks" / "examples"
    return sorted((p for p in folder.iterdir() if p.name.endswith(".yaml")), key=lambda p: p.name)


def load_default_stack() -> Stack:
    return load_stack(default_stack_path())


def load_stack(path: str | os.PathLike[str] | Traversable) -> Stack:
    source = str(path)
    try:
        if isinstance(path, (str, os.PathLike)):
            with open(path, encoding="utf-8") as f:
                text = f.read()
        else:
            text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise StackError(source, "", f"cannot read the stack file: {getattr(exc, 'strerror', None) or exc}") from None
    return parse_stack(text, source)


def parse_stack(text: str, source: str = "<string>") -> Stack:
    """A validated Stack from a stack file's text; StackError otherwise."""
    return _StackReader(text, source).read()


# --- the reader ---------------------------------------------------------------

class _StackReader:
    def __init__(self, text: str, source: str) -> None:
        self.source = source
        self.lines: dict[str, int] = {}
        self.data = self._load(text)

    def _load(self, text: str) -> dict[str, Any]:
        loader = _Loader(text)
        try:  # compose once: the nodes give each key's line, then build the data from them
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            problem = ": ".join(str(p) for p in (getattr(exc, "context", None), getattr(exc, "problem", None)) if p)
            raise StackError(self.source, "", f"YAML syntax error: {problem or exc}",
                             mark.line + 1 if mark else None, mark.column + 1 if mark else None) from None
        finally:
            loader.dispose()
        if node is not None:
            self._index(node, "")
        if data is None:
            raise StackError(self.source, "", "the stack file is empty")
        if not isinstance(data, dict):
            raise self.error("", "a stack file is a mapping of sections: " + ", ".join(SECTIONS))
        return data

    def _index(self, node: yaml.Node, path: str) -> None:
        """Remember the line of every key path, and refuse duplicate keys (YAML would keep the last)."""
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key_node, value_node in node.value:
                key = str(key_node.value)
                child = f"{path}.{key}" if path else key
                if key in seen:
                    raise StackError(self.source, child, f"duplicate key '{key}'", key_node.start_mark.line + 1)
                seen.add(key)
                self.lines[child] = key_node.start_mark.line + 1
                self._index(value_node, child)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self._index(item, f"{path}[{i}]")

    def error(self, path: str, problem: str) -> StackError:
        probe = path
        while probe and probe not in self.lines:
            probe = re.sub(r"(\.[^.\[]*|\[\d+\])$", "", probe)
        return StackError(self.source, path, problem, self.lines.get(probe))

    def aws(self, path: str, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a model parser/check; its AWS error becomes a StackError at `path` + the error's field path."""
        try:
            return call(*args, **kwargs)
        except AwsError as exc:
            sub = getattr(exc, "field_path", "")
            raise self.error(_join(path, sub), str(exc)) from None

    def items(self, section: str) -> list[tuple[str, Any]]:
        value = self.data.get(section) or []
        if not isinstance(value, list):
            raise self.error(section, f"'{section}' is a list")
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                raise self.error(f"{section}[{i}]", "each entry is a mapping of the call's parameters")
        return [(f"{section}[{i}]", item) for i, item in enumerate(value)]

    def mapping(self, section: str, keys: tuple[str, ...]) -> dict[str, Any]:
        value = self.data.get(section) or {}
        if not isinstance(value, dict):
            raise self.error(section, f"'{section}' is a mapping")
        self.known_keys(section, value, keys)
        return value

    def known_keys(self, path: str, value: dict[str, Any], keys: tuple[str, ...]) -> None:
        for key in value:
            if key not in keys:
                hint = difflib.get_close_matches(str(key), keys, n=1)
                raise self.error(_join(path, str(key)), f"unknown key '{key}'" + (
                    f"; did you mean '{hint[0]}'?" if hint else f"; valid keys: {', '.join(keys)}"))

    def unique(self, path: str, name: str, seen: set[str], what: str) -> None:
        if name in seen:
            raise self.error(path, f"{what} '{name}' is declared twice")
        seen.add(name)

    def missing(self, path: str, what: str, name: str, declared: list[str]) -> StackError:
        listed = ", ".join(declared) if declared else "none"
        return self.error(path, f"{what} '{name}' is not declared in this file (declared: {listed})")

    # -- sections, in dependency order -----------------------------------------

    def read(self) -> Stack:
        self.known_keys("", self.data, SECTIONS)
        settings = self.settings()
        region = settings.region
        # The cluster needs the capacity providers, which need the groups: it is filled in third.
        stack = Stack(self.source, settings, Cluster(cluster_arn("default", region=region), "default"))
        stack.auto_scaling_groups = self.auto_scaling_groups(region)
        stack.capacity_providers = self.capacity_providers(stack, region)
        stack.cluster = self.cluster(stack, region)
        stack.task_definitions = self.task_definitions()
        stack.target_groups = self.target_groups(region)
        stack.load_balancers = self.load_balancers(stack, region)
        stack.services = self.services(stack)
        stack.scalable_targets, stack.scaling_policies = self.scaling_policies(stack, region)
        stack.metric_alarms = self.metric_alarms(stack)
        return stack

    def settings(self) -> Settings:
        raw = self.mapping("settings", ("timeScale", "region", "instanceResourceScale"))
        time_scale = raw.get("timeScale", 1.0)
        if not _is_number(time_scale) or not 0 < time_scale < math.inf:
            raise self.error("settings.timeScale", f"timeScale must be a number greater than 0, not {time_scale!r}")
        region = raw.get("region", DEFAULT_REGION)
        if not isinstance(region, str) or not _REGION.match(region):
            raise self.error("settings.region", f"'{region}' is not an AWS region name (e.g. us-east-1)")
        scale = raw.get("instanceResourceScale") or {}
        if not isinstance(scale, dict):
            raise self.error("settings.instanceResourceScale", "instanceResourceScale is a mapping {cpu, memory}")
        self.known_keys("settings.instanceResourceScale", scale, ("cpu", "memory"))
        for key, value in scale.items():
            if not _is_number(value) or not 0 < value <= 1:
                raise self.error(f"settings.instanceResourceScale.{key}",
                                 f"{key} must be a fraction in (0, 1], not {value!r}")
        return Settings(float(time_scale), region, ResourceScale(**{k: float(v) for k, v in scale.items()}))

    def auto_scaling_groups(self, region: str) -> list[AutoScalingGroup]:
        groups, seen = [], set()
        for path, item in self.items("autoScalingGroups"):
            asg = self.aws(path, parse_auto_scaling_group, item, region)
            self.unique(f"{path}.AutoScalingGroupName", asg.auto_scaling_group_name, seen, "Auto Scaling group")
            groups.append(asg)
        return groups

    def capacity_providers(self, stack: Stack, region: str) -> list[CapacityProvider]:
        providers, seen, used = [], set(), {}
        for path, item in self.items("capacityProviders"):
            cp = self.aws(path, parse_capacity_provider, item, region)
            ref = cp.auto_scaling_group_provider.auto_scaling_group_arn  # the file may name the group
            asg = stack.auto_scaling_group(ref)
            if asg is None:
                raise self.missing(f"{path}.autoScalingGroupProvider.autoScalingGroupArn", "Auto Scaling group", ref,
                                   [g.auto_scaling_group_name for g in stack.auto_scaling_groups])
            cp.auto_scaling_group_provider.auto_scaling_group_arn = asg.auto_scaling_group_arn
            self.aws(path, check_provider_group, cp, asg)
            self.unique(f"{path}.name", cp.name, seen, "Capacity provider")
            if asg.auto_scaling_group_name in used:
                raise self.error(f"{path}.autoScalingGroupProvider.autoScalingGroupArn",
                                 f"ClientException: The Auto Scaling group '{asg.auto_scaling_group_name}' is already "
                                 f"used by capacity provider '{used[asg.auto_scaling_group_name]}'.")
            used[asg.auto_scaling_group_name] = cp.name
            providers.append(cp)
        return providers

    def cluster(self, stack: Stack, region: str) -> Cluster:
        raw = self.data.get("cluster") or {}
        if not isinstance(raw, dict):
            raise self.error("cluster", "'cluster' is a mapping of CreateCluster parameters")
        req = self.aws("cluster", from_camel_api, _CreateClusterRequest, raw, InvalidParameterException)
        if not _CLUSTER_NAME.match(req.cluster_name):
            raise self.error("cluster.clusterName", "InvalidParameterException: Cluster name must be 1-255 "
                             "characters: letters, numbers, hyphens, and underscores.")
        declared = [cp.name for cp in stack.capacity_providers]
        names = declared if req.capacity_providers is None else req.capacity_providers
        for i, name in enumerate(names):
            if name not in declared:
                raise self.missing(f"cluster.capacityProviders[{i}]", "Capacity provider", name, declared)
        path = "cluster.defaultCapacityProviderStrategy"
        self.aws("cluster", validate_capacity_provider_strategy, req.default_capacity_provider_strategy,
                 "defaultCapacityProviderStrategy")
        for i, item in enumerate(req.default_capacity_provider_strategy):
            self.associated(f"{path}[{i}].capacityProvider", item.capacity_provider, names, declared)
        cluster = Cluster(cluster_arn(req.cluster_name, region=region), req.cluster_name,
                          capacity_providers=list(names), tags=req.tags,
                          default_capacity_provider_strategy=req.default_capacity_provider_strategy)
        if req.settings is not None:
            cluster.settings = req.settings
        return cluster

    def associated(self, path: str, name: str, associated: list[str], declared: list[str]) -> None:
        if name not in declared:
            raise self.missing(path, "Capacity provider", name, declared)
        if name not in associated:
            raise self.error(path, "InvalidParameterException: The specified capacity provider strategy cannot "
                             "contain a capacity provider that is not associated with the cluster. Associate the "
                             "capacity provider with the cluster or specify a valid capacity provider and try again.")

    def task_definitions(self) -> list[TaskDefinition]:
        definitions = []
        for path, item in self.items("taskDefinitions"):
            td = self.aws(path, parse_task_definition, item)
            for i, constraint in enumerate(td.placement_constraints):
                self.member_of(f"{path}.placementConstraints[{i}].expression", constraint.expression, "ClientException")
            definitions.append(td)
        return definitions

    def member_of(self, path: str, expression: str | None, code: str) -> None:
        try:
            compile_expression(expression or "")
        except ValueError as exc:
            raise self.error(path, f"{code}: {exc}") from None

    def target_groups(self, region: str) -> list[TargetGroup]:
        groups, seen = [], set()
        for path, item in self.items("targetGroups"):
            tg = self.aws(path, parse_target_group, item, region)
            self.unique(f"{path}.Name", tg.target_group_name, seen, "Target group")
            groups.append(tg)
        return groups

    def load_balancers(self, stack: Stack, region: str) -> list[LoadBalancer]:
        balancers, seen, bound = [], set(), {}
        for path, item in self.items("loadBalancers"):
            spec = self.aws(path, from_camel_api, _LoadBalancerSpec, item, InvalidParameterException)
            arn = load_balancer_arn(spec.name, region)
            lb = LoadBalancer(spec.name, arn, host=spec.host)
            for i, ls in enumerate(spec.listeners):
                tg = stack.target_group(ls.target_group)
                if tg is None:
                    raise self.missing(f"{path}.listeners[{i}].targetGroup", "Target group", ls.target_group,
                                       [g.target_group_name for g in stack.target_groups])
                lb.listeners.append(Listener(ls.port, [Action("forward", tg.target_group_arn)], ls.protocol,
                                             listener_arn(arn, ls.port), arn))
                if arn not in tg.load_balancer_arns:
                    tg.load_balancer_arns.append(arn)
            try:
                validate_load_balancer(lb)
            except AwsError as exc:
                raise self.error(_join(path, _spec_path(getattr(exc, "field_path", ""))), str(exc)) from None
            self.unique(f"{path}.name", lb.load_balancer_name, seen, "Load balancer")
            for i, listener in enumerate(lb.listeners):
                clash = next((name for (host, port), name in bound.items() if port == listener.port and
                              (host == lb.host or host in _ANY_HOST or lb.host in _ANY_HOST)), None)
                if clash:
                    raise self.error(f"{path}.listeners[{i}].port", f"port {listener.port} on {lb.host} is already "
                                     f"taken by load balancer '{clash}'")
                bound[(lb.host, listener.port)] = lb.load_balancer_name
            balancers.append(lb)
        return balancers

    def services(self, stack: Stack) -> list[CreateServiceRequest]:
        services, seen = [], set()
        for path, item in self.items("services"):
            item = self.resolve_target_groups(path, item, stack)
            req = self.aws(path, parse_create_service, item, check_expression=compile_expression)
            if req.cluster is not None and short_name(req.cluster) != stack.cluster.cluster_name:
                raise self.error(f"{path}.cluster", f"cluster '{req.cluster}' is not this file's cluster "
                                 f"('{stack.cluster.cluster_name}'); leave it out")
            td = stack.task_definition(req.task_definition or "")
            if td is None:
                raise self.missing(f"{path}.taskDefinition", "Task definition", req.task_definition or "",
                                   sorted({t.family for t in stack.task_definitions}))
            self.aws(path, check_against_task_definition, req, td)
            for i, lb in enumerate(req.load_balancers):
                self.check_target_group(f"{path}.loadBalancers[{i}]", stack.target_group(lb.target_group_arn), td)
            declared = [cp.name for cp in stack.capacity_providers]
            for i, item_ in enumerate(req.capacity_provider_strategy):
                self.associated(f"{path}.capacityProviderStrategy[{i}].capacityProvider", item_.capacity_provider,
                                stack.cluster.capacity_providers, declared)
            self.unique(f"{path}.serviceName", req.service_name, seen, "Service")
            services.append(req)
        return services

    def resolve_target_groups(self, path: str, item: dict[str, Any], stack: Stack) -> dict[str, Any]:
        """`targetGroupName` (the emulator's shorthand) or any ARN naming a file's group -> that group's ARN."""
        lbs = item.get("loadBalancers")
        if not isinstance(lbs, list):
            return item
        resolved = []
        for i, lb in enumerate(lbs):
            if isinstance(lb, dict) and ("targetGroupName" in lb or "targetGroupArn" in lb):
                key = "targetGroupName" if "targetGroupName" in lb else "targetGroupArn"
                if "targetGroupName" in lb and "targetGroupArn" in lb:
                    raise self.error(f"{path}.loadBalancers[{i}]", "give targetGroupArn or targetGroupName, not both")
                tg = stack.target_group(str(lb[key]))
                if tg is None:
                    raise self.missing(f"{path}.loadBalancers[{i}].{key}", "Target group", str(lb[key]),
                                       [g.target_group_name for g in stack.target_groups])
                lb = {k: v for k, v in lb.items() if k != "targetGroupName"} | {"targetGroupArn": tg.target_group_arn}
            resolved.append(lb)
        return {**item, "loadBalancers": resolved}

    def check_target_group(self, path: str, tg: TargetGroup, td: TaskDefinition) -> None:
        if tg.target_type == "ip" and td.network_mode != "awsvpc":
            raise self.error(f"{path}.targetGroupArn", f"InvalidParameterException: The provided target group "
                             f"{tg.target_group_arn} has target type ip, which is incompatible with the "
                             f"{td.network_mode} network mode specified in the task definition.")
        if not tg.load_balancer_arns:
            raise self.error(f"{path}.targetGroupArn", f"InvalidParameterException: The target group with "
                             f"targetGroupArn {tg.target_group_arn} does not have an associated load balancer.")

    def scaling_policies(self, stack: Stack, region: str) -> tuple[list[ScalableTarget], list[ScalingPolicy]]:
        bounds: dict[str, tuple[str, Any, Any]] = {}
        first_paths: dict[str, str] = {}  # service -> its first policy's path, in file order
        policies: list[ScalingPolicy] = []
        seen: set[str] = set()
        cluster = stack.cluster.cluster_name
        for path, item in self.items("scalingPolicies"):
            self.known_keys(path, item, _POLICY_KEYS)
            service = self.policy_service(path, item, stack)
            first_paths.setdefault(service.service_name, path)
            rid = service_resource_id(cluster, service.service_name)
            given = (item.get("MinCapacity"), item.get("MaxCapacity"))
            if given != (None, None):
                first = bounds.setdefault(service.service_name, (path, *given))
                if first[1:] != given:
                    raise self.error(f"{path}.MinCapacity", f"MinCapacity/MaxCapacity differ from {first[0]}: one "
                                     "scalable target per service")
            policy_data = {k: v for k, v in item.items() if k not in ("ServiceName", "MinCapacity", "MaxCapacity")}
            policy_data["ResourceId"] = rid
            self.fill_resource_label(path, policy_data, service, stack)
            policy = self.aws(path, parse_scaling_policy, policy_data, region)
            self.unique(f"{path}.PolicyName", f"{service.service_name}/{policy.policy_name}", seen, "Policy")
            policies.append(policy)
        targets = []
        for name, first_path in first_paths.items():
            if name not in bounds:
                raise self.error(first_path, "MinCapacity and MaxCapacity are required (RegisterScalableTarget) "
                                 f"in the first policy of service '{name}'")
            where, low, high = bounds[name]
            targets.append(self.aws(where, parse_scalable_target, {
                "ResourceId": service_resource_id(cluster, name), "MinCapacity": low, "MaxCapacity": high}))
        return targets, policies

    def policy_service(self, path: str, item: dict[str, Any], stack: Stack) -> CreateServiceRequest:
        name = item.get("ServiceName")
        rid = item.get("ResourceId")
        if name is None and isinstance(rid, str):
            name = rid.rsplit("/", 1)[-1]
        service = stack.service(str(name)) if name is not None else None
        if service is None:
            raise self.missing(f"{path}.ServiceName", "Service", str(name), [s.service_name for s in stack.services])
        expected = service_resource_id(stack.cluster.cluster_name, service.service_name)
        if rid is not None and rid != expected:
            raise self.error(f"{path}.ResourceId", f"ResourceId '{rid}' should be '{expected}' (or leave it out)")
        return service

    def fill_resource_label(self, path: str, data: dict[str, Any], service: CreateServiceRequest, stack: Stack) -> None:
        """ALBRequestCountPerTarget's ResourceLabel, derived from the service's target group and its ALB."""
        tt = data.get("TargetTrackingScalingPolicyConfiguration")
        spec = tt.get("PredefinedMetricSpecification") if isinstance(tt, dict) else None
        if not isinstance(spec, dict) or spec.get("PredefinedMetricType") != "ALBRequestCountPerTarget":
            return
        tg = stack.target_group(service.load_balancers[0].target_group_arn) if service.load_balancers else None
        lb = stack.load_balancer_for(tg) if tg else None
        label_path = f"{path}.TargetTrackingScalingPolicyConfiguration.PredefinedMetricSpecification.ResourceLabel"
        if tg is None or lb is None:
            raise self.error(label_path, f"ALBRequestCountPerTarget needs service '{service.service_name}' to be "
                             "behind a target group that a load balancer forwards to")
        tg_id = tg.target_group_arn.rsplit("/", 1)[-1]
        label = f"{lb.resource_label_prefix}/targetgroup/{tg.target_group_name}/{tg_id}"
        if spec.get("ResourceLabel") not in (None, label):
            raise self.error(label_path, f"ResourceLabel must be '{label}' here; leave it out and it is derived")
        data["TargetTrackingScalingPolicyConfiguration"] = {
            **tt, "PredefinedMetricSpecification": {**spec, "ResourceLabel": label}}

    def metric_alarms(self, stack: Stack) -> list[PutMetricAlarmRequest]:
        """CloudWatch PutMetricAlarm requests; AlarmActions name this file's step scaling policies."""
        alarms, seen = [], set()
        for path, item in self.items("metricAlarms"):
            actions = item.get("AlarmActions")
            if isinstance(actions, list):
                item = {**item, "AlarmActions": [self.alarm_action(f"{path}.AlarmActions[{i}]", action, stack)
                                                 for i, action in enumerate(actions)]}
            req = self.aws(path, parse_metric_alarm, item)
            self.unique(f"{path}.AlarmName", req.alarm_name, seen, "Alarm")
            alarms.append(req)
        return alarms

    def alarm_action(self, path: str, action: Any, stack: Stack) -> Any:
        """A step scaling policy's ARN, or its PolicyName (the emulator's shorthand), -> that policy's ARN."""
        if not isinstance(action, str) or (action.startswith("arn:") and ":scalingPolicy:" not in action):
            return action  # not a policy: PutMetricAlarm's own checks speak
        if action.startswith("arn:"):
            matches = [p for p in stack.scaling_policies if p.policy_arn == action]
        else:
            matches = [p for p in stack.scaling_policies if p.policy_name == action]
        if not matches:
            raise self.missing(path, "Scaling policy", action, [p.policy_name for p in stack.scaling_policies])
        if len(matches) > 1:
            raise self.error(path, f"policy name '{action}' is used on several services "
                             f"({', '.join(p.resource_id for p in matches)}); give the policy's ARN")
        policy = matches[0]
        if policy.policy_type != "StepScaling":
            raise self.error(path, f"policy '{policy.policy_name}' is a {policy.policy_type} policy: Application "
                             "Auto Scaling creates and owns its alarms. Only StepScaling policies are alarm actions.")
        return policy.policy_arn


_POLICY_KEYS = ("ServiceName", "MinCapacity", "MaxCapacity", "PolicyName", "PolicyType", "ServiceNamespace",
                "ScalableDimension", "ResourceId", "TargetTrackingScalingPolicyConfiguration",
                "StepScalingPolicyConfiguration")


@dataclass
class _CreateClusterRequest:
    cluster_name: str = "default"
    tags: list[Tag] = field(default_factory=list)
    settings: list[dict[str, str]] | None = None
    capacity_providers: list[str] | None = None
    default_capacity_provider_strategy: list[CapacityProviderStrategyItem] = field(default_factory=list)


@dataclass
class _ListenerSpec:
    port: int
    target_group: str
    protocol: str = "HTTP"


@dataclass
class _LoadBalancerSpec:
    """The stack file's ALB entry: `{name, listeners: [{port, protocol, targetGroup}], host}`."""

    name: str
    listeners: list[_ListenerSpec] = field(default_factory=list)
    host: str = "127.0.0.1"


def _spec_path(field_path: str) -> str:
    """ELBv2 key paths (`Listeners[0].Port`) as the stack file spells them (`listeners[0].port`)."""
    field_path = field_path.replace("LoadBalancerName", "name")
    return ".".join(s[:1].lower() + s[1:] for s in field_path.split(".") if s)


def _join(path: str, sub: str) -> str:
    if not sub:
        return path
    return f"{path}{sub}" if sub.startswith("[") or not path else f"{path}.{sub}"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
