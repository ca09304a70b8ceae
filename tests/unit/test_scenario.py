"""Stack files: the shipped stacks load with the seed article's numbers, and every bad file says where and why."""

from __future__ import annotations

import pytest

from emulator.errors import InvalidParameterException
from emulator.model.cluster import CapacityProviderStrategyItem
from emulator.model.placement_spec import PlacementStrategy
from emulator.model.service_request import parse_create_service, validate_capacity_provider_strategy
from emulator.placement.query import compile_expression
from emulator.scenario import (
    StackError,
    default_stack_path,
    example_stack_paths,
    load_default_stack,
    load_stack,
    parse_stack,
)

# --- the shipped stacks --------------------------------------------------------


def test_default_stack_has_the_seed_articles_production_numbers():
    stack = load_default_stack()

    assert stack.cluster.cluster_name == "production-cluster"
    assert [(t.key, t.value) for t in stack.cluster.tags] == [("Environment", "Production")]

    (asg,) = stack.auto_scaling_groups
    assert asg.auto_scaling_group_name == "ecs-instance-asg"
    assert asg.launch_template.instance_type == "t3.medium"
    assert (asg.min_size, asg.max_size, asg.desired_capacity) == (2, 10, 2)
    assert asg.availability_zones == ["us-east-1a", "us-east-1b", "us-east-1c"]
    assert asg.new_instances_protected_from_scale_in is True
    assert asg.registered_memory_mib() == 3584  # pitfall 3: three 1 GiB tasks, not four

    (cp,) = stack.capacity_providers
    scaling = cp.auto_scaling_group_provider.managed_scaling
    assert (scaling.status, scaling.target_capacity, scaling.minimum_scaling_step_size,
            scaling.maximum_scaling_step_size, scaling.instance_warmup_period) == ("ENABLED", 100, 1, 10, 180)
    assert cp.auto_scaling_group_provider.managed_termination_protection == "ENABLED"
    assert cp.auto_scaling_group_provider.auto_scaling_group_arn == asg.auto_scaling_group_arn
    assert stack.cluster.capacity_providers == [cp.name]
    assert stack.cluster.default_capacity_provider_strategy == [CapacityProviderStrategyItem(cp.name, weight=1)]

    (td,) = stack.task_definitions
    (container,) = td.container_definitions
    assert (td.family, td.network_mode) == ("web-app", "bridge")
    assert (container.name, container.image, container.cpu, container.memory) == ("web-app", "web-app:v1", 1024, 1024)
    assert [(pm.container_port, pm.host_port) for pm in container.port_mappings] == [(8080, 0)]
    assert container.env() == {"APP_VERSION": "v1"}
    assert container.health_check is not None and container.stop_timeout
    assert container.log_configuration.log_driver == "awslogs"
    assert container.log_configuration.options["awslogs-group"] == "/ecs/web-app"
    assert container.log_configuration.options["awslogs-stream-prefix"] == "ecs"

    (tg,) = stack.target_groups
    assert (tg.target_group_name, tg.health_check_path, tg.health_check_interval_seconds) == ("web-tg", "/health", 10)
    assert (tg.healthy_threshold_count, tg.unhealthy_threshold_count) == (2, 2)
    assert tg.attributes.deregistration_delay_timeout_seconds == 30

    (lb,) = stack.load_balancers
    assert (lb.load_balancer_name, lb.host) == ("web-alb", "127.0.0.1")
    assert [(li.port, li.target_group_arn) for li in lb.listeners] == [(8080, tg.target_group_arn)]

    (svc,) = stack.services
    assert (svc.service_name, svc.desired_count, svc.health_check_grace_period_seconds) == ("web-app-service", 4, 60)
    assert svc.placement_strategy == [PlacementStrategy("spread", "attribute:ecs.availability-zone"),
                                      PlacementStrategy("spread", "instanceId")]
    config = svc.deployment_configuration
    assert (config.maximum_percent, config.minimum_healthy_percent) == (200, 100)
    assert config.deployment_circuit_breaker.enable and config.deployment_circuit_breaker.rollback
    assert [(b.target_group_arn, b.container_name, b.container_port) for b in svc.load_balancers] == [
        (tg.target_group_arn, "web-app", 8080)]
    assert svc.uses_cluster_default_strategy
    assert stack.task_definition(svc.task_definition) is td

    (target,) = stack.scalable_targets
    assert (target.resource_id, target.min_capacity, target.max_capacity) == (
        "service/production-cluster/web-app-service", 2, 20)
    (policy,) = stack.scaling_policies
    tt = policy.target_tracking_scaling_policy_configuration
    assert policy.policy_type == "TargetTrackingScaling"
    assert tt.predefined_metric_specification.predefined_metric_type == "ECSServiceAverageCPUUtilization"
    assert (tt.target_value, tt.scale_out_cooldown, tt.scale_in_cooldown) == (75.0, 60, 300)


