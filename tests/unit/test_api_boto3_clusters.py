"""Clusters and task definitions through a real boto3 client against the in-process endpoint."""

from __future__ import annotations

import asyncio

from test_api_harness import CLUSTER, REGION, endpoint, web_app  # noqa: F401  (endpoint is a fixture)

ACCOUNT = "123456789012"


def arn(resource: str) -> str:
    return f"arn:aws:ecs:{REGION}:{ACCOUNT}:{resource}"


# --- clusters ------------------------------------------------------------------------


async def test_create_cluster_is_idempotent_and_lists(endpoint):
    created = await endpoint.call("create_cluster", clusterName="staging",
                                  tags=[{"key": "team", "value": "web"}],
                                  settings=[{"name": "containerInsights", "value": "disabled"}])
    cluster = created["cluster"]
    assert (cluster["clusterArn"], cluster["clusterName"], cluster["status"]) == (
        arn("cluster/staging"), "staging", "ACTIVE")
    assert cluster["tags"] == [{"key": "team", "value": "web"}]
    assert cluster["settings"] == [{"name": "containerInsights", "value": "disabled"}]

    again = await endpoint.call("create_cluster", clusterName="staging")
    assert again["cluster"]["tags"] == [{"key": "team", "value": "web"}]  # the existing one, unchanged

    listed = await endpoint.call("list_clusters")
    assert listed["clusterArns"] == [arn(f"cluster/{CLUSTER}"), arn("cluster/staging")]


async def test_create_cluster_without_a_name_makes_default(endpoint):
    created = await endpoint.call("create_cluster")
    assert created["cluster"]["clusterName"] == "default"


async def test_describe_clusters_counts_what_the_cluster_holds(endpoint):
    await endpoint.call("register_task_definition", **web_app())
    await endpoint.call("run_task", cluster=CLUSTER, taskDefinition="web-app", count=3)
    await endpoint.pump()
    await endpoint.call("create_service", cluster=CLUSTER, serviceName="web", taskDefinition="web-app",
                        desiredCount=0)
    await endpoint.call("update_container_instances_state", cluster=CLUSTER,
                        containerInstances=[endpoint.instances[0].container_instance_arn], status="DRAINING")

    described = await endpoint.call("describe_clusters", clusters=[CLUSTER, arn(f"cluster/{CLUSTER}"), "ghost"],
                                    include=["STATISTICS"])

    first, second = described["clusters"]
    assert first == second
    assert (first["registeredContainerInstancesCount"], first["runningTasksCount"], first["pendingTasksCount"],
            first["activeServicesCount"]) == (2, 3, 0, 1)
    assert {"name": "runningEC2TasksCount", "value": "3"} in first["statistics"]
    assert "tags" not in first  # only with include=TAGS
    assert described["failures"] == [{"arn": arn("cluster/ghost"), "reason": "MISSING"}]


async def test_list_clusters_pages_with_an_opaque_token(endpoint):
    for name in ("a", "b", "c", "d"):
        await endpoint.call("create_cluster", clusterName=name)
    first = await endpoint.call("list_clusters", maxResults=2)
    second = await endpoint.call("list_clusters", maxResults=2, nextToken=first["nextToken"])
    third = await endpoint.call("list_clusters", maxResults=2, nextToken=second["nextToken"])
    pages = first["clusterArns"] + second["clusterArns"] + third["clusterArns"]
    assert pages == [arn(f"cluster/{n}") for n in (CLUSTER, "a", "b", "c", "d")]
    assert "nextToken" not in third

    paginator = endpoint.ecs.get_paginator("list_clusters")
    pages = await asyncio.to_thread(lambda: [a for p in paginator.paginate(PaginationConfig={"PageSize": 2})
                                             for a in p["clusterArns"]])
    assert len(pages) == 5

    before = endpoint.state()
    assert (await endpoint.error("list_clusters", nextToken="garbage"))[0] == "InvalidParameterException"
    assert (await endpoint.error("list_clusters", maxResults=500))[0] == "InvalidParameterException"
    assert endpoint.state() == before


async def test_delete_cluster_refuses_while_it_holds_anything(endpoint):
    await endpoint.call("create_cluster", clusterName="svc-only")
    await endpoint.call("register_task_definition", **web_app())
    await endpoint.call("create_service", cluster="svc-only", serviceName="web", taskDefinition="web-app",
                        desiredCount=0)
    before = endpoint.state()

    assert await endpoint.error("delete_cluster", cluster=CLUSTER) == (
        "ClusterContainsContainerInstancesException",
        "The Cluster cannot be deleted while Container Instances are active or draining.")
    assert await endpoint.error("delete_cluster", cluster="svc-only") == (
        "ClusterContainsServicesException", "The Cluster cannot be deleted while Services are active.")
    assert await endpoint.error("delete_cluster", cluster="ghost") == ("ClusterNotFoundException",
                                                                        "Cluster not found.")
    assert endpoint.state() == before


async def test_a_deleted_cluster_is_inactive_described_and_not_listed(endpoint):
    await endpoint.call("create_cluster", clusterName="old")
    deleted = await endpoint.call("delete_cluster", cluster=arn("cluster/old"))
    assert deleted["cluster"]["status"] == "INACTIVE"

    described = await endpoint.call("describe_clusters", clusters=["old"])
    assert described["clusters"][0]["status"] == "INACTIVE"
    assert arn("cluster/old") not in (await endpoint.call("list_clusters"))["clusterArns"]
    assert (await endpoint.error("run_task", cluster="old", taskDefinition="x"))[0] == "ClusterNotFoundException"

    recreated = await endpoint.call("create_cluster", clusterName="old")
    assert recreated["cluster"]["status"] == "ACTIVE"


