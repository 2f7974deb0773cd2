"""deploy/: the Kubernetes manifests against the API schemas (offline, kubernetes-validate) and the
Compose file's keys, and both against the image (ports, HTTP and gRPC, user, probes, monitoring volume);
bentofile.yaml against service.py (the service it names, the modules it packs)."""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
KUBE = ROOT / "deploy" / "kubernetes"
K8S_VERSION = "1.33"  # schemas shipped by kubernetes-validate (requirements-dev.txt)
PORT = 3000
# configuration.yaml's grpc.port as written (load_config would apply MODEL_SERVER_GRPC_PORT from the environment)
GRPC_PORT = yaml.safe_load((ROOT / "configuration.yaml").read_text())["grpc"]["port"]
GRPC_PORT_ENV = "MODEL_SERVER_GRPC_PORT"
MONITORING = "/home/bentoml/monitoring"
SERVICE = ast.parse((ROOT / "service.py").read_text())


def entry_service() -> tuple[str, str]:
    """The entry service of service.py: (the module attribute, its BentoML name), from
    ``X = bentoml.service(name="...", ...)(X)`` at the top level."""
    for node in SERVICE.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and isinstance(node.value.func, ast.Call):
            factory = node.value.func
            if ast.unparse(factory.func) == "bentoml.service":
                name = next(k.value.value for k in factory.keywords if k.arg == "name")
                return node.targets[0].id, name
    raise AssertionError("service.py defines no entry service")


# BentoML applies `services.<name>.*` options to the service of that name: the entry service's.
MONITORING_OPTION = f"services.{entry_service()[1]}.monitoring.options.log_path={MONITORING}"


def manifests() -> dict[str, dict]:
    docs = {}
    for name in yaml.safe_load((KUBE / "kustomization.yaml").read_text())["resources"]:
        for doc in yaml.safe_load_all((KUBE / name).read_text()):
            docs[doc["kind"]] = doc
    return docs


def image_user_uid() -> int:
    from bentoml._internal.container.generate import BENTO_UID_GID

    return BENTO_UID_GID


@pytest.mark.parametrize("path", sorted(set(KUBE.glob("*.yaml")) - {KUBE / "kustomization.yaml"}), ids=lambda p: p.name)
def test_manifest_validates_against_kubernetes_schema(path):
    for doc in yaml.safe_load_all(path.read_text()):
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)  # raises on unknown or missing fields