def test_default_stack_is_found_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert default_stack_path().name == "default.yaml"
    assert load_default_stack().cluster.cluster_name == "production-cluster"


def test_examples_are_shipped():
    assert {p.name for p in example_stack_paths()} >= {"binpack.yaml", "distinct-instance.yaml", "member-of.yaml"}


@pytest.mark.parametrize("path", example_stack_paths(), ids=lambda p: p.name)
def test_every_example_loads(path):
    stack = load_stack(path)
    assert stack.services and stack.task_definitions and stack.auto_scaling_groups


def test_examples_show_what_they_promise():
    by_name = {p.name: load_stack(p) for p in example_stack_paths()}
    binpack = by_name["binpack.yaml"]
    assert binpack.services[0].placement_strategy == [PlacementStrategy("binpack", "memory")]
    assert (binpack.task_definitions[0].required_cpu, binpack.task_definitions[0].required_memory) == (512, 1024)

    ha = by_name["distinct-instance.yaml"]
    assert [c.type for c in ha.services[0].placement_constraints] == ["distinctInstance"]
    assert ha.task_definitions[0].static_host_ports() == [(8080, "tcp")]
    assert ha.auto_scaling_groups[0].launch_template.instance_type == "t3.small"

    mixed = by_name["member-of.yaml"]
    assert {g.launch_template.instance_type for g in mixed.auto_scaling_groups} == {"t3.medium", "c5.large"}
    assert any(c.type == "memberOf" for s in mixed.services for c in s.placement_constraints)


def test_loading_is_deterministic_and_leaves_the_input_alone():
    text = default_stack_path().read_text()
    assert parse_stack(text) == parse_stack(text)
    assert default_stack_path().read_text() == text


