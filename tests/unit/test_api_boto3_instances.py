"""Container instances and their attributes through a real boto3 client against the in-process endpoint."""

from __future__ import annotations

from test_api_harness import CLUSTER, REGION, endpoint, web_app  # noqa: F401  (endpoint is a fixture)

ACCOUNT = "123456789012"


def arn(resource: str) -> str:
    return f"arn:aws:ecs:{REGION}:{ACCOUNT}:{resource}"


def ids(arns) -> list[str]:
    return sorted(a.rsplit("/", 1)[-1] for a in arns)


async def test_list_container_instances_with_the_query_language(endpoint):
    a, b = endpoint.instances

    async def listed(**kw):
        return ids((await endpoint.call("list_container_instances", cluster=CLUSTER, **kw))["containerInstanceArns"])

    assert await listed() == ids([a.container_instance_arn, b.container_instance_arn])
    assert await listed(filter="attribute:ecs.availability-zone == us-east-1b") == [b.instance_id]
    assert await listed(filter=f"ec2InstanceId in [{a.ec2_instance_id}]") == [a.instance_id]
    assert await listed(filter="attribute:ecs.instance-type =~ t3.* and agentConnected == true") == ids(
        [a.container_instance_arn, b.container_instance_arn])
    assert await listed(status="DRAINING") == []
    assert len(await listed(maxResults=1)) == 1

    await endpoint.call("register_task_definition", **web_app())
    ran = await endpoint.call("run_task", cluster=CLUSTER, taskDefinition="web-app", group="db")
    busy = ran["tasks"][0]["containerInstanceArn"].rsplit("/", 1)[-1]
    assert await listed(filter="task:group == db") == [busy]

    before = endpoint.state()
    code, message = await endpoint.error("list_container_instances", cluster=CLUSTER, filter="attribute:x ==")
    assert code == "InvalidParameterException" and "Invalid placement expression" in message
    assert (await endpoint.error("list_container_instances", cluster="ghost"))[0] == "ClusterNotFoundException"
    assert endpoint.state() == before


async def test_describe_container_instances(endpoint):
    a, _ = endpoint.instances
    described = await endpoint.call("describe_container_instances", cluster=CLUSTER,
                                    containerInstances=[a.instance_id, "f" * 32])
    (ci,) = described["containerInstances"]
    assert (ci["containerInstanceArn"], ci["ec2InstanceId"], ci["status"], ci["agentConnected"]) == (
        a.container_instance_arn, a.ec2_instance_id, "ACTIVE", True)
    cpu = next(r for r in ci["registeredResources"] if r["name"] == "CPU")
    assert cpu["integerValue"] == 2048
    assert {"name": "ecs.instance-type", "value": "t3.medium"} in ci["attributes"]
    assert described["failures"] == [{"arn": arn(f"container-instance/{CLUSTER}/{'f' * 32}"), "reason": "MISSING"}]


async def test_draining_an_instance_stops_placement_on_it_at_once(endpoint):
    a, b = endpoint.instances
    drained = await endpoint.call("update_container_instances_state", cluster=CLUSTER,
                                  containerInstances=[a.container_instance_arn, "f" * 32], status="DRAINING")
    assert [ci["status"] for ci in drained["containerInstances"]] == ["DRAINING"]
    assert drained["failures"] == [{"arn": arn(f"container-instance/{CLUSTER}/{'f' * 32}"), "reason": "MISSING"}]
    assert endpoint.store.get("container_instance", a.container_instance_arn).status == "DRAINING"

    await endpoint.call("register_task_definition", **web_app(cpu=256, memory=256))
    ran = await endpoint.call("run_task", cluster=CLUSTER, taskDefinition="web-app", count=4)
    assert {t["containerInstanceArn"] for t in ran["tasks"]} == {b.container_instance_arn}
    listed = await endpoint.call("list_container_instances", cluster=CLUSTER, status="DRAINING")
    assert listed["containerInstanceArns"] == [a.container_instance_arn]

    await endpoint.call("update_container_instances_state", cluster=CLUSTER,
                        containerInstances=[a.instance_id], status="ACTIVE")
    ran = await endpoint.call("run_task", cluster=CLUSTER, taskDefinition="web-app", placementConstraints=[
        {"type": "memberOf", "expression": f"ec2InstanceId == {a.ec2_instance_id}"}])
    assert [t["containerInstanceArn"] for t in ran["tasks"]] == [a.container_instance_arn]

    before = endpoint.state()
    code, message = await endpoint.error("update_container_instances_state", cluster=CLUSTER,
                                         containerInstances=[a.instance_id], status="REGISTERING")
    assert code == "InvalidParameterException" and "ACTIVE or DRAINING" in message
    assert endpoint.state() == before