async def test_create_cluster_refusals(endpoint):
    before = endpoint.state()
    code, message = await endpoint.error("create_cluster", clusterName="bad name!")
    assert code == "InvalidParameterException" and "Cluster name" in message
    code, message = await endpoint.error(
        "create_cluster", clusterName="cp", defaultCapacityProviderStrategy=[{"capacityProvider": "x", "weight": 1}])
    assert code == "InvalidParameterException" and "not associated with the cluster" in message
    assert endpoint.state() == before


# --- task definitions ----------------------------------------------------------------


async def test_register_and_describe_task_definition_revisions(endpoint):
    first = await endpoint.call("register_task_definition", **web_app(),
                                tags=[{"key": "app", "value": "web"}])
    second = await endpoint.call("register_task_definition", **web_app("web-app:v2"))

    td = first["taskDefinition"]
    assert (td["family"], td["revision"], td["status"]) == ("web-app", 1, "ACTIVE")
    assert td["taskDefinitionArn"] == arn("task-definition/web-app:1")
    assert td["containerDefinitions"][0]["portMappings"] == [
        {"containerPort": 8080, "hostPort": 0, "protocol": "tcp"}]
    assert first["tags"] == [{"key": "app", "value": "web"}]
    assert second["taskDefinition"]["revision"] == 2

    latest = await endpoint.call("describe_task_definition", taskDefinition="web-app")
    assert latest["taskDefinition"]["containerDefinitions"][0]["image"] == "web-app:v2"
    by_arn = await endpoint.call("describe_task_definition", taskDefinition=arn("task-definition/web-app:1"),
                                 include=["TAGS"])
    assert by_arn["taskDefinition"]["revision"] == 1
    assert by_arn["tags"] == [{"key": "app", "value": "web"}]
    assert hasattr(latest["taskDefinition"]["registeredAt"], "year")  # epoch seconds, parsed by botocore


async def test_a_bad_task_definition_is_refused_and_changes_nothing(endpoint):
    before = endpoint.state()
    bad = web_app()
    del bad["containerDefinitions"][0]["memory"]
    code, message = await endpoint.error("register_task_definition", **bad)
    assert code == "ClientException"
    assert "At least one of 'memory' or 'memoryReservation' must be specified" in message
    assert await endpoint.error("describe_task_definition", taskDefinition="ghost") == (
        "ClientException", "Unable to describe task definition.")
    assert endpoint.state() == before


async def test_list_task_definitions_by_family_status_and_order(endpoint):
    for image in ("web-app:v1", "web-app:v2"):
        await endpoint.call("register_task_definition", **web_app(image))
    await endpoint.call("register_task_definition", **web_app(family="worker"))
    await endpoint.call("deregister_task_definition", taskDefinition="web-app:1")

    listed = await endpoint.call("list_task_definitions")
    assert listed["taskDefinitionArns"] == [arn("task-definition/web-app:2"), arn("task-definition/worker:1")]
    desc = await endpoint.call("list_task_definitions", familyPrefix="web-app", sort="DESC")
    assert desc["taskDefinitionArns"] == [arn("task-definition/web-app:2")]
    inactive = await endpoint.call("list_task_definitions", status="INACTIVE")
    assert inactive["taskDefinitionArns"] == [arn("task-definition/web-app:1")]
    paged = await endpoint.call("list_task_definitions", maxResults=1)
    assert len(paged["taskDefinitionArns"]) == 1 and paged["nextToken"]


async def test_list_task_definition_families(endpoint):
    await endpoint.call("register_task_definition", **web_app())
    await endpoint.call("register_task_definition", **web_app(family="worker"))
    await endpoint.call("register_task_definition", **web_app(family="web-admin"))
    await endpoint.call("deregister_task_definition", taskDefinition="worker:1")

    assert (await endpoint.call("list_task_definition_families"))["families"] == ["web-admin", "web-app", "worker"]
    assert (await endpoint.call("list_task_definition_families", familyPrefix="web-"))["families"] == [
        "web-admin", "web-app"]
    assert (await endpoint.call("list_task_definition_families", status="ACTIVE"))["families"] == [
        "web-admin", "web-app"]
    assert (await endpoint.call("list_task_definition_families", status="INACTIVE"))["families"] == ["worker"]


async def test_deregister_task_definition(endpoint):
    await endpoint.call("register_task_definition", **web_app())
    endpoint.clock.tick(100)
    gone = await endpoint.call("deregister_task_definition", taskDefinition=arn("task-definition/web-app:1"))
    td = gone["taskDefinition"]
    assert td["status"] == "INACTIVE"
    assert td["deregisteredAt"].timestamp() == endpoint.clock.now()
    # Still describable by revision; a family alone no longer resolves; nothing new may run it.
    assert (await endpoint.call("describe_task_definition", taskDefinition="web-app:1"))[
        "taskDefinition"]["status"] == "INACTIVE"
    assert (await endpoint.error("describe_task_definition", taskDefinition="web-app"))[0] == "ClientException"
    before = endpoint.state()
    assert await endpoint.error("run_task", cluster=CLUSTER, taskDefinition="web-app:1") == (
        "ClientException", "TaskDefinition is inactive")
    assert (await endpoint.error("deregister_task_definition", taskDefinition="web-app"))[0] == "ClientException"
    assert (await endpoint.error("deregister_task_definition", taskDefinition="ghost:3"))[0] == "ClientException"
    assert endpoint.state() == before