def test_a_file_path_is_named_in_errors(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(BASE.replace("desiredCount: 2", "desiredCount: -2"))
    with pytest.raises(StackError) as err:
        load_stack(path)
    assert str(path) in str(err.value) and "services[0].desiredCount" in str(err.value)
    with pytest.raises(StackError, match="cannot read"):
        load_stack(tmp_path / "missing.yaml")


# --- bad files -----------------------------------------------------------------

BASE = """\
settings:
  timeScale: 10
cluster:
  clusterName: demo
  defaultCapacityProviderStrategy:
    - capacityProvider: cp-a
      weight: 1
autoScalingGroups:
  - AutoScalingGroupName: asg-a
    LaunchTemplate: {LaunchTemplateName: lt-a, InstanceType: t3.medium}
    MinSize: 1
    MaxSize: 4
    AvailabilityZones: [us-east-1a, us-east-1b]
  - AutoScalingGroupName: asg-b
    LaunchTemplate: {LaunchTemplateName: lt-b, InstanceType: c5.large}
    MinSize: 0
    MaxSize: 4
    AvailabilityZones: [us-east-1a]
capacityProviders:
  - name: cp-a
    autoScalingGroupProvider:
      autoScalingGroupArn: asg-a
      managedScaling: {status: ENABLED}
  - name: cp-b
    autoScalingGroupProvider:
      autoScalingGroupArn: asg-b
      managedScaling: {status: ENABLED}
taskDefinitions:
  - family: web
    containerDefinitions:
      - name: web
        image: web-app:v1
        cpu: 512
        memory: 512
        portMappings: [{containerPort: 8080, hostPort: 0}]
targetGroups:
  - Name: web-tg
    Port: 8080
    HealthCheckPath: /health
loadBalancers:
  - name: web-alb
    listeners: [{port: 9080, targetGroup: web-tg}]
services:
  - serviceName: web
    taskDefinition: web
    desiredCount: 2
    deploymentConfiguration: {maximumPercent: 200, minimumHealthyPercent: 50}
    loadBalancers: [{targetGroupName: web-tg, containerName: web, containerPort: 8080}]
scalingPolicies:
  - ServiceName: web
    MinCapacity: 1
    MaxCapacity: 6
    PolicyName: cpu
    PolicyType: TargetTrackingScaling
    TargetTrackingScalingPolicyConfiguration:
      TargetValue: 60
      PredefinedMetricSpecification: {PredefinedMetricType: ECSServiceAverageCPUUtilization}
"""

SERVICE = "    desiredCount: 2\n"


def variant(old: str, new: str) -> str:
    assert old in BASE, old
    return BASE.replace(old, new, 1)


def test_the_base_file_of_the_bad_file_table_loads():
    stack = parse_stack(BASE, "base.yaml")
    assert stack.cluster.capacity_providers == ["cp-a", "cp-b"]  # all declared providers by default
    assert stack.settings.time_scale == 10
    assert stack.services[0].load_balancers[0].target_group_arn == stack.target_groups[0].target_group_arn


BAD_FILES = [
    ("yaml-syntax", variant("clusterName: demo", "clusterName: [demo"), "", "YAML syntax error"),
    ("yaml-tab", variant("  timeScale: 10", "\ttimeScale: 10"), "", "YAML syntax error"),
    ("duplicate-key", variant("  timeScale: 10", "  timeScale: 10\n  timeScale: 2"), "settings.timeScale",
     "duplicate key"),
    ("unknown-top-level-key", BASE + "extras: 1\n", "extras", "unknown key 'extras'"),
    ("misspelt-section", BASE + "service: []\n", "service", "did you mean 'services'"),
    ("unknown-service-key", variant(SERVICE, SERVICE + "    desiredCuont: 3\n"), "services[0].desiredCuont",
     "InvalidParameterException: Unknown parameter 'desiredCuont'"),
    ("unknown-nested-key", variant("minimumHealthyPercent: 50}", "minimumHealthyPercent: 50, maxPercent: 1}"),
     "services[0].deploymentConfiguration.maxPercent", "Unknown parameter"),
    ("missing-image", variant("        image: web-app:v1\n", ""), "taskDefinitions[0]",
     "ClientException: Container.image should not be null or empty."),
    ("bad-instance-type", variant("InstanceType: t3.medium", "InstanceType: t3.mega"),
     "autoScalingGroups[0].LaunchTemplate.InstanceType", "ValidationError: The instance type 't3.mega'"),
    ("az-of-another-region", variant("[us-east-1a, us-east-1b]", "[us-east-1a, eu-west-1b]"),
     "autoScalingGroups[0].AvailabilityZones[1]", "not legal"),
    ("asg-min-above-max", variant("MinSize: 1", "MinSize: 5"), "autoScalingGroups[0].MaxSize", "min bound"),
    ("provider-names-missing-asg", variant("autoScalingGroupArn: asg-a", "autoScalingGroupArn: asg-z"),
     "capacityProviders[0].autoScalingGroupProvider.autoScalingGroupArn", "'asg-z' is not declared"),
    ("provider-reserved-prefix", variant("  - name: cp-a", "  - name: ecs-cp-a"), "capacityProviders[0].name",
     "ClientException"),
    ("termination-protection-without-asg-protection",
     variant("managedScaling: {status: ENABLED}\n  - name: cp-b",
             "managedScaling: {status: ENABLED}\n      managedTerminationProtection: ENABLED\n  - name: cp-b"),
     "capacityProviders[0].autoScalingGroupProvider.managedTerminationProtection", "instance protection"),
    ("cluster-strategy-missing-provider", variant("    - capacityProvider: cp-a", "    - capacityProvider: cp-z"),
     "cluster.defaultCapacityProviderStrategy[0].capacityProvider", "'cp-z' is not declared"),
    ("cluster-strategy-unassociated-provider",
     variant("  clusterName: demo\n", "  clusterName: demo\n  capacityProviders: [cp-b]\n"),
     "cluster.defaultCapacityProviderStrategy[0].capacityProvider", "not associated with the cluster"),
    ("service-missing-task-definition", variant("taskDefinition: web\n", "taskDefinition: api\n"),
     "services[0].taskDefinition", "'api' is not declared"),
    ("service-missing-revision", variant("taskDefinition: web\n", "taskDefinition: web:2\n"),
     "services[0].taskDefinition", "'web:2' is not declared"),
    ("service-missing-target-group", variant("targetGroupName: web-tg,", "targetGroupName: api-tg,"),
     "services[0].loadBalancers[0].targetGroupName", "'api-tg' is not declared"),
    ("service-missing-container", variant("containerName: web,", "containerName: app,"),
     "services[0].loadBalancers[0].containerName", "The container app does not exist in the task definition."),
    ("service-missing-capacity-provider",
     variant(SERVICE, SERVICE + "    capacityProviderStrategy: [{capacityProvider: cp-z, weight: 1}]\n"),
     "services[0].capacityProviderStrategy[0].capacityProvider", "'cp-z' is not declared"),
    ("bad-placement-strategy-field",
     variant(SERVICE, SERVICE + "    placementStrategy: [{type: spread, field: instanceId},"
                                " {type: binpack, field: disk}]\n"),
     "services[0].placementStrategy[1]", "InvalidParameterException: Invalid field 'disk'"),
    ("bad-member-of-syntax",
     variant(SERVICE, SERVICE + "    placementConstraints:"
                                " [{type: memberOf, expression: 'attribute:ecs.instance-type =='}]\n"),
     "services[0].placementConstraints[0].expression", "InvalidParameterException: Invalid placement expression"),
    ("bad-member-of-in-task-definition",
     variant("  - family: web\n", "  - family: web\n    placementConstraints: [{type: memberOf, expression: '(('}]\n"),
     "taskDefinitions[0].placementConstraints[0].expression", "ClientException: Invalid placement expression"),
    ("launch-type-and-strategy",
     variant(SERVICE, SERVICE + "    launchType: EC2\n"
                                "    capacityProviderStrategy: [{capacityProvider: cp-a, weight: 1}]\n"),
     "services[0].capacityProviderStrategy", "Specifying both a launch type and capacity provider strategy"),
    ("two-base-values",
     variant(SERVICE, SERVICE + "    capacityProviderStrategy: [{capacityProvider: cp-a, weight: 1, base: 1},"
                                " {capacityProvider: cp-b, weight: 1, base: 2}]\n"),
     "services[0].capacityProviderStrategy[1].base", "Only one capacity provider"),
    ("all-zero-weights", variant(SERVICE, SERVICE + "    capacityProviderStrategy: [{capacityProvider: cp-a}]\n"),
     "services[0].capacityProviderStrategy", "weight greater than 0"),
    ("maximum-percent-below-100", variant("maximumPercent: 200", "maximumPercent: 90"),
     "services[0].deploymentConfiguration.maximumPercent", "must be at least 100"),
    ("minimum-healthy-above-100", variant("minimumHealthyPercent: 50", "minimumHealthyPercent: 150"),
     "services[0].deploymentConfiguration.minimumHealthyPercent", "between 0 and 100"),
    ("negative-desired-count", variant(SERVICE, "    desiredCount: -1\n"), "services[0].desiredCount",
     "InvalidParameterException"),
    ("desired-count-not-a-number", variant(SERVICE, "    desiredCount: two\n"), "services[0].desiredCount",
     "expected an integer"),
    ("quoted-boolean", variant(SERVICE, SERVICE + "    enableExecuteCommand: 'false'\n"),
     "services[0].enableExecuteCommand", "expected true or false"),
    ("service-in-other-cluster", variant(SERVICE, SERVICE + "    cluster: prod\n"), "services[0].cluster",
     "not this file's cluster"),
    ("duplicate-service", BASE.replace("scalingPolicies:", "  - serviceName: web\n    taskDefinition: web\n"
                                       "    desiredCount: 1\nscalingPolicies:"), "services[1].serviceName",
     "declared twice"),
    ("listener-missing-target-group", variant("targetGroup: web-tg}", "targetGroup: api-tg}"),
     "loadBalancers[0].listeners[0].targetGroup", "'api-tg' is not declared"),
    ("listener-port-taken", variant("    listeners: [{port: 9080, targetGroup: web-tg}]\n",
                                    "    listeners: [{port: 9080, targetGroup: web-tg}]\n  - name: other-alb\n"
                                    "    listeners: [{port: 9080, targetGroup: web-tg}]\n"),
     "loadBalancers[1].listeners[0].port", "already taken"),
    ("health-check-timeout-not-below-interval",
     variant("    HealthCheckPath: /health\n", "    HealthCheckPath: /health\n    HealthCheckIntervalSeconds: 5\n"),
     "targetGroups[0].HealthCheckTimeoutSeconds", "must be smaller than the interval"),
    ("bad-matcher",
     variant("    HealthCheckPath: /health\n", "    HealthCheckPath: /health\n    Matcher: {HttpCode: 200-600}\n"),
     "targetGroups[0].Matcher.HttpCode", "200-499"),
    ("policy-missing-service", variant("  - ServiceName: web\n", "  - ServiceName: api\n"),
     "scalingPolicies[0].ServiceName", "'api' is not declared"),
    ("policy-without-capacities", variant("    MinCapacity: 1\n    MaxCapacity: 6\n", ""), "scalingPolicies[0]",
     "MinCapacity and MaxCapacity are required"),
    ("policy-min-above-max", variant("MaxCapacity: 6", "MaxCapacity: 0"), "scalingPolicies[0].MinCapacity",
     "ValidationException: Minimum capacity cannot be greater than maximum capacity"),
    ("policy-bad-metric", variant("ECSServiceAverageCPUUtilization", "CPUUtilization"),
     "scalingPolicies[0].TargetTrackingScalingPolicyConfiguration.PredefinedMetricSpecification.PredefinedMetricType",
     "ValidationException"),
    ("time-scale-zero", variant("timeScale: 10", "timeScale: 0"), "settings.timeScale", "greater than 0"),
    ("time-scale-negative", variant("timeScale: 10", "timeScale: -2"), "settings.timeScale", "greater than 0"),
    ("resource-scale-above-one", variant("  timeScale: 10\n", "  timeScale: 10\n  instanceResourceScale: {cpu: 2}\n"),
     "settings.instanceResourceScale.cpu", "(0, 1]"),
    ("bad-region", variant("  timeScale: 10\n", "  timeScale: 10\n  region: mars\n"), "settings.region",
     "not an AWS region"),
]


@pytest.mark.parametrize("text, path, problem", [case[1:] for case in BAD_FILES], ids=[case[0] for case in BAD_FILES])
def test_a_bad_file_names_the_file_the_key_path_and_the_problem(text, path, problem):
    with pytest.raises(StackError) as err:
        parse_stack(text, "stacks/bad.yaml")
    error = err.value
    assert error.path == path
    assert problem in error.problem
    assert str(error).startswith("stacks/bad.yaml:")
    assert path in str(error) and problem in str(error)
    assert error.line is not None


def test_yaml_syntax_errors_carry_line_and_column():
    with pytest.raises(StackError) as err:
        parse_stack("cluster:\n  clusterName: demo\n   bad: indent\n", "x.yaml")
    assert (err.value.line, err.value.column) == (3, 7)  # the ":" of "bad:"
    assert str(err.value).startswith("x.yaml:3:7: YAML syntax error")


def test_an_empty_file_is_an_error():
    with pytest.raises(StackError, match="empty"):
        parse_stack("", "empty.yaml")


def test_alb_request_count_policy_gets_its_resource_label_from_the_service():
    text = variant("PredefinedMetricType: ECSServiceAverageCPUUtilization",
                   "PredefinedMetricType: ALBRequestCountPerTarget")
    stack = parse_stack(text)
    label = stack.scaling_policies[0].target_tracking_scaling_policy_configuration \
        .predefined_metric_specification.resource_label
    tg, lb = stack.target_groups[0], stack.load_balancers[0]
    assert label == f"{lb.resource_label_prefix}/targetgroup/web-tg/{tg.target_group_arn.rsplit('/', 1)[1]}"
    assert label.startswith("app/web-alb/")


def test_several_policies_share_one_scalable_target():
    extra = """\
  - ServiceName: web
    PolicyName: memory
    PolicyType: TargetTrackingScaling
    TargetTrackingScalingPolicyConfiguration:
      TargetValue: 80
      PredefinedMetricSpecification: {PredefinedMetricType: ECSServiceAverageMemoryUtilization}
"""
    stack = parse_stack(BASE + extra)
    assert [p.policy_name for p in stack.scaling_policies] == ["cpu", "memory"]
    assert [(t.min_capacity, t.max_capacity) for t in stack.scalable_targets] == [(1, 6)]


def test_target_group_arns_name_the_files_groups():
    arn = "arn:aws:elasticloadbalancing:us-east-1:999999999999:targetgroup/web-tg/0123456789abcdef"
    stack = parse_stack(variant("targetGroupName: web-tg,", f"targetGroupArn: '{arn}',"))
    assert stack.services[0].load_balancers[0].target_group_arn == stack.target_groups[0].target_group_arn


# --- CreateService requests, as the API layer will parse them -------------------

def create_service(**overrides):
    data = {"serviceName": "web", "taskDefinition": "web:1", "desiredCount": 2, **overrides}
    return parse_create_service(data, check_expression=compile_expression)


def test_create_service_defaults_are_ecs_defaults():
    req = create_service()
    config = req.deployment_configuration
    assert (config.maximum_percent, config.minimum_healthy_percent) == (200, 100)
    assert req.scheduling_strategy == "REPLICA" and req.deployment_controller == {"type": "ECS"}


def test_daemon_services_get_daemon_defaults():
    req = parse_create_service({"serviceName": "agent", "taskDefinition": "agent", "schedulingStrategy": "DAEMON"},
                               check_expression=None)
    config = req.deployment_configuration
    assert (config.maximum_percent, config.minimum_healthy_percent) == (100, 0)


@pytest.mark.parametrize("overrides, field_path", [
    ({"desiredCount": None}, "desiredCount"),
    ({"serviceName": "bad name"}, "serviceName"),
    ({"launchType": "FARGATE"}, "launchType"),
    ({"platformVersion": "LATEST"}, "platformVersion"),
    ({"deploymentController": {"type": "CODE_DEPLOY"}}, "deploymentController.type"),
    ({"schedulingStrategy": "DAEMON"}, "desiredCount"),
    ({"healthCheckGracePeriodSeconds": -1}, "healthCheckGracePeriodSeconds"),
    ({"loadBalancers": [{"targetGroupArn": "arn", "containerName": "web"}]}, "loadBalancers[0].containerPort"),
    ({"placementConstraints": [{"type": "distinctInstance", "expression": "x"}]}, "placementConstraints[0]"),
    ({"placementStrategy": [{"type": "random"}] * 6}, "placementStrategy"),
], ids=["no-desired-count", "bad-name", "fargate", "platform-version", "code-deploy", "daemon-with-count",
        "negative-grace", "lb-without-port", "distinct-with-expression", "six-strategies"])
def test_create_service_rejects_what_ecs_rejects(overrides, field_path):
    data = {"serviceName": "web", "taskDefinition": "web:1", "desiredCount": 2, **overrides}
    data = {k: v for k, v in data.items() if v is not None}
    with pytest.raises(InvalidParameterException) as err:
        parse_create_service(data, check_expression=compile_expression)
    assert err.value.field_path == field_path


@pytest.mark.parametrize("items, ok", [
    ([("a", 1, 0)], True),
    ([("a", 1, 2), ("b", 4, 0)], True),
    ([("a", 0, 5), ("b", 1, 0)], True),
    ([("a", 0, 0)], False),
    ([("a", 1, 1), ("b", 1, 1)], False),
    ([("a", 1001, 0)], False),
    ([("a", 1, 100001)], False),
    ([(f"p{i}", 1, 0) for i in range(21)], False),
    ([("a", 1, 0), ("a", 1, 0)], False),
], ids=["one", "base-and-weights", "base-only-on-zero-weight", "all-zero", "two-bases", "weight-over-1000",
        "base-over-100000", "21-entries", "duplicate"])
def test_capacity_provider_strategy_rules(items, ok):
    strategy = [CapacityProviderStrategyItem(name, weight=weight, base=base) for name, weight, base in items]
    if ok:
        validate_capacity_provider_strategy(strategy)
    else:
        with pytest.raises(InvalidParameterException):
            validate_capacity_provider_strategy(strategy)