def test_kustomization_lists_every_manifest():
    listed = set(yaml.safe_load((KUBE / "kustomization.yaml").read_text())["resources"])
    assert listed == {p.name for p in KUBE.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(manifests()) == {"Deployment", "Service", "HorizontalPodAutoscaler"}


def test_deployment_probes_resources_and_shutdown():
    deployment = manifests()["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "http"}
    assert container["ports"] == [{"name": "http", "containerPort": PORT, "protocol": "TCP"}, {"name": "grpc", "containerPort": GRPC_PORT, "protocol": "TCP"}]
    for kind in ("requests", "limits"):
        assert set(container["resources"][kind]) == {"cpu", "memory"}
    # a stop drains the entry service, then the runners: preStop + 2 x 30 s fits in the grace period
    assert pod["terminationGracePeriodSeconds"] >= 5 + 60
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert deployment["spec"]["selector"]["matchLabels"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()


def test_deployment_runs_as_the_image_user_with_a_monitoring_volume():
    pod = manifests()["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == image_user_uid()
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts == {"monitoring": MONITORING}
    assert [v["name"] for v in pod["volumes"]] == ["monitoring"]


def test_service_and_autoscaler_target_the_deployment():
    docs = manifests()
    deployment, service, hpa = docs["Deployment"], docs["Service"], docs["HorizontalPodAutoscaler"]
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    # CPU utilisation is measured against the pods' CPU requests
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert "cpu" in deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]


def test_grpc_port_matches_the_configuration():
    """configuration.yaml's grpc.port in the Deployment (port and the environment that would override
    it), the Service (h2c, so meshes and gateways speak HTTP/2), the image (EXPOSE) and Compose."""
    from config.settings import GRPC_PORT_ENV as env_name

    assert env_name == GRPC_PORT_ENV
    docs = manifests()
    (container,) = docs["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert {p["name"]: p["containerPort"] for p in container["ports"]}["grpc"] == GRPC_PORT
    assert {e["name"]: e["value"] for e in container["env"]}[GRPC_PORT_ENV] == str(GRPC_PORT)
    (port,) = [p for p in docs["Service"]["spec"]["ports"] if p["name"] == "grpc"]
    assert port == {"name": "grpc", "port": GRPC_PORT, "targetPort": "grpc", "protocol": "TCP", "appProtocol": "kubernetes.io/h2c"}
    template = (ROOT / "docker" / "Dockerfile.template").read_text()
    assert re.search(rf"^EXPOSE {GRPC_PORT}$", template, re.MULTILINE)
    assert compose_service()["environment"][GRPC_PORT_ENV] == str(GRPC_PORT)


def test_the_entrypoint_gives_port_to_http_unless_it_is_the_grpc_port(monkeypatch):
    """Knative sets PORT to the container's one port: HTTP's for the REST predictor, gRPC's (h2c) for
    the gRPC one, where BENTOML_PORT must stay off the gRPC port."""
    import importlib.util
    import sys
    import types

    spec = importlib.util.spec_from_file_location("docker_entrypoint", ROOT / "docker" / "entrypoint.py")
    entrypoint = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(entrypoint)
    cli = types.SimpleNamespace(main=lambda **kwargs: None)
    monkeypatch.setitem(sys.modules, "bentoml_cli.cli", types.SimpleNamespace(cli=cli))
    monkeypatch.delenv("BENTO_PATH", raising=False)
    for port, grpc_port, expected in (("9000", None, "9000"), ("9000", str(GRPC_PORT), "9000"), (str(GRPC_PORT), str(GRPC_PORT), "8080")):
        monkeypatch.setenv("BENTOML_PORT", "8080")
        monkeypatch.setenv("PORT", port)
        if grpc_port is None:
            monkeypatch.delenv(GRPC_PORT_ENV, raising=False)
        else:
            monkeypatch.setenv(GRPC_PORT_ENV, grpc_port)
        entrypoint.main([])
        assert os.environ["BENTOML_PORT"] == expected


def image_name() -> str:
    """The image scripts/build-container.sh builds (its IMAGE_NAME default)."""
    return re.search(r"IMAGE_NAME=\$\{IMAGE_NAME:-([^}]+)\}", (ROOT / "scripts" / "build-container.sh").read_text()).group(1)


def compose_service() -> dict:
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    (service,) = compose["services"].values()
    return service


def test_compose_file():
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    service = compose_service()
    assert re.fullmatch(rf"\$\{{[A-Z_]+_IMAGE:-{re.escape(image_name())}:latest\}}", service["image"])
    assert service["network_mode"] == "host" and service["environment"]["BENTOML_PORT"] == str(PORT)
    assert service["environment"][GRPC_PORT_ENV] == str(GRPC_PORT)
    assert service["restart"] in {"always", "unless-stopped"}
    assert service["mem_limit"] and service["cpus"]
    assert service["stop_grace_period"] == "60s"
    test = " ".join(service["healthcheck"]["test"])
    assert service["healthcheck"]["test"][0] == "CMD" and f"127.0.0.1:{PORT}/readyz" in test
    assert f"monitoring:{MONITORING}" in service["volumes"] and "monitoring" in compose["volumes"]


def test_kubernetes_runs_the_image_the_script_builds():
    (container,) = manifests()["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"{image_name()}:latest"


def test_the_entry_services_monitoring_logs_go_to_the_volume():
    (container,) = manifests()["Deployment"]["spec"]["template"]["spec"]["containers"]
    kubernetes = {e["name"]: e["value"] for e in container["env"]}["BENTOML_CONFIG_OPTIONS"]
    assert kubernetes == compose_service()["environment"]["BENTOML_CONFIG_OPTIONS"] == MONITORING_OPTION


def test_bentofile_builds_the_container_from_this_directory():
    bentofile = yaml.safe_load((ROOT / "bentofile.yaml").read_text())
    docker = bentofile["docker"]
    assert docker["base_image"] == "python:3.11-slim"  # BentoML's default name: Docker Hub has it
    assert (ROOT / docker["dockerfile_template"]).is_file()
    assert "docker/entrypoint.py" in bentofile["include"]
    template = (ROOT / docker["dockerfile_template"]).read_text()
    assert "HEALTHCHECK" in template and "/readyz" in template and "tensorflow/include" in template


# --- bentofile.yaml against service.py ------------------------------------------------------------

LOCAL_PACKAGES = {p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file()}


def module_file(module: str) -> Path | None:
    path = ROOT.joinpath(*module.split("."))
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    return path.with_suffix(".py") if path.with_suffix(".py").is_file() else None


def imported_files(start: Path) -> set[Path]:
    """The project's Python files ``start`` imports, directly or not (package __init__ files included),
    plus every module of a package that imports its modules by name (training/recipes)."""
    seen, todo = set(), [start]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        tree = ast.parse(path.read_text())
        names = []
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names += [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Call) and ast.unparse(node.func) == "importlib.import_module":
                todo += [p for p in path.parent.glob("*.py") if p != path]
        for name in names:
            parts = name.split(".")
            if parts[0] not in LOCAL_PACKAGES:
                continue
            for depth in range(1, len(parts) + 1):  # every package on the way: its __init__ runs too
                found = module_file(".".join(parts[:depth]))
                if found:
                    todo.append(found)
    return seen


def bento_paths():
    from bentoml._internal.bento.build_config import BentoPathSpec

    bentofile = yaml.safe_load((ROOT / "bentofile.yaml").read_text())
    return bentofile, BentoPathSpec(bentofile.get("include") or ["*"], bentofile.get("exclude") or [], ctx_dir=str(ROOT))


def test_the_import_walk_finds_the_servers_packages():
    """The walk below is only as good as what it finds: the packages the server is made of."""
    files = {p.relative_to(ROOT).as_posix() for p in imported_files(ROOT / "service.py")}
    assert {"config/settings.py", "models/card.py", "serving/protocols/course.py", "lifecycle/drift.py"} <= files


def test_bentofile_names_the_entry_service():
    bentofile, _ = bento_paths()
    module, attribute = bentofile["service"].split(":")
    assert module == "service" and attribute == entry_service()[0]


def test_bentofile_packs_every_module_the_service_imports():
    _, spec = bento_paths()
    files = sorted(p.relative_to(ROOT).as_posix() for p in imported_files(ROOT / "service.py"))
    assert [f for f in files if not spec.includes(f)] == []


def test_bentofile_packs_the_files_the_configuration_names():
    from config import load_config

    _, spec = bento_paths()
    config = load_config(ROOT / "configuration.yaml")
    named = ["configuration.yaml", config.promotion_record, config.entry["monitoring"]["options"]["log_config_file"]]
    assert [f for f in named if not spec.includes(f)] == []


# --- deploy/kserve: the InferenceService -----------------------------------------------------------

KSERVE = ROOT / "deploy" / "kserve" / "inferenceservice.yaml"
KSERVE_GRPC = ROOT / "deploy" / "kserve" / "inferenceservice-grpc.yaml"
# KServe's ComponentExtensionSpec (pkg/apis/serving/v1beta1/component.go), inlined in a predictor next
# to the PodSpec; anything else in the predictor must be a PodSpec field.
COMPONENT_EXTENSION = {
    "minReplicas",
    "maxReplicas",
    "scaleTarget",
    "scaleMetric",
    "scaleMetricType",
    "autoScaling",
    "containerConcurrency",
    "timeout",
    "canaryTrafficPercent",
    "logger",
    "batcher",
    "labels",
    "annotations",
    "deploymentStrategy",
}
KNATIVE_PORT = 8080  # Knative's default container port; it sets PORT to it


def inference_service(path: Path = KSERVE) -> dict:
    (doc,) = yaml.safe_load_all(path.read_text())
    return doc


@pytest.mark.parametrize("path", [KSERVE, KSERVE_GRPC], ids=lambda p: p.name)
def test_kserve_inference_service_is_a_custom_predictor(path):
    isvc = inference_service(path)
    assert (isvc["apiVersion"], isvc["kind"]) == ("serving.kserve.io/v1beta1", "InferenceService")
    assert set(isvc["spec"]) == {"predictor"}
    predictor = isvc["spec"]["predictor"]
    extension = {k: v for k, v in predictor.items() if k in COMPONENT_EXTENSION}
    assert extension["scaleMetric"] in {"cpu", "memory", "concurrency", "rps"} and 1 <= extension["minReplicas"] <= extension["maxReplicas"]
    # The rest is a PodSpec: validated as one, strictly, against the Kubernetes schema (offline).
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": isvc["metadata"]["name"]}, "spec": {k: v for k, v in predictor.items() if k not in COMPONENT_EXTENSION}}
    kubernetes_validate.validate(pod, K8S_VERSION, strict=True)


def test_kserve_predictor_speaks_v2_on_knatives_port_with_v2_probes():
    from config import load_config
    from serving.protocols import v2

    (container,) = inference_service()["spec"]["predictor"]["containers"]
    assert container["name"] == "kserve-container" and container["image"] == f"{image_name()}:latest"
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["PROTOCOL"] == "v2" and env["BENTOML_PORT"] == str(KNATIVE_PORT)
    assert env["BENTOML_CONFIG_OPTIONS"].startswith(f"services.{entry_service()[1]}.monitoring.options.log_path=")
    (port,) = container["ports"]  # Knative takes one port, named http1 or h2c
    assert port == {"name": "http1", "containerPort": KNATIVE_PORT, "protocol": "TCP"}
    routes = {route.path for route in v2.routes(load_config(ROOT / "configuration.yaml"))}
    for probe, path in (("readinessProbe", "/v2/health/ready"), ("livenessProbe", "/v2/health/live")):
        assert container[probe]["httpGet"] == {"path": path, "port": KNATIVE_PORT} and path in routes
    assert set(container["resources"]["requests"]) == set(container["resources"]["limits"]) == {"cpu", "memory"}
    assert container["securityContext"]["runAsNonRoot"] is True and container["securityContext"]["runAsUser"] == image_user_uid()
    assert container["securityContext"]["allowPrivilegeEscalation"] is False


def test_kserve_grpc_predictor_speaks_grpc_v2_on_an_h2c_port():
    """Knative routes one port per container; named h2c, it carries HTTP/2 cleartext (gRPC) and PORT is
    set to it, which docker/entrypoint.py leaves to gRPC since it equals MODEL_SERVER_GRPC_PORT."""
    (container,) = inference_service(KSERVE_GRPC)["spec"]["predictor"]["containers"]
    assert container["name"] == "kserve-container" and container["image"] == f"{image_name()}:latest"
    (port,) = container["ports"]
    assert port == {"name": "h2c", "containerPort": GRPC_PORT, "protocol": "TCP"}
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["PROTOCOL"] == "grpc-v2" and env[GRPC_PORT_ENV] == str(GRPC_PORT)
    assert env["BENTOML_PORT"] != str(GRPC_PORT)  # HTTP must not take the gRPC port
    assert env["BENTOML_CONFIG_OPTIONS"].startswith(f"services.{entry_service()[1]}.monitoring.options.log_path=")
    # readiness: grpc.health.v1 Check (SERVING under /readyz's rule); liveness: the port accepts connections
    assert container["readinessProbe"]["grpc"] == {"port": GRPC_PORT}
    assert container["livenessProbe"]["tcpSocket"] == {"port": GRPC_PORT}
    assert container["securityContext"]["runAsNonRoot"] is True and container["securityContext"]["runAsUser"] == image_user_uid()
    rest = inference_service(KSERVE)
    assert inference_service(KSERVE_GRPC)["metadata"]["name"] != rest["metadata"]["name"]
    grpc_predictor = {k: v for k, v in inference_service(KSERVE_GRPC)["spec"]["predictor"].items() if k != "containers"}
    assert grpc_predictor == {k: v for k, v in rest["spec"]["predictor"].items() if k != "containers"}
