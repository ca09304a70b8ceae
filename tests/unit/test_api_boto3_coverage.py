"""The refusals the other boto3 modules leave out, so every ECS operation served has one through boto3.

test_api_boto3_clusters / _instances / _services_tasks already drive every
operation's success path; this module adds, for the operations that had none,
an error that changes nothing (`endpoint.state()` before == after), and the
empty-list refusals, written to AWS's behaviour.
"""

from __future__ import annotations

import pytest

from test_api_harness import CLUSTER, REGION, endpoint, web_app  # noqa: F401  (endpoint is a fixture)

ACCOUNT = "123456789012"


def arn(resource: str) -> str:
    return f"arn:aws:ecs:{REGION}:{ACCOUNT}:{resource}"


async def test_every_cluster_scoped_operation_refuses_an_unknown_cluster(endpoint):
    await endpoint.call("register_task_definition", **web_app())
    await endpoint.call("create_cluster", clusterName="gone")
    await endpoint.call("delete_cluster", cluster="gone")
    a, _ = endpoint.instances
    calls = [
        ("list_services", {}),
        ("update_service", dict(service="web", desiredCount=1)),
        ("delete_service", dict(service="web")),
        ("stop_task", dict(task="0" * 32)),
        ("describe_tasks", dict(tasks=["0" * 32])),
        ("list_tasks", {}),
        ("describe_container_instances", dict(containerInstances=[a.instance_id])),
        ("update_container_instances_state", dict(containerInstances=[a.instance_id], status="DRAINING")),
        ("put_attributes", dict(attributes=[{"name": "stack", "value": "prod", "targetId": a.instance_id}])),
        ("list_attributes", dict(targetType="container-instance")),
        ("delete_attributes", dict(attributes=[{"name": "stack", "targetId": a.instance_id}])),
    ]
    before = endpoint.state()
    for cluster in ("ghost", arn("cluster/ghost"), "gone"):  # unknown by name, by ARN, and INACTIVE
        for operation, params in calls:
            assert await endpoint.error(operation, cluster=cluster, **params) == (
                "ClusterNotFoundException", "Cluster not found."), (operation, cluster)
    assert endpoint.state() == before


async def test_service_refusals_the_other_modules_leave_out(endpoint):
    await endpoint.call("register_task_definition", **web_app())
    await endpoint.call("create_service", cluster=CLUSTER, serviceName="web", taskDefinition="web-app",
                        desiredCount=1)
    await endpoint.call("create_service", cluster=CLUSTER, serviceName="old", taskDefinition="web-app",
                        desiredCount=0)
    await endpoint.call("delete_service", cluster=CLUSTER, service="old")
    before = endpoint.state()

    assert await endpoint.error("delete_service", cluster=CLUSTER, service="ghost") == (
        "ServiceNotFoundException", "Service not found.")
    assert await endpoint.error("delete_service", cluster=CLUSTER, service="ghost", force=True) == (
        "ServiceNotFoundException", "Service not found.")
    assert await endpoint.error("delete_service", cluster=CLUSTER, service="old") == (
        "ServiceNotActiveException", "Service was not ACTIVE.")
    assert await endpoint.error("update_service", cluster=CLUSTER, service="web", taskDefinition="ghost") == (
        "InvalidParameterException", "TaskDefinition not found.")
    assert (await endpoint.error("update_service", cluster=CLUSTER, service="web", desiredCount=-1))[0] == \
        "InvalidParameterException"
    assert (await endpoint.error("describe_services", cluster=CLUSTER,
                                 services=[f"s{i}" for i in range(11)]))[0] == "InvalidParameterException"
    assert (await endpoint.error("list_services", cluster=CLUSTER, maxResults=101))[0] == "InvalidParameterException"
    assert (await endpoint.error("list_tasks", cluster=CLUSTER, serviceName="ghost"))[0] == \
        "ServiceNotFoundException"
    assert endpoint.state() == before


async def test_listing_and_describing_refuse_bad_filters(endpoint):
    await endpoint.call("register_task_definition", **web_app())
    before = endpoint.state()
    code, message = await endpoint.error("describe_clusters", clusters=[CLUSTER], include=["EVERYTHING"])
    assert code == "InvalidParameterException" and "EVERYTHING" in message
    code, message = await endpoint.error("list_task_definitions", status="GONE")
    assert code == "InvalidParameterException" and "'status'" in message
    code, message = await endpoint.error("list_task_definition_families", status="GONE")
    assert code == "InvalidParameterException" and "'status'" in message
    assert (await endpoint.error("list_task_definition_families", nextToken="garbage"))[0] == \
        "InvalidParameterException"
    assert (await endpoint.error("list_tasks", cluster=CLUSTER, desiredStatus="DONE"))[0] == \
        "InvalidParameterException"
    assert endpoint.state() == before


async def test_attribute_listing_and_deleting_refusals(endpoint):
    _, b = endpoint.instances
    await endpoint.call("put_attributes", cluster=CLUSTER, attributes=[
        {"name": "stack", "value": "prod", "targetId": b.instance_id}])
    before = endpoint.state()

    code, message = await endpoint.error("list_attributes", cluster=CLUSTER, targetType="instance")
    assert code == "InvalidParameterException" and "targetType" in message
    code, message = await endpoint.error("list_attributes", cluster=CLUSTER, targetType="container-instance",
                                         attributeValue="prod")
    assert code == "InvalidParameterException" and "attributeName" in message
    code, message = await endpoint.error("delete_attributes", cluster=CLUSTER,
                                         attributes=[{"name": "bad name", "targetId": b.instance_id}])
    assert code == "InvalidParameterException" and "Invalid attribute name 'bad name'" in message
    code, message = await endpoint.error("delete_attributes", cluster=CLUSTER,
                                         attributes=[{"name": "ecs.instance-type", "targetId": b.instance_id}])
    assert code == "InvalidParameterException" and "ecs." in message
    # All or nothing: one bad item refuses the whole call, the good one included.
    code, _ = await endpoint.error("delete_attributes", cluster=CLUSTER, attributes=[
        {"name": "stack", "targetId": b.instance_id}, {"name": "stack", "targetId": "f" * 32}])
    assert code == "TargetNotFoundException"
    assert endpoint.state() == before
    assert endpoint.store.get("container_instance", b.container_instance_arn).attributes["stack"] == "prod"


# --- where the emulator differs from AWS --------------------------------------------------

# AWS refuses an empty list of things to describe with InvalidParameterException.
EMPTY_DESCRIBES = [("describe_tasks", "tasks"), ("describe_services", "services"),
                   ("describe_container_instances", "containerInstances")]


@pytest.mark.parametrize(("operation", "member"), EMPTY_DESCRIBES)
async def test_describing_an_empty_list_is_refused(endpoint, operation, member):
    before = endpoint.state()
    code, message = await endpoint.error(operation, cluster=CLUSTER, **{member: []})
    assert code == "InvalidParameterException" and "cannot be empty" in message
    assert endpoint.state() == before
