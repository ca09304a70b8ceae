"""The `aws` CLI (awscli v1, a subprocess with --endpoint-url) against the in-process endpoint."""

from __future__ import annotations

import shutil
import sys

import pytest

from test_api_harness import CLUSTER, endpoint, web_app, write_json  # noqa: F401  (endpoint is a fixture)


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
