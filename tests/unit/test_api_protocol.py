"""The JSON 1.1 wire protocol: dispatch, AWS's error shapes, limits, and the 500 path, over raw HTTP."""

from __future__ import annotations

import json
import logging

import aiohttp
import pytest
from aiohttp import test_utils

from emulator.api.protocol import ECS_TARGET_PREFIX, default_services, make_app
from emulator.errors import ClusterNotFoundException

from test_api_harness import CLUSTER, Endpoint, endpoint, web_app  # noqa: F401  (endpoint is a fixture)

JSON_11 = "application/x-amz-json-1.1"


async def post(ep: Endpoint, body: bytes | str, *, target: str | None = None, operation: str | None = None,
               headers: dict[str, str] | None = None, content_type: str = JSON_11):
    hdrs = {"Content-Type": content_type, **(headers or {})}
    if operation:
        target = f"{ECS_TARGET_PREFIX}.{operation}"
    if target:
        hdrs["X-Amz-Target"] = target
    async with aiohttp.ClientSession() as session:
        async with session.post(ep.url + "/", data=body, headers=hdrs) as response:
            text = await response.text()
            return response.status, response.headers, text


def error_of(text: str) -> tuple[str, str]:
    data = json.loads(text)
    return data["__type"], data["message"]


async def test_a_call_answers_json_with_a_request_id_and_epoch_timestamps(endpoint):
    status, headers, text = await post(endpoint, json.dumps(web_app()), operation="RegisterTaskDefinition",
                                       headers={"Authorization": "AWS4-HMAC-SHA256 Credential=anything"})
    assert status == 200
    assert headers["Content-Type"] == JSON_11
    assert len(headers["x-amzn-RequestId"]) == 36
    registered_at = json.loads(text)["taskDefinition"]["registeredAt"]
    assert isinstance(registered_at, float) and registered_at == endpoint.clock.now()


async def test_an_empty_body_is_an_empty_request(endpoint):
    status, _, text = await post(endpoint, b"", operation="ListClusters")
    assert status == 200 and CLUSTER in text


@pytest.mark.parametrize("body, operation, target, code", [
    (b"{not json", "ListClusters", None, "SerializationException"),
    (b"[1, 2]", "ListClusters", None, "SerializationException"),
    (b"\xff\xfe", "ListClusters", None, "SerializationException"),
    (b'{"maxResults": NaN}', "ListClusters", None, "SerializationException"),
    (b'{"clusterName": 5}', "CreateCluster", None, "SerializationException"),
    (b'{"clusters": "prod"}', "DescribeClusters", None, "SerializationException"),
    (b"{}", "LaunchRockets", None, "UnknownOperationException"),
    (b"{}", None, "SomeOtherService_20200101.ListClusters", "UnknownOperationException"),
    (b"{}", None, None, "UnknownOperationException"),
], ids=["malformed", "not-an-object", "not-utf8", "nan", "wrong-type", "list-wanted", "unknown-operation",
        "unknown-prefix", "missing-target"])
async def test_bad_requests_get_aws_error_shapes_and_change_nothing(endpoint, body, operation, target, code):
    before = endpoint.state()
    status, headers, text = await post(endpoint, body, operation=operation, target=target)
    assert status == 400
    assert error_of(text)[0] == code
    assert headers["x-amzn-ErrorType"] == code
    assert headers["x-amzn-RequestId"]
    assert endpoint.state() == before


async def test_a_body_over_the_limit_is_413_with_or_without_a_length():
    ep = await Endpoint(max_body_bytes=1024).start(instances=0)
    try:
        big = json.dumps({"clusterName": "x" * 2000})
        status, _, text = await post(ep, big, operation="CreateCluster")
        assert status == 413 and error_of(text)[0] == "RequestEntityTooLargeException"

        async def chunks():
            for _ in range(4):
                yield b" " * 512
        status, _, text = await post(ep, chunks(), operation="CreateCluster")
        assert status == 413 and error_of(text)[0] == "RequestEntityTooLargeException"
        assert ep.store.get("cluster", "arn:aws:ecs:us-east-1:123456789012:cluster/" + "x" * 2000) is None
    finally:
        await ep.stop()


async def test_an_internal_error_is_a_logged_500_without_a_traceback(endpoint, caplog, monkeypatch):
    async def broken(*args, **kwargs):
        raise RuntimeError("secret internals")
    monkeypatch.setattr(endpoint.agent, "run_task", broken)
    await endpoint.call("register_task_definition", **web_app())
    before = endpoint.state()

    with caplog.at_level(logging.ERROR, logger="emulator.api.protocol"):
        status, headers, text = await post(endpoint, json.dumps({"cluster": CLUSTER, "taskDefinition": "web-app"}),
                                           operation="RunTask")
    assert status == 500
    code, message = error_of(text)
    assert code == "ServerException"
    assert "secret internals" not in text and "Traceback" not in text
    assert headers["x-amzn-RequestId"] in message
    assert "secret internals" in caplog.text
    assert await endpoint.error("run_task", cluster=CLUSTER, taskDefinition="web-app") == (
        "ServerException", f"Internal error (request {_request_id_of(caplog)}); the emulator's log has the details.")
    assert endpoint.state() == before


def _request_id_of(caplog) -> str:
    return caplog.records[-1].getMessage().rsplit("(request ", 1)[-1].rstrip(")")


async def test_the_service_registry_dispatches_by_target_prefix(endpoint):
    async def describe_scalable_targets(backend, params):
        return {"ScalableTargets": [], "echo": params.data}

    async def not_found(backend, params):
        raise ClusterNotFoundException("Cluster not found.")

    services = default_services()
    services.register("AnyScaleFrontendService", {"DescribeScalableTargets": describe_scalable_targets,
                                                  "Fails": not_found})
    app = make_app(endpoint.backend, services=services)
    async with test_utils.TestClient(test_utils.TestServer(app)) as client:
        response = await client.post("/", data=b'{"ServiceNamespace": "ecs"}',
                                     headers={"X-Amz-Target": "AnyScaleFrontendService.DescribeScalableTargets"})
        assert response.status == 200
        assert (await response.json(content_type=None))["echo"] == {"ServiceNamespace": "ecs"}
        response = await client.post("/", data=b"{}", headers={"X-Amz-Target": "AnyScaleFrontendService.Fails"})
        assert response.status == 400
        assert await response.json(content_type=None) == {"__type": "ClusterNotFoundException",
                                                          "message": "Cluster not found."}
        response = await client.post("/", data=b"{}", headers={"X-Amz-Target": f"{ECS_TARGET_PREFIX}.ListClusters"})
        assert response.status == 200
    assert "ListClusters" in services.operations(ECS_TARGET_PREFIX)


async def test_query_protocol_clients_get_an_xml_invalid_action(endpoint):
    status, headers, text = await post(endpoint, "Action=DescribeTargetGroups&Version=2015-12-01",
                                       content_type="application/x-www-form-urlencoded; charset=utf-8")
    assert status == 400
    assert headers["Content-Type"].startswith("text/xml")
    assert "<Code>InvalidAction</Code>" in text and "DescribeTargetGroups" in text


async def test_health_answers_for_readiness_checks(endpoint):
    async with aiohttp.ClientSession() as session:
        async with session.get(endpoint.url + "/health") as response:
            assert response.status == 200
            assert await response.json() == {"status": "ok"}
