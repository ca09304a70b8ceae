"""Services and tasks through a real boto3 client against the in-process endpoint."""

from __future__ import annotations

import re

from emulator.model.service import ServiceEvent

from test_api_harness import CLUSTER, REGION, endpoint, web_app  # noqa: F401  (endpoint is a fixture)

ACCOUNT = "123456789012"


def arn(resource: str) -> str:
    return f"arn:aws:ecs:{REGION}:{ACCOUNT}:{resource}"


async def registered(endpoint, *images: str) -> None:
    for image in images or ("web-app:v1",):
        await endpoint.call("register_task_definition", **web_app(image))


# --- services ------------------------------------------------------------------------


async def test_create_and_describe_a_service(endpoint):
    await registered(endpoint)
    created = await endpoint.call(
        "create_service", cluster=CLUSTER, serviceName="web", taskDefinition="web-app", desiredCount=2,
        placementConstraints=[{"type": "memberOf", "expression": "attribute:ecs.instance-type =~ t3.*"}],
        placementStrategy=[{"type": "spread", "field": "attribute:ecs.availability-zone"}],
        deploymentConfiguration={"maximumPercent": 150, "minimumHealthyPercent": 50})

    svc = created["service"]
    assert (svc["serviceArn"], svc["status"], svc["desiredCount"], svc["launchType"]) == (
        arn(f"service/{CLUSTER}/web"), "ACTIVE", 2, "EC2")
    assert svc["taskDefinition"] == arn("task-definition/web-app:1")
    (d,) = svc["deployments"]
    assert re.fullmatch(r"ecs-svc/\d{19}", d["id"])
    assert (d["status"], d["rolloutState"], d["desiredCount"]) == ("PRIMARY", "IN_PROGRESS", 2)
    assert svc["deploymentConfiguration"]["maximumPercent"] == 150

    described = await endpoint.call("describe_services", cluster=CLUSTER,
                                    services=["web", arn(f"service/{CLUSTER}/web"), "ghost"])
    assert [s["serviceName"] for s in described["services"]] == ["web", "web"]
    assert described["failures"] == [{"arn": arn(f"service/{CLUSTER}/ghost"), "reason": "MISSING"}]


async def test_service_events_are_newest_first_and_at_most_100(endpoint):
    await registered(endpoint)
    await endpoint.call("create_service", cluster=CLUSTER, serviceName="web", taskDefinition="web-app",
                        desiredCount=0)
    svc = endpoint.store.get("service", arn(f"service/{CLUSTER}/web"))
    with endpoint.store.transaction() as tx:
        svc.events = [ServiceEvent(f"e{i}", 1_700_000_000 + i, f"message {i}") for i in range(150, 0, -1)]
        tx.put("service", svc.service_arn, svc)

    events = (await endpoint.call("describe_services", cluster=CLUSTER, services=["web"]))["services"][0]["events"]
    assert len(events) == 100
    assert [e["message"] for e in events[:2]] == ["message 150", "message 149"]


async def test_update_service_counts_and_deployments(endpoint):
    await registered(endpoint, "web-app:v1", "web-app:v2")
    await endpoint.call("create_service", cluster=CLUSTER, serviceName="web", taskDefinition="web-app:1",
                        desiredCount=2)

    scaled = (await endpoint.call("update_service", cluster=CLUSTER, service="web", desiredCount=4))["service"]
    assert scaled["desiredCount"] == 4 and len(scaled["deployments"]) == 1
    assert scaled["deployments"][0]["desiredCount"] == 4

    deployed = (await endpoint.call("update_service", cluster=CLUSTER, service="web",
                                    taskDefinition="web-app:2"))["service"]
    new, old = deployed["deployments"]
    assert (new["status"], new["taskDefinition"]) == ("PRIMARY", arn("task-definition/web-app:2"))
    assert (old["status"], old["taskDefinition"]) == ("ACTIVE", arn("task-definition/web-app:1"))

    forced = (await endpoint.call("update_service", cluster=CLUSTER, service="web",
                                  forceNewDeployment=True))["service"]
    assert [d["status"] for d in forced["deployments"]] == ["PRIMARY", "ACTIVE", "ACTIVE"]


