"""compose/: Prometheus, Grafana and the emulator-in-a-container beside ecs-emulator.

- the Compose files are valid for docker-compose v1 (and Compose v2 where installed), and nothing
  in them needs a registry but Grafana's image;
- the seed article's three alerts pass `promtool check rules` and their unit tests
  (`promtool test rules`), and the shipped prometheus.yml passes `promtool check config`;
- live: an emulator runs in-process on the in-memory runtime with synthetic ALB traffic and one
  failed task, Debian's `prometheus` scrapes its /metrics every second, and EVERY query of the
  Grafana dashboard returns data through Prometheus' HTTP API; the alert rules load and evaluate,
  and the series they read exist.

Tools come from Debian's packages: `prometheus` (prometheus and promtool) and `docker-compose`;
a test whose tool is missing is skipped and says which package to install. Every subprocess and
wait is bounded, and the live test kills its Prometheus in a finally block.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from emulator.app import Emulator
from emulator.clock import RealClock
from emulator.control.registry import register_task_definition
from emulator.model.task import RUNNING
from emulator.model.task_definition_validation import parse_task_definition
from emulator.runtime.fake import MISSING_IMAGE_MARKER, FakeRuntime
from emulator.scenario import load_default_stack, load_stack

pytestmark = [pytest.mark.docker]

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose"
COMPOSE_FILE = COMPOSE / "docker-compose.yml"
EMULATOR_OVERRIDE = COMPOSE / "docker-compose.emulator.yml"
PROMETHEUS_DIR = COMPOSE / "prometheus"
ALERTS = PROMETHEUS_DIR / "alerts.yml"
DASHBOARD = COMPOSE / "grafana" / "dashboards" / "ecs-emulator.json"
DATASOURCES = COMPOSE / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
DASHBOARD_PROVIDERS = COMPOSE / "grafana" / "provisioning" / "dashboards" / "ecs-emulator.yml"

TOOL_TIMEOUT_S = 60
SEED_ALERTS = {"ECSTasksPending", "ECSClusterCPUReservationHigh", "ECSTaskFailures"}
# What Grafana would put for $__rate_interval with a 1 s scrape (4 x scrape interval), with room.
RATE_INTERVAL = "10s"
PROMETHEUS_READY_S = 30     # wall seconds for Prometheus to start answering
SCRAPES_S = 30              # ... to have scraped the emulator a few times
PANELS_S = 45               # ... for every panel query to return data
RULES_S = 20                # ... for every rule to have been evaluated


def tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (Debian: apt-get install -y {package})")
    return path


def run(argv: list[str], *, cwd: Path = ROOT, timeout: float = TOOL_TIMEOUT_S, env: dict | None = None):
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env,
                          stdin=subprocess.DEVNULL)


def compose_env() -> dict[str, str]:
    """The environment without the variables the Compose files read, so their defaults are what is checked."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("ECSEMU_", "GRAFANA_", "PROMETHEUS_", "COMPOSE_"))}


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def panel_queries(board: dict) -> list[tuple[str, str, str]]:
    """(panel title, refId, expr) of every query of every panel, rows' nested panels included."""
    panels = []
    for panel in board["panels"]:
        panels += [panel] + panel.get("panels", [])
    return [(p["title"], t["refId"], t["expr"]) for p in panels for t in p.get("targets", [])]


def as_promql(expr: str, board: dict) -> str:
    """A panel query as Grafana would send it: template variables at All, $__rate_interval resolved."""
    expr = expr.replace("$__rate_interval", RATE_INTERVAL).replace("${__rate_interval}", RATE_INTERVAL)
    for var in board.get("templating", {}).get("list", []):
        value = var.get("allValue") or ".*"
        expr = expr.replace("${" + var["name"] + "}", value).replace("$" + var["name"], value)
    assert "$" not in expr, f"unresolved Grafana variable in {expr!r}"
    return expr


METRIC_NAME = re.compile(r"\b((?:ecs|alb|autoscaling)_[a-z0-9_]+)\b")


def metric_names(expr: str) -> set[str]:
    """The exporter's metric names a query reads (histogram queries name the _bucket series)."""
    return set(METRIC_NAME.findall(expr))


# --- the Compose files -----------------------------------------------------------------------------


def compose_config(*files: Path) -> dict:
    docker_compose = tool("docker-compose", "docker-compose")
    argv = [docker_compose] + [a for f in files for a in ("-f", str(f))] + ["config"]
    result = run(argv, env=compose_env())
    assert result.returncode == 0, f"{' '.join(argv)} failed:\n{result.stdout}\n{result.stderr}"
    return yaml.safe_load(result.stdout)


