"""The Kubernetes manifests (deploy/kubernetes/): every resource valid for a pinned Kubernetes version, checked
offline against the schemas kubernetes-validate ships (strict: an unknown field is an error); and what a
schema cannot see: the manifests agree with the gateway they run.

The container's arguments and environment become Settings the way `loyalty-gateway serve` makes them (the
CLI's own parser, the environment variables' own table), and those Settings are checked against the
manifests: the port, the metrics port, the probes' paths (answered by the real app), the shutdown grace
against the pod's termination grace, `--instances` against the autoscaler, the token keys' file.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import httpx
import kubernetes_validate
import pytest
import yaml
from asgi_lifespan import LifespanManager

from gateway.access.limits import configuration_problems
from gateway.app import create_app
from gateway.cli import build_parser, settings_from
from gateway.config import ENVIRONMENT_VARIABLES, Settings
from gateway.observability.metrics import MetricsOption

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "deploy" / "kubernetes"
# The version the manifests are checked against (kubectl's client on the machine that wrote them is 1.32 too).
KUBERNETES_VERSION = "1.32.0"
# Besides the settings' own variables: the one prometheus-client reads (docs/operations.md, "Several workers"),
# and OpenTelemetry's standard ones.
OTHER_VARIABLES = {"PROMETHEUS_MULTIPROC_DIR"}
OTHER_PREFIXES = ("OTEL_",)


def kustomization() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())
    return loaded


def resources() -> list[tuple[str, dict[str, Any]]]:
    """(file, document) for every resource the kustomization lists, in its order."""
    found = []
    for name in kustomization()["resources"]:
        for document in yaml.safe_load_all((MANIFESTS / name).read_text()):
            if document:
                found.append((name, document))
    return found


def one(kind: str) -> dict[str, Any]:
    [document] = [document for _, document in resources() if document["kind"] == kind]
    return document


def named(kind: str, name: str) -> dict[str, Any]:
    [document] = [d for _, d in resources() if d["kind"] == kind and d["metadata"]["name"] == name]
    return document


def pod() -> dict[str, Any]:
    spec: dict[str, Any] = one("Deployment")["spec"]["template"]["spec"]
    return spec


def container() -> dict[str, Any]:
    [gateway] = pod()["containers"]
    return dict(gateway)


def container_port(name_or_number: str | int) -> int:
    """A probe's or the Service's port: a number, or the name of one of the container's ports."""
    if isinstance(name_or_number, int):
        return name_or_number
    [port] = [p["containerPort"] for p in container()["ports"] if p["name"] == name_or_number]
    return int(port)


def secret_value(name: str, key: str) -> str:
    value: str = named("Secret", name)["stringData"][key]
    return value


# --- the schemas ----------------------------------------------------------------------------------------------------


def test_the_kustomization_lists_every_manifest_of_the_folder() -> None:
    listed = kustomization()["resources"]
    on_disk = sorted(path.name for path in MANIFESTS.glob("*.yaml") if path.name != "kustomization.yaml")
    assert sorted(listed) == on_disk
    assert len(listed) == len(set(listed))
    # The namespace it puts everything in is the one it creates.
    assert one("Namespace")["metadata"]["name"] == kustomization()["namespace"]


@pytest.mark.parametrize(
    ("file", "document"), resources(), ids=[f"{file}:{d['kind']}/{d['metadata']['name']}" for file, d in resources()]
)
def test_every_resource_is_valid_for_the_pinned_kubernetes(file: str, document: dict[str, Any]) -> None:
    # A kind without a schema (a CRD, a typo in apiVersion) raises SchemaNotFoundError: a failure, not a pass.
    checked = kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
    assert checked == "1.32"


