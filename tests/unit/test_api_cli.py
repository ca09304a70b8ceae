"""The `aws` CLI (awscli v1, a subprocess with --endpoint-url) against the in-process endpoint.

One story per area. Each CLI call is a subprocess (about a second), so what an
area needs before its story (clusters, task definitions, services) is made
through boto3 (`endpoint.call`), and only the operations under test go
through the CLI. Every refusal is shown to change nothing (`endpoint.state()`).
"""

from __future__ import annotations

import shutil
import sys

import pytest

from test_api_harness import CLUSTER, REGION, endpoint, web_app, write_json  # noqa: F401  (endpoint is a fixture)

ACCOUNT = "123456789012"


def arn(resource: str) -> str:
    return f"arn:aws:ecs:{REGION}:{ACCOUNT}:{resource}"


def _have_cli() -> bool:
    if shutil.which("aws"):
        return True
    try:
        import awscli  # noqa: F401
    except ImportError:
        return False
    return bool(sys.executable)


pytestmark = pytest.mark.skipif(not _have_cli(), reason="the aws CLI (awscli) is not installed")


async def test_the_aws_cli_drives_a_cluster(endpoint, tmp_path):
    _, created, _ = await endpoint.aws("ecs", "create-cluster", "--cluster-name", "cli-cluster")
    assert created["cluster"]["clusterName"] == "cli-cluster"

    _, registered, _ = await endpoint.aws("ecs", "register-task-definition", "--cli-input-json",
                                          write_json(tmp_path / "td.json", web_app()))
    assert registered["taskDefinition"]["taskDefinitionArn"].endswith(":task-definition/web-app:1")

    _, listed, _ = await endpoint.aws("ecs", "list-container-instances", "--cluster", CLUSTER,
                                      "--filter", "attribute:ecs.availability-zone == us-east-1a")
    assert listed["containerInstanceArns"] == [endpoint.instances[0].container_instance_arn]

    _, ran, _ = await endpoint.aws("ecs", "run-task", "--cluster", CLUSTER, "--task-definition", "web-app",
                                   "--count", "2", "--placement-strategy", "type=spread,field=instanceId")
    assert ran["failures"] == [] and len(ran["tasks"]) == 2
    assert len({t["containerInstanceArn"] for t in ran["tasks"]}) == 2
    await endpoint.pump()

    task_arns = [t["taskArn"] for t in ran["tasks"]]
    _, described, _ = await endpoint.aws("ecs", "describe-tasks", "--cluster", CLUSTER, "--tasks", *task_arns)
    assert [t["lastStatus"] for t in described["tasks"]] == ["RUNNING", "RUNNING"]

    # The CLI follows nextToken by itself: two pages of one make the whole list.
    _, all_tasks, _ = await endpoint.aws("ecs", "list-tasks", "--cluster", CLUSTER, "--page-size", "1")
    assert sorted(all_tasks["taskArns"]) == sorted(task_arns)

    _, service, _ = await endpoint.aws("ecs", "create-service", "--cluster", CLUSTER, "--service-name", "web",
                                       "--task-definition", "web-app", "--desired-count", "2",
                                       "--deployment-configuration", "maximumPercent=200,minimumHealthyPercent=50")
    assert service["service"]["deployments"][0]["rolloutState"] == "IN_PROGRESS"

    _, services, _ = await endpoint.aws("ecs", "describe-services", "--cluster", CLUSTER, "--services", "web")
    svc = services["services"][0]
    assert (svc["serviceName"], svc["desiredCount"], svc["deploymentConfiguration"]["minimumHealthyPercent"]) == (
        "web", 2, 50)


async def test_the_aws_cli_reports_errors_and_nothing_changes(endpoint, tmp_path):
    before = endpoint.state()
    code, out, err = await endpoint.aws("ecs", "run-task", "--cluster", "ghost", "--task-definition", "web-app",
                                        expect_ok=False)
    assert code != 0 and out is None
    assert "(ClusterNotFoundException)" in err and "Cluster not found." in err

    bad = web_app()
    bad["containerDefinitions"][0]["memory"] = 2
    code, _, err = await endpoint.aws("ecs", "register-task-definition", "--cli-input-json",
                                      write_json(tmp_path / "bad.json", bad), expect_ok=False)
    assert code != 0 and "(ClientException)" in err and "at least 6 MiB" in err

    code, _, err = await endpoint.aws("ecs", "describe-services", "--cluster", "ghost", "--services", "web",
                                      expect_ok=False)
    assert code != 0 and "(ClusterNotFoundException)" in err
    assert endpoint.state() == before