async def test_custom_attributes_reach_placement(endpoint):
    a, b = endpoint.instances
    put = await endpoint.call("put_attributes", cluster=CLUSTER, attributes=[
        {"name": "stack", "value": "prod", "targetType": "container-instance", "targetId": b.instance_id},
        {"name": "gpu", "targetId": b.container_instance_arn}])
    assert put["attributes"][0] == {"name": "stack", "value": "prod", "targetType": "container-instance",
                                    "targetId": b.instance_id}

    listed = await endpoint.call("list_attributes", cluster=CLUSTER, targetType="container-instance",
                                 attributeName="stack")
    assert listed["attributes"] == [{"name": "stack", "value": "prod", "targetType": "container-instance",
                                     "targetId": b.container_instance_arn}]
    valued = await endpoint.call("list_attributes", cluster=CLUSTER, targetType="container-instance",
                                 attributeName="ecs.availability-zone", attributeValue="us-east-1a")
    assert [x["targetId"] for x in valued["attributes"]] == [a.container_instance_arn]
    everything = await endpoint.call("list_attributes", cluster=CLUSTER, targetType="container-instance",
                                     maxResults=5)
    assert len(everything["attributes"]) == 5 and everything["nextToken"]

    await endpoint.call("register_task_definition", **web_app(cpu=128, memory=128))
    ran = await endpoint.call("run_task", cluster=CLUSTER, taskDefinition="web-app", count=3, placementConstraints=[
        {"type": "memberOf", "expression": "attribute:stack == prod"}])
    assert {t["containerInstanceArn"] for t in ran["tasks"]} == {b.container_instance_arn}
    assert ids((await endpoint.call("list_container_instances", cluster=CLUSTER,
                                    filter="attribute:gpu exists"))["containerInstanceArns"]) == [b.instance_id]

    deleted = await endpoint.call("delete_attributes", cluster=CLUSTER,
                                  attributes=[{"name": "stack", "targetId": b.instance_id}])
    assert deleted["attributes"][0]["name"] == "stack"
    assert "stack" not in endpoint.store.get("container_instance", b.container_instance_arn).attributes
    ran = await endpoint.call("run_task", cluster=CLUSTER, taskDefinition="web-app", placementConstraints=[
        {"type": "memberOf", "expression": "attribute:stack == prod"}])
    assert ran["tasks"] == [] and ran["failures"][0]["reason"] == "MemberOf placement constraint unsatisfied."


async def test_attribute_refusals_change_nothing(endpoint):
    _, b = endpoint.instances
    before = endpoint.state()

    async def refused(operation="put_attributes", **attribute):
        return await endpoint.error(operation, cluster=CLUSTER, attributes=[attribute])

    assert (await refused(name="bad name", targetId=b.instance_id))[0] == "InvalidParameterException"
    assert (await refused(name="ok", value=" padded", targetId=b.instance_id))[0] == "InvalidParameterException"
    assert (await refused(name="ok", value="a" * 129, targetId=b.instance_id))[0] == "InvalidParameterException"
    assert (await refused(name="ecs.instance-type", value="m5.large", targetId=b.instance_id))[0] == \
        "InvalidParameterException"
    assert (await refused(name="ok"))[0] == "InvalidParameterException"
    assert (await refused(name="ok", targetId="f" * 32))[0] == "TargetNotFoundException"
    assert (await refused("delete_attributes", name="ok", targetId="f" * 32))[0] == "TargetNotFoundException"
    many = [{"name": f"a{i}", "targetId": b.instance_id} for i in range(11)]
    assert (await endpoint.error("put_attributes", cluster=CLUSTER, attributes=many))[0] == \
        "InvalidParameterException"
    assert endpoint.state() == before

    await endpoint.call("put_attributes", cluster=CLUSTER, attributes=many[:10])
    before = endpoint.state()
    assert (await refused(name="one-more", targetId=b.instance_id))[0] == "AttributeLimitExceededException"
    assert endpoint.state() == before