def test_compose_file_is_valid_for_docker_compose_v1():
    config = compose_config(COMPOSE_FILE)
    services = config["services"]
    assert {"prometheus", "grafana"} <= set(services)
    # Nothing needs a registry but Grafana (not packaged by Debian): Prometheus is built locally.
    assert "build" in services["prometheus"]
    assert services["prometheus"]["build"]["args"]["BASE_IMAGE"] == "ecsemu/base:bookworm"
    assert [name for name, s in services.items() if "build" not in s] == ["grafana"]
    # Host mode: the host's network, and listening on 127.0.0.1 only.
    assert services["prometheus"]["network_mode"] == "host"
    assert "--web.listen-address=127.0.0.1:9090" in services["prometheus"]["command"]
    assert services["grafana"]["environment"]["GF_SERVER_HTTP_ADDR"] == "127.0.0.1"


def test_compose_file_with_the_emulator_override_is_valid_for_docker_compose_v1():
    config = compose_config(COMPOSE_FILE, EMULATOR_OVERRIDE)
    services = config["services"]
    emulator = services["emulator"]
    assert emulator["build"]["dockerfile"] == "compose/emulator/Dockerfile"
    assert emulator["network_mode"] == "bridge"                       # the instances' network
    assert services["prometheus"]["network_mode"] == "service:emulator"
    assert services["grafana"]["network_mode"] == "service:emulator"
    published = {str(p) for p in emulator["ports"]}
    for port in (4566, 8080, 9090, 3000):
        assert any(p.startswith(f"127.0.0.1:{port}:{port}") for p in published), (port, published)
    assert any(v.startswith("/var/run/docker.sock:") for v in emulator["volumes"])


def test_compose_files_are_valid_for_compose_v2():
    docker = shutil.which("docker")
    if docker is None or run([docker, "compose", "version"], timeout=20).returncode != 0:
        pytest.skip("Compose v2 (`docker compose`) is not installed here; docker-compose v1 checks the same "
                    "Compose Specification schema")
    for files in ((COMPOSE_FILE,), (COMPOSE_FILE, EMULATOR_OVERRIDE)):
        argv = [docker, "compose"] + [a for f in files for a in ("-f", str(f))] + ["config", "--quiet"]
        result = run(argv, env=compose_env())
        assert result.returncode == 0, f"{' '.join(argv)} failed:\n{result.stdout}\n{result.stderr}"


def test_the_emulator_container_mounts_the_socket_folder_its_state_dir_implies():
    """The override hard-codes /tmp/ecsemu-<owner> for ECSEMU_STATE_DIR=/var/lib/ecsemu: keep them in step."""
    from emulator.runtime.docker_runtime import owner_for

    override = yaml.safe_load(EMULATOR_OVERRIDE.read_text())
    emulator = override["services"]["emulator"]
    state_dir = emulator["environment"]["ECSEMU_STATE_DIR"]
    run_dir = f"/tmp/ecsemu-{owner_for(Path(state_dir))}"
    assert f"{run_dir}:{run_dir}" in emulator["volumes"]
    assert owner_for(Path(state_dir)) == hashlib.sha1(state_dir.encode()).hexdigest()[:10]