def deployment_broken(change: str) -> dict[str, Any]:
    broken = copy.deepcopy(one("Deployment"))
    gateway = broken["spec"]["template"]["spec"]["containers"][0]
    if change == "misspelt field":
        gateway["readinessProbe"]["httpGet"]["paht"] = gateway["readinessProbe"]["httpGet"].pop("path")
    elif change == "wrong type":
        gateway["ports"][0]["containerPort"] = "8000"
    elif change == "missing required field":
        del broken["spec"]["selector"]
    else:
        gateway["resources"]["requests"]["cpu"] = [1]
    return broken


@pytest.mark.parametrize("change", ["misspelt field", "wrong type", "missing required field", "not a quantity"])
def test_the_validator_refuses_a_broken_deployment(change: str) -> None:
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment_broken(change), KUBERNETES_VERSION, strict=True)


def test_the_validator_refuses_a_kind_it_has_no_schema_for() -> None:
    unknown = {**one("Service"), "apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor"}
    with pytest.raises(kubernetes_validate.SchemaNotFoundError):
        kubernetes_validate.validate(unknown, KUBERNETES_VERSION, strict=True)


# --- what the schemas cannot see: the manifests and the gateway agree -----------------------------------------------


def environment() -> dict[str, str]:
    """The container's environment, with each secret reference read from the Secret manifest."""
    values = {}
    for variable in container()["env"]:
        if "value" in variable:
            values[variable["name"]] = variable["value"]
        else:
            reference = variable["valueFrom"]["secretKeyRef"]
            data = named("Secret", reference["name"])["stringData"]
            # An optional reference may name a key the Secret leaves out (the variable is then unset).
            if reference.get("optional") and reference["key"] not in data:
                continue
            values[variable["name"]] = secret_value(reference["name"], reference["key"])
    return values


@pytest.fixture
def manifest_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """What `loyalty-gateway <args>` makes of the container's arguments and environment."""
    for name in list(os.environ):
        if name.startswith("LOYALTY_GATEWAY_") or name in ENVIRONMENT_VARIABLES:
            monkeypatch.delenv(name)
    for name, value in environment().items():
        monkeypatch.setenv(name, value)
    args = build_parser().parse_args(container()["args"])
    assert args.command == "serve"
    yield settings_from(args)


def mounted(settings: Settings, directory: Path) -> Settings:
    """The settings with the token keys' file where this machine has it: the JWT Secret's key, written out the
    way the pod's volume mounts it (the variable names a file in the mount's directory, after a key of the
    Secret)."""
    jwks_file = PurePosixPath(settings.jwt_jwks_file or "")
    [mount] = [m for m in container()["volumeMounts"] if PurePosixPath(m["mountPath"]) == jwks_file.parent]
    [volume] = [v for v in pod()["volumes"] if v["name"] == mount["name"]]
    local = directory / jwks_file.name
    local.write_text(secret_value(volume["secret"]["secretName"], jwks_file.name))
    return settings.with_overrides(jwt_jwks_file=str(local))


def test_every_environment_variable_is_one_the_gateway_reads() -> None:
    unknown = {name for name in environment() if not name.startswith(OTHER_PREFIXES)}
    unknown -= set(ENVIRONMENT_VARIABLES) | OTHER_VARIABLES
    assert not unknown, f"the gateway reads no {sorted(unknown)}"


def test_the_image_is_the_dockerfiles_and_runs_serve() -> None:
    assert container()["image"] == "loyalty-gateway:latest"
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["loyalty-gateway"]' in dockerfile  # so args are the command's arguments
    assert container()["args"][0] == "serve"


def test_the_container_port_is_the_port_serve_listens_on(manifest_settings: Settings) -> None:
    assert manifest_settings.host == "0.0.0.0"  # reachable from outside the pod
    assert container_port("http") == manifest_settings.port
    service_port = one("Service")["spec"]["ports"][0]
    assert container_port(service_port["targetPort"]) == manifest_settings.port
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert container_port(container()[probe]["httpGet"]["port"]) == manifest_settings.port, probe