async def test_the_aws_cli_manages_clusters(endpoint):
    await endpoint.call("create_cluster", clusterName="staging")
    await endpoint.call("create_cluster", clusterName="svc-only")
    await endpoint.call("register_task_definition", **web_app())
    await endpoint.call("create_service", cluster="svc-only", serviceName="web", taskDefinition="web-app",
                        desiredCount=0)

    _, listed, _ = await endpoint.aws("ecs", "list-clusters")
    assert listed["clusterArns"] == [arn(f"cluster/{n}") for n in (CLUSTER, "staging", "svc-only")]

    _, described, _ = await endpoint.aws("ecs", "describe-clusters", "--clusters", CLUSTER, "ghost",
                                         "--include", "STATISTICS")
    (cluster,) = described["clusters"]
    assert (cluster["clusterName"], cluster["status"], cluster["registeredContainerInstancesCount"]) == (
        CLUSTER, "ACTIVE", 2)
    assert {"name": "runningEC2TasksCount", "value": "0"} in cluster["statistics"]
    assert described["failures"] == [{"arn": arn("cluster/ghost"), "reason": "MISSING"}]

    # A cluster that still has a service is not deleted, and the refusal changes nothing.
    before = endpoint.state()
    code, out, err = await endpoint.aws("ecs", "delete-cluster", "--cluster", "svc-only", expect_ok=False)
    assert code != 0 and out is None
    assert "(ClusterContainsServicesException)" in err and "while Services are active" in err
    assert endpoint.state() == before

    _, deleted, _ = await endpoint.aws("ecs", "delete-cluster", "--cluster", "staging")
    assert (deleted["cluster"]["clusterArn"], deleted["cluster"]["status"]) == (arn("cluster/staging"), "INACTIVE")


async def test_the_aws_cli_manages_task_definitions(endpoint):
    for image in ("web-app:v1", "web-app:v2"):
        await endpoint.call("register_task_definition", **web_app(image))
    await endpoint.call("register_task_definition", **web_app(family="worker"))

    _, latest, _ = await endpoint.aws("ecs", "describe-task-definition", "--task-definition", "web-app")
    td = latest["taskDefinition"]
    assert (td["revision"], td["status"], td["containerDefinitions"][0]["image"]) == (2, "ACTIVE", "web-app:v2")

    _, gone, _ = await endpoint.aws("ecs", "deregister-task-definition", "--task-definition", "web-app:1")
    assert (gone["taskDefinition"]["taskDefinitionArn"], gone["taskDefinition"]["status"]) == (
        arn("task-definition/web-app:1"), "INACTIVE")

    _, listed, _ = await endpoint.aws("ecs", "list-task-definitions", "--family-prefix", "web-app")
    assert listed["taskDefinitionArns"] == [arn("task-definition/web-app:2")]

    _, families, _ = await endpoint.aws("ecs", "list-task-definition-families", "--status", "ACTIVE")
    assert families["families"] == ["web-app", "worker"]

    before = endpoint.state()
    code, _, err = await endpoint.aws("ecs", "describe-task-definition", "--task-definition", "ghost",
                                      expect_ok=False)
    assert code != 0 and "(ClientException)" in err and "Unable to describe task definition." in err
    assert endpoint.state() == before


async def test_the_aws_cli_manages_services(endpoint):
    for image in ("web-app:v1", "web-app:v2"):
        await endpoint.call("register_task_definition", **web_app(image))
    await endpoint.call("create_service", cluster=CLUSTER, serviceName="web", taskDefinition="web-app:1",
                        desiredCount=1)

    async def update(*args: str) -> dict:
        _, out, _ = await endpoint.aws("ecs", "update-service", "--cluster", CLUSTER, "--service", "web", *args)
        return out["service"]

    scaled = await update("--desired-count", "3")
    assert (scaled["desiredCount"], len(scaled["deployments"])) == (3, 1)

    deployed = await update("--task-definition", "web-app:2")
    assert [(d["status"], d["taskDefinition"]) for d in deployed["deployments"]] == [
        ("PRIMARY", arn("task-definition/web-app:2")), ("ACTIVE", arn("task-definition/web-app:1"))]

    forced = await update("--force-new-deployment")
    assert [d["status"] for d in forced["deployments"]] == ["PRIMARY", "ACTIVE", "ACTIVE"]
    assert forced["deployments"][0]["taskDefinition"] == arn("task-definition/web-app:2")

    _, listed, _ = await endpoint.aws("ecs", "list-services", "--cluster", CLUSTER)
    assert listed["serviceArns"] == [arn(f"service/{CLUSTER}/web")]

    # Refusals: an unknown service, and deleting one still scaled above 0 without --force.
    before = endpoint.state()
    code, _, err = await endpoint.aws("ecs", "update-service", "--cluster", CLUSTER, "--service", "ghost",
                                      "--desired-count", "1", expect_ok=False)
    assert code != 0 and "(ServiceNotFoundException)" in err and "Service not found." in err
    code, _, err = await endpoint.aws("ecs", "delete-service", "--cluster", CLUSTER, "--service", "web",
                                      expect_ok=False)
    assert code != 0 and "(InvalidParameterException)" in err and "scaled above 0" in err
    assert endpoint.state() == before

    _, deleted, _ = await endpoint.aws("ecs", "delete-service", "--cluster", CLUSTER, "--service", "web", "--force")
    assert (deleted["service"]["status"], deleted["service"]["desiredCount"]) == ("DRAINING", 0)