async def test_service_refusals_change_nothing(endpoint):
    await registered(endpoint)
    await endpoint.call("create_service", cluster=CLUSTER, serviceName="web", taskDefinition="web-app",
                        desiredCount=1)
    before = endpoint.state()
    cases = [
        (("create_service",), dict(cluster="ghost", serviceName="x", taskDefinition="web-app", desiredCount=1),
         ("ClusterNotFoundException", "Cluster not found.")),
        (("create_service",), dict(cluster=CLUSTER, serviceName="x", taskDefinition="ghost", desiredCount=1),
         ("InvalidParameterException", "TaskDefinition not found.")),
        (("create_service",), dict(cluster=CLUSTER, serviceName="web", taskDefinition="web-app", desiredCount=1),
         ("InvalidParameterException", "Creation of service was not idempotent.")),
        (("update_service",), dict(cluster=CLUSTER, service="ghost", desiredCount=1),
         ("ServiceNotFoundException", "Service not found.")),
        (("delete_service",), dict(cluster=CLUSTER, service="web"),
         ("InvalidParameterException", "The service cannot be stopped while it is scaled above 0.")),
        (("describe_services",), dict(cluster="ghost", services=["web"]),
         ("ClusterNotFoundException", "Cluster not found.")),
    ]
    for (operation,), params, expected in cases:
        assert await endpoint.error(operation, **params) == expected, operation
    code, message = await endpoint.error(
        "create_service", cluster=CLUSTER, serviceName="y", taskDefinition="web-app", desiredCount=1,
        placementConstraints=[{"type": "memberOf", "expression": "attribute:ecs.instance-type =="}])
    assert code == "InvalidParameterException" and "Invalid placement expression" in message
    code, message = await endpoint.error("update_service", cluster=CLUSTER, service="web",
                                         loadBalancers=[{"targetGroupArn": "x"}])
    assert code == "InvalidParameterException" and "not supported" in message
    assert endpoint.state() == before


async def test_list_and_delete_services(endpoint):
    await registered(endpoint)
    for name in ("a", "b", "c"):
        await endpoint.call("create_service", cluster=CLUSTER, serviceName=name, taskDefinition="web-app",
                            desiredCount=1)
    listed = await endpoint.call("list_services", cluster=CLUSTER, maxResults=2)
    rest = await endpoint.call("list_services", cluster=CLUSTER, nextToken=listed["nextToken"])
    assert listed["serviceArns"] + rest["serviceArns"] == [arn(f"service/{CLUSTER}/{n}") for n in "abc"]

    await endpoint.call("update_service", cluster=CLUSTER, service="a", desiredCount=0)
    deleted = (await endpoint.call("delete_service", cluster=CLUSTER, service="a"))["service"]
    assert (deleted["status"], deleted["desiredCount"]) == ("DRAINING", 0)
    forced = (await endpoint.call("delete_service", cluster=CLUSTER, service="b", force=True))["service"]
    assert forced["status"] == "DRAINING"
    assert await endpoint.error("update_service", cluster=CLUSTER, service="a", desiredCount=1) == (
        "ServiceNotActiveException", "Service was not ACTIVE.")


# --- tasks ---------------------------------------------------------------------------


async def test_run_task_describe_and_stop(endpoint):
    await registered(endpoint)
    ran = await endpoint.call("run_task", cluster=CLUSTER, taskDefinition="web-app", count=2,
                              startedBy="ci-job", group="batch", tags=[{"key": "k", "value": "v"}])
    assert ran["failures"] == []
    assert [t["lastStatus"] for t in ran["tasks"]] == ["PENDING", "PENDING"]
    assert {t["group"] for t in ran["tasks"]} == {"batch"}
    await endpoint.pump()

    ids = [t["taskArn"].rsplit("/", 1)[-1] for t in ran["tasks"]]
    described = await endpoint.call("describe_tasks", cluster=CLUSTER, tasks=[ids[0], ran["tasks"][1]["taskArn"],
                                                                            "0" * 32], include=["TAGS"])
    assert [t["lastStatus"] for t in described["tasks"]] == ["RUNNING", "RUNNING"]
    assert described["tasks"][0]["startedBy"] == "ci-job"
    assert described["tasks"][0]["tags"] == [{"key": "k", "value": "v"}]
    assert described["tasks"][0]["containers"][0]["networkBindings"][0]["hostPort"] >= 49153
    assert described["failures"] == [{"arn": arn(f"task/{CLUSTER}/{'0' * 32}"), "reason": "MISSING"}]

    stopped = await endpoint.call("stop_task", cluster=CLUSTER, task=ids[0], reason="done here")
    assert (stopped["task"]["desiredStatus"], stopped["task"]["stoppedReason"]) == ("STOPPED", "done here")
    await endpoint.pump()
    final = (await endpoint.call("describe_tasks", cluster=CLUSTER, tasks=[ids[0]]))["tasks"][0]
    assert (final["lastStatus"], final["stopCode"]) == ("STOPPED", "UserInitiated")