def test_metrics_are_scraped_on_the_port_they_are_served_on(manifest_settings: Settings) -> None:
    metrics = MetricsOption.parse(manifest_settings.metrics_where)
    assert metrics.enabled and metrics.port is not None  # a port of their own, off the Service
    annotations = one("Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) == metrics.port == container_port("metrics")
    assert annotations["prometheus.io/path"] == "/metrics"
    assert {port["targetPort"] for port in one("Service")["spec"]["ports"]} == {"http"}


async def test_the_probe_paths_are_answered_by_the_app(
    manifest_settings: Settings, database_url: str, tmp_path: Path
) -> None:
    settings = mounted(manifest_settings, tmp_path).with_overrides(database_url=database_url)
    async with LifespanManager(create_app(settings), startup_timeout=30) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                path = container()[probe]["httpGet"]["path"]
                answer = await client.get(path)
                assert answer.status_code == 200, (probe, path, answer.text)
    assert container()["livenessProbe"]["httpGet"]["path"] == "/healthz"  # no database: never a restart for it
    assert container()["readinessProbe"]["httpGet"]["path"] == "/readyz"


def test_the_pod_has_time_to_drain_and_finish_its_requests(manifest_settings: Settings) -> None:
    command = container()["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    pre_stop = float(command[1])
    assert pre_stop >= 1  # the endpoints' removal has time to spread
    assert pre_stop + manifest_settings.shutdown_grace < pod()["terminationGracePeriodSeconds"]


def test_instances_is_the_autoscalers_minimum(manifest_settings: Settings) -> None:
    autoscaler = one("HorizontalPodAutoscaler")["spec"]
    assert manifest_settings.instances == autoscaler["minReplicas"] < autoscaler["maxReplicas"]
    assert manifest_settings.workers == 1  # so instances counts processes too
    target = autoscaler["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", one("Deployment")["metadata"]["name"])
    [metric] = autoscaler["metrics"]
    assert metric["resource"]["name"] == "cpu" and metric["resource"]["target"]["type"] == "Utilization"
    assert "replicas" not in one("Deployment")["spec"]  # the autoscaler owns the count


def test_service_budget_and_deployment_select_the_same_pods() -> None:
    deployment = one("Deployment")["spec"]
    labels = deployment["template"]["metadata"]["labels"]
    for selector in (
        deployment["selector"]["matchLabels"],
        one("PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
        one("Service")["spec"]["selector"],
    ):
        assert selector and selector.items() <= labels.items()


def test_the_secrets_are_what_the_gateway_needs(manifest_settings: Settings, tmp_path: Path) -> None:
    assert manifest_settings.database_url == secret_value("loyalty-gateway-database", "url")
    assert manifest_settings.database_url.startswith("postgresql://")
    # The token keys are a usable JWKS: `serve` would start.
    assert configuration_problems(mounted(manifest_settings, tmp_path)) == []


def test_the_container_runs_unprivileged_on_a_read_only_filesystem(manifest_settings: Settings) -> None:
    security = pod()["securityContext"]
    assert security["runAsNonRoot"] is True and security["runAsUser"] > 0
    own = container()["securityContext"]
    assert own["readOnlyRootFilesystem"] is True and own["allowPrivilegeEscalation"] is False
    assert own["capabilities"]["drop"] == ["ALL"]
    # What the gateway writes (several workers' metrics, Python's temporary files) goes to a writable /tmp.
    [tmp] = [m for m in container()["volumeMounts"] if m["mountPath"] == "/tmp"]
    assert "emptyDir" in next(v for v in pod()["volumes"] if v["name"] == tmp["name"])
    # Without a database URL `serve` would start an embedded PostgreSQL, which needs a writable data directory.
    assert manifest_settings.database_url


def test_resources_are_requested_and_limited() -> None:
    resources = container()["resources"]
    for kind in ("requests", "limits"):
        assert set(resources[kind]) == {"cpu", "memory"}, kind