def test_the_emulator_container_rewrites_the_stacks_alb_host(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("compose_entrypoint", COMPOSE / "emulator" / "entrypoint.py")
    entrypoint = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(entrypoint)
    monkeypatch.setattr(entrypoint, "GENERATED_STACK", tmp_path / "stack.yaml")
    monkeypatch.setattr(entrypoint, "ALB_HOST", "0.0.0.0")
    monkeypatch.delenv("ECSEMU_STACK", raising=False)
    stack = load_stack(entrypoint.stack_with_alb_host())
    default = load_default_stack()
    assert [lb.host for lb in stack.load_balancers] == ["0.0.0.0"] * len(default.load_balancers)
    assert [s.service_name for s in stack.services] == [s.service_name for s in default.services]


# --- Prometheus: rules and config ----------------------------------------------------------------------


def test_alert_rules_pass_promtool_check():
    promtool = tool("promtool", "prometheus")
    result = run([promtool, "check", "rules", str(ALERTS)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 rules found" in result.stdout


def test_alert_rules_unit_tests_fire_and_do_not_fire():
    promtool = tool("promtool", "prometheus")
    result = run([promtool, "test", "rules", str(PROMETHEUS_DIR / "alerts_test.yml")])
    assert result.returncode == 0, result.stdout + result.stderr
    tests = yaml.safe_load((PROMETHEUS_DIR / "alerts_test.yml").read_text())["tests"]
    tested = {t["alertname"] for group in tests for t in group["alert_rule_test"]}
    assert tested == SEED_ALERTS
    # Each alert is tested both ways: some evaluation expects it to fire, some expects nothing.
    for name in SEED_ALERTS:
        cases = [t for group in tests for t in group["alert_rule_test"] if t["alertname"] == name]
        assert any(t["exp_alerts"] for t in cases) and any(not t["exp_alerts"] for t in cases), name


def test_prometheus_config_passes_promtool_check():
    promtool = tool("promtool", "prometheus")
    result = run([promtool, "check", "config", str(PROMETHEUS_DIR / "prometheus.yml")])
    assert result.returncode == 0, result.stdout + result.stderr


# --- Grafana: provisioning and dashboard ---------------------------------------------------------------


def test_grafana_provisioning_points_the_dashboard_at_the_prometheus_datasource():
    [datasource] = yaml.safe_load(DATASOURCES.read_text())["datasources"]
    assert datasource["type"] == "prometheus" and datasource["url"] == "http://127.0.0.1:9090"
    [provider] = yaml.safe_load(DASHBOARD_PROVIDERS.read_text())["providers"]
    compose = yaml.safe_load(COMPOSE_FILE.read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./grafana/dashboards:{provider['options']['path']}:ro" in mounts
    board = dashboard()
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        assert panel["datasource"]["uid"] == datasource["uid"], panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert refs and len(refs) == len(set(refs)), panel["title"]
        for t in panel["targets"]:
            assert t["datasource"]["uid"] == datasource["uid"] and t["expr"].strip(), (panel["title"], t)
    names = set().union(*(metric_names(expr) for _, _, expr in panel_queries(board)))
    # Both scaling dimensions and the ALB on one dashboard.
    assert {"ecs_service_desired_tasks", "ecs_service_running_tasks", "ecs_service_pending_tasks",
            "autoscaling_group_desired_capacity", "autoscaling_group_in_service_instances",
            "ecs_service_cpu_utilization_percent", "ecs_capacity_provider_reservation_percent",
            "alb_target_group_requests_total", "alb_target_group_target_responses_total",
            "alb_target_group_elb_responses_total"} <= names
    thresholds = {p["title"]: [s["value"] for s in p["fieldConfig"]["defaults"]["thresholds"]["steps"]]
                  for p in board["panels"]}
    assert any("75" in title and 75 in steps for title, steps in thresholds.items())
    assert any("targetCapacity" in title and 100 in steps for title, steps in thresholds.items())


# --- live: Prometheus scraping an emulator -----------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_json(url: str, timeout: float = 5) -> dict:
    with _NO_PROXY.open(url, timeout=timeout) as response:
        return json.loads(response.read())


class Prometheus:
    """Debian's prometheus as a subprocess on 127.0.0.1 with a config scraping the emulator every second."""

    def __init__(self, binary: str, workdir: Path, emulator_port: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / "prometheus.log"
        config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())   # the shipped one, faster
        config["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
        config["rule_files"] = [str(ALERTS)]
        [job] = config["scrape_configs"]
        job["static_configs"][0]["targets"] = [f"127.0.0.1:{emulator_port}"]
        self.config = workdir / "prometheus.yml"
        self.config.write_text(yaml.safe_dump(config))
        self.argv = [binary, f"--config.file={self.config}", f"--storage.tsdb.path={workdir / 'data'}",
                     f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"]
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return self.log.read_text(errors="replace")[-3000:]
        return ""

    def check_alive(self) -> None:
        assert self.proc is not None and self.proc.poll() is None, \
            f"prometheus exited ({self.proc.returncode if self.proc else None}):\n{self.log_tail()}"

    def query(self, promql: str) -> list[dict]:
        data = http_json(f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}")
        assert data["status"] == "success", (promql, data)
        return data["data"]["result"]

    def ready(self) -> bool:
        with _NO_PROXY.open(f"{self.url}/-/ready", timeout=5) as response:
            return response.status == 200

    def api(self, path: str) -> dict:
        data = http_json(f"{self.url}{path}")
        assert data["status"] == "success", (path, data)
        return data["data"]


async def eventually(check, timeout_s: float, what: str, prometheus: Prometheus):
    """Poll `check` (blocking, run in a thread) until it returns something truthy; bounded."""
    deadline = time.monotonic() + timeout_s
    last = None
    while True:
        prometheus.check_alive()
        try:
            last = await asyncio.to_thread(check)
        except OSError as exc:                 # not listening yet
            last = exc
        if last and not isinstance(last, Exception):
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout_s} s (last: {last!r})\n{prometheus.log_tail()}")
        await asyncio.sleep(0.5)


def fail_a_task(emulator: Emulator) -> None:
    """A standalone task whose image does not exist: it stops with TaskFailedToStart, a failed task."""
    td = parse_task_definition({"family": "broken", "containerDefinitions": [
        {"name": "broken", "image": f"{MISSING_IMAGE_MARKER}:latest", "memory": 32, "essential": True}]})
    register_task_definition(emulator.store, td, emulator.clock.now(), region=emulator.stack.settings.region)


async def traffic(emulator: Emulator) -> None:
    """Synthetic ALB traffic, as simulations count it: 2XX from every task, a few 500s and 502s."""
    while True:
        running = [t.task_arn for t in emulator.store.list("task") if t.last_status == RUNNING and t.group and
                   t.group.startswith("service:")]
        emulator.alb_traffic(40, running)
        for arn in running[:1]:
            for binding in emulator.load_balancing.bindings_of(arn):
                stats = emulator.alb.runtimes[binding.target_group_arn].stats
                stats.record_requests(binding.target.target_id, 2, status=500)
                stats.record_elb_response(502)
        await asyncio.sleep(0.5)


async def test_every_grafana_panel_query_returns_data_and_the_alert_rules_load(tmp_path):
    binary = tool("prometheus", "prometheus")
    board = dashboard()
    queries = panel_queries(board)
    assert queries, "the dashboard has no queries"

    emulator = Emulator(load_default_stack(), state_dir=None, runtime=FakeRuntime(behave_like_sample_app=True),
                        clock=RealClock(60), api_port=0, listen=False)
    prometheus = None
    load = None
    await emulator.start()
    try:
        cluster = emulator.stack.cluster.cluster_name
        fail_a_task(emulator)
        _, failures = await emulator.agent.run_task(cluster, "broken")
        assert failures == []
        load = asyncio.get_running_loop().create_task(traffic(emulator))

        prometheus = Prometheus(binary, tmp_path, emulator.api_port)
        prometheus.start()
        await eventually(prometheus.ready, PROMETHEUS_READY_S, "Prometheus ready", prometheus)
        await eventually(lambda: prometheus.query('min_over_time(up{job="ecsemu"}[1m]) == 1 and '
                                                  'count_over_time(up{job="ecsemu"}[1m]) >= 3'),
                         SCRAPES_S, "three successful scrapes of the emulator", prometheus)

        # Every query of every panel, as Grafana sends it, returns data.
        deadline = time.monotonic() + PANELS_S
        for title, ref, expr in queries:
            promql = as_promql(expr, board)
            await eventually(lambda: prometheus.query(promql), max(1.0, deadline - time.monotonic()),
                             f"panel {title!r} query {ref} ({promql})", prometheus)

        # The dashboard's variable has values: Grafana's label_values(ecs_cluster_services, cluster).
        clusters = await asyncio.to_thread(
            prometheus.api, "/api/v1/label/cluster/values?" + urllib.parse.urlencode({"match[]": "ecs_cluster_services"}))
        assert cluster in clusters

        # The seed's alerts load and evaluate, and every series they read exists.
        def evaluated_rules():
            groups = prometheus.api("/api/v1/rules")["groups"]
            rules = {r["name"]: r for g in groups for r in g["rules"]}
            done = all(not r.get("lastEvaluation", "").startswith("0001") for r in rules.values())
            return rules if done and set(rules) >= SEED_ALERTS else None

        rules = await eventually(evaluated_rules, RULES_S, "every alert rule evaluated", prometheus)
        assert set(rules) == SEED_ALERTS
        for name, rule in rules.items():
            assert rule["type"] == "alerting" and rule["health"] == "ok", (name, rule.get("lastError"))
            for metric in metric_names(rule["query"]):
                series = await asyncio.to_thread(
                    prometheus.api, "/api/v1/series?" + urllib.parse.urlencode({"match[]": metric}))
                assert series, f"alert {name} reads {metric}, which the emulator does not export"
    finally:
        if load is not None:
            load.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await load
        if prometheus is not None:
            prometheus.stop()
        await emulator.stop()
    assert prometheus.proc.poll() is not None