async def test_the_aws_cli_stops_a_task(endpoint):
    await endpoint.call("register_task_definition", **web_app())
    (task,) = (await endpoint.call("run_task", cluster=CLUSTER, taskDefinition="web-app"))["tasks"]
    await endpoint.pump()
    task_id = task["taskArn"].rsplit("/", 1)[-1]

    _, stopped, _ = await endpoint.aws("ecs", "stop-task", "--cluster", CLUSTER, "--task", task_id,
                                       "--reason", "done here")
    assert (stopped["task"]["taskArn"], stopped["task"]["desiredStatus"], stopped["task"]["stoppedReason"]) == (
        task["taskArn"], "STOPPED", "done here")
    await endpoint.pump()

    _, listed, _ = await endpoint.aws("ecs", "list-tasks", "--cluster", CLUSTER, "--desired-status", "STOPPED")
    assert listed["taskArns"] == [task["taskArn"]]

    before = endpoint.state()
    code, _, err = await endpoint.aws("ecs", "stop-task", "--cluster", CLUSTER, "--task", "0" * 32, expect_ok=False)
    assert code != 0 and "(InvalidParameterException)" in err and "The referenced task was not found." in err
    assert endpoint.state() == before


async def test_the_aws_cli_manages_container_instances(endpoint):
    a, b = endpoint.instances
    _, described, _ = await endpoint.aws("ecs", "describe-container-instances", "--cluster", CLUSTER,
                                         "--container-instances", a.instance_id, b.container_instance_arn)
    assert [(ci["containerInstanceArn"], ci["ec2InstanceId"], ci["status"]) for ci in
            described["containerInstances"]] == [(a.container_instance_arn, a.ec2_instance_id, "ACTIVE"),
                                                 (b.container_instance_arn, b.ec2_instance_id, "ACTIVE")]
    assert described["failures"] == []

    async def set_state(status: str) -> dict:
        _, out, _ = await endpoint.aws("ecs", "update-container-instances-state", "--cluster", CLUSTER,
                                       "--container-instances", a.instance_id, "--status", status)
        return out

    drained = await set_state("DRAINING")
    assert [ci["status"] for ci in drained["containerInstances"]] == ["DRAINING"] and drained["failures"] == []
    _, draining, _ = await endpoint.aws("ecs", "list-container-instances", "--cluster", CLUSTER,
                                        "--status", "DRAINING")
    assert draining["containerInstanceArns"] == [a.container_instance_arn]
    active = await set_state("ACTIVE")
    assert [ci["status"] for ci in active["containerInstances"]] == ["ACTIVE"]
    assert endpoint.store.get("container_instance", a.container_instance_arn).status == "ACTIVE"

    _, put, _ = await endpoint.aws("ecs", "put-attributes", "--cluster", CLUSTER, "--attributes",
                                   f"name=stack,value=prod,targetType=container-instance,targetId={b.instance_id}")
    assert put["attributes"] == [{"name": "stack", "value": "prod", "targetType": "container-instance",
                                  "targetId": b.instance_id}]
    _, listed, _ = await endpoint.aws("ecs", "list-attributes", "--cluster", CLUSTER,
                                      "--target-type", "container-instance", "--attribute-name", "stack")
    assert listed["attributes"] == [{"name": "stack", "value": "prod", "targetType": "container-instance",
                                     "targetId": b.container_instance_arn}]
    _, deleted, _ = await endpoint.aws("ecs", "delete-attributes", "--cluster", CLUSTER, "--attributes",
                                       f"name=stack,targetId={b.instance_id}")
    assert [x["name"] for x in deleted["attributes"]] == ["stack"]
    assert "stack" not in endpoint.store.get("container_instance", b.container_instance_arn).attributes

    before = endpoint.state()
    code, _, err = await endpoint.aws("ecs", "put-attributes", "--cluster", CLUSTER, "--attributes",
                                      f'[{{"name": "bad name", "value": "x", "targetId": "{b.instance_id}"}}]',
                                      expect_ok=False)
    assert code != 0 and "(InvalidParameterException)" in err and "Invalid attribute name 'bad name'" in err
    assert endpoint.state() == before