async def test_run_task_reports_what_does_not_fit_as_failures(endpoint):
    await endpoint.call("register_task_definition", **web_app(cpu=2048, memory=512))
    member = await endpoint.call("run_task", cluster=CLUSTER, taskDefinition="web-app", placementConstraints=[
        {"type": "memberOf", "expression": "attribute:ecs.instance-type == m5.large"}])
    assert member["tasks"] == [] and member["failures"][0]["reason"] == "MemberOf placement constraint unsatisfied."

    ran = await endpoint.call("run_task", cluster=CLUSTER, taskDefinition="web-app", count=3)
    assert len(ran["tasks"]) == 2
    assert ran["failures"][0]["reason"] == "RESOURCE:CPU"
    assert ran["failures"][0]["arn"].startswith(arn(f"container-instance/{CLUSTER}/"))


async def test_run_task_refusals_change_nothing(endpoint):
    await registered(endpoint)
    await endpoint.call("create_cluster", clusterName="empty")
    before = endpoint.state()
    assert await endpoint.error("run_task", cluster="empty", taskDefinition="web-app") == (
        "InvalidParameterException", "No Container Instances were found in your cluster.")
    assert await endpoint.error("run_task", cluster="ghost", taskDefinition="web-app") == (
        "ClusterNotFoundException", "Cluster not found.")
    assert await endpoint.error("run_task", cluster=CLUSTER, taskDefinition="ghost") == (
        "ClientException", "Unable to describe task definition.")
    assert (await endpoint.error("run_task", cluster=CLUSTER, taskDefinition="web-app", count=11))[0] == \
        "InvalidParameterException"
    code, message = await endpoint.error("run_task", cluster=CLUSTER, taskDefinition="web-app",
                                         placementConstraints=[{"type": "memberOf", "expression": "nonsense"}])
    assert code == "InvalidParameterException" and "Invalid placement expression" in message
    code, message = await endpoint.error("run_task", cluster=CLUSTER, taskDefinition="web-app", launchType="FARGATE")
    assert code == "InvalidParameterException" and "EC2 launch type only" in message
    code, message = await endpoint.error("run_task", cluster=CLUSTER, taskDefinition="web-app",
                                         overrides={"containerOverrides": [{"name": "web-app", "command": ["x"]}]})
    assert code == "InvalidParameterException" and "overrides" in message
    assert await endpoint.error("stop_task", cluster=CLUSTER, task="0" * 32) == (
        "InvalidParameterException", "The referenced task was not found.")
    assert endpoint.state() == before


async def test_list_tasks_filters(endpoint):
    await registered(endpoint)
    await endpoint.call("register_task_definition", **web_app(family="worker"))
    web = (await endpoint.call("run_task", cluster=CLUSTER, taskDefinition="web-app", count=2,
                               startedBy="me"))["tasks"]
    worker = (await endpoint.call("run_task", cluster=CLUSTER, taskDefinition="worker"))["tasks"]
    await endpoint.pump()
    await endpoint.call("stop_task", cluster=CLUSTER, task=web[1]["taskArn"])
    await endpoint.pump()

    async def listed(**filters):
        return sorted((await endpoint.call("list_tasks", cluster=CLUSTER, **filters))["taskArns"])

    assert await listed() == sorted([web[0]["taskArn"], worker[0]["taskArn"]])
    assert await listed(family="web-app") == [web[0]["taskArn"]]
    assert await listed(startedBy="me") == [web[0]["taskArn"]]
    assert await listed(desiredStatus="STOPPED") == [web[1]["taskArn"]]
    instance = worker[0]["containerInstanceArn"]
    expected = sorted(t["taskArn"] for t in (web[0], worker[0]) if t["containerInstanceArn"] == instance)
    assert await listed(containerInstance=instance.rsplit("/", 1)[-1]) == expected
    assert await listed(launchType="EC2") == sorted([web[0]["taskArn"], worker[0]["taskArn"]])
    assert len((await endpoint.call("list_tasks", cluster=CLUSTER, maxResults=1))["taskArns"]) == 1
    assert await endpoint.error("list_tasks", cluster=CLUSTER, serviceName="ghost") == (
        "ServiceNotFoundException", "Service not found.")


async def test_list_tasks_of_a_service(endpoint):
    await registered(endpoint)
    await endpoint.call("create_service", cluster=CLUSTER, serviceName="web", taskDefinition="web-app",
                        desiredCount=0)
    ran = await endpoint.call("run_task", cluster=CLUSTER, taskDefinition="web-app", group="service:web")
    await endpoint.call("run_task", cluster=CLUSTER, taskDefinition="web-app")
    listed = await endpoint.call("list_tasks", cluster=CLUSTER, serviceName="web")
    assert listed["taskArns"] == [ran["tasks"][0]["taskArn"]]
