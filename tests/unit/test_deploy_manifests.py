"""deploy/: the Kubernetes manifests against the API schemas (offline, kubernetes-validate) and the
Compose file's keys, and both against the image (ports, HTTP and gRPC, user, probes, monitoring volume);
the fleet's wiring in Compose, Kubernetes and KServe (Redis with persistence, the environment that
turns configuration.yaml into a fleet's: state backend and URL, the replicas' names, the shared
repository); bentofile.yaml against service.py (the
service it names, the modules it packs)."""

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
# The fleet: the image's configuration.yaml with these four from each replica's environment.
STATE_BACKEND_ENV, STATE_URL_ENV = "MODEL_SERVER_STATE_BACKEND", "MODEL_SERVER_STATE_URL"
REPLICA_ENV, REPOSITORY_ENV = "MODEL_SERVER_REPLICA", "MODEL_SERVER_REPOSITORY"
REPOSITORY_CLAIM = "model-server-repository"  # repository.yaml's claim, shared by every pod


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


def kustomization() -> dict:
    return yaml.safe_load((KUBE / "kustomization.yaml").read_text())


def objects() -> dict[tuple[str, str], dict]:
    """Everything `kubectl apply -k deploy/kubernetes` creates, by (kind, name)."""
    docs: dict[tuple[str, str], dict] = {}
    found = [doc for name in kustomization()["resources"] for doc in yaml.safe_load_all((KUBE / name).read_text())]
    for doc in found:
        key = (doc["kind"], doc["metadata"]["name"])
        assert key not in docs, f"{key} twice"
        docs[key] = doc
    return docs


def manifests() -> dict[str, dict]:
    """The model server's own objects, by kind."""
    return {kind: doc for (kind, name), doc in objects().items() if name == "model-server"}


def env_values(container: dict) -> dict[str, str | None]:
    """A container's plain values (None for one taken from elsewhere: valueFrom)."""
    return {e["name"]: e.get("value") for e in container["env"]}


def image_user_uid() -> int:
    from bentoml._internal.container.generate import BENTO_UID_GID

    return BENTO_UID_GID


@pytest.mark.parametrize("path", sorted(set(KUBE.glob("*.yaml")) - {KUBE / "kustomization.yaml"}), ids=lambda p: p.name)
def test_manifest_validates_against_kubernetes_schema(path):
    for doc in yaml.safe_load_all(path.read_text()):
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)  # raises on unknown or missing fields


def test_kustomization_lists_every_manifest():
    # resources and image tags only: nothing generated (a generator's objects would escape these tests)
    assert set(kustomization()) == {"apiVersion", "kind", "resources", "images"}
    listed = set(kustomization()["resources"])
    assert listed == {p.name for p in KUBE.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(objects()) == {
        ("Deployment", "model-server"),
        ("Service", "model-server"),
        ("HorizontalPodAutoscaler", "model-server"),
        ("StatefulSet", "model-server-redis"),
        ("Service", "model-server-redis"),
        ("PersistentVolumeClaim", REPOSITORY_CLAIM),
    }


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
    assert mounts["monitoring"] == MONITORING
    assert {v["name"] for v in pod["volumes"]} == set(mounts)


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
    assert env_values(container)[GRPC_PORT_ENV] == str(GRPC_PORT)
    (port,) = [p for p in docs["Service"]["spec"]["ports"] if p["name"] == "grpc"]
    assert port == {"name": "grpc", "port": GRPC_PORT, "targetPort": "grpc", "protocol": "TCP", "appProtocol": "kubernetes.io/h2c"}
    template = (ROOT / "docker" / "Dockerfile.template").read_text()
    assert re.search(rf"^EXPOSE {GRPC_PORT}$", template, re.MULTILINE)
    first = next(iter(compose_replicas().values()))
    assert first["environment"][GRPC_PORT_ENV] == str(GRPC_PORT)


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


COMPOSE = ROOT / "deploy" / "compose.yaml"


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def is_model_server_image(image: str) -> bool:
    return re.fullmatch(rf"\$\{{[A-Z_]+_IMAGE:-{re.escape(image_name())}:latest\}}", image) is not None


def compose_replicas() -> dict[str, dict]:
    """The model server's services in compose.yaml (the image the script builds), in file order."""
    return {name: s for name, s in compose()["services"].items() if is_model_server_image(s.get("image", ""))}


def compose_mounts(service: dict) -> dict[str, tuple[str, str]]:
    """A service's mounts: target -> (source, mode)."""
    mounts = {}
    for volume in service["volumes"]:
        source, target, *mode = volume.split(":")
        mounts[target] = (source, mode[0] if mode else "rw")
    return mounts


def test_compose_file():
    replicas = compose_replicas()
    assert len(replicas) >= 2  # a fleet
    ports = [r["environment"]["BENTOML_PORT"] for r in replicas.values()]
    assert ports[0] == str(PORT)
    for service in replicas.values():
        environment = service["environment"]
        assert service["network_mode"] == "host"
        assert service["restart"] in {"always", "unless-stopped"}
        assert service["mem_limit"] and service["cpus"]
        assert service["stop_grace_period"] == "60s"
        # the image's HEALTHCHECK: /readyz on the replica's own port
        test = " ".join(service["healthcheck"]["test"])
        assert service["healthcheck"]["test"][0] == "CMD" and "127.0.0.1:%s/readyz' % os.environ['BENTOML_PORT']" in test
        (source, _) = compose_mounts(service)[MONITORING]
        assert source in compose()["volumes"]
        assert environment["BENTOML_PORT"] and environment[GRPC_PORT_ENV]
    # on the host's network, every replica needs ports, a monitoring volume and a name of its own
    for distinct in (
        [r["environment"]["BENTOML_PORT"] for r in replicas.values()] + [r["environment"][GRPC_PORT_ENV] for r in replicas.values()],
        [compose_mounts(r)[MONITORING][0] for r in replicas.values()],
        [r["environment"][REPLICA_ENV] for r in replicas.values()],
    ):
        assert len(set(distinct)) == len(distinct), distinct


def test_kubernetes_runs_the_image_the_script_builds():
    (container,) = manifests()["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"{image_name()}:latest"


def test_the_entry_services_monitoring_logs_go_to_the_volume():
    (container,) = manifests()["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert env_values(container)["BENTOML_CONFIG_OPTIONS"] == MONITORING_OPTION
    for service in compose_replicas().values():
        assert service["environment"]["BENTOML_CONFIG_OPTIONS"] == MONITORING_OPTION


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
    env = env_values(container)
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
    env = env_values(container)
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


# --- the fleet: Redis, and the environment that makes configuration.yaml a fleet's --------------------

REDIS = ROOT / "deploy" / "redis" / "Dockerfile"
EXAMPLE_POD = "model-server-7d9f8b6c5-x2k4z"  # a pod's name, what `fieldRef: metadata.name` gives
POD_NAME = {"fieldRef": {"fieldPath": "metadata.name"}}


def flag(args: list[str], name: str) -> str:
    """The value after ``--name`` in redis-server's arguments."""
    assert args.count(f"--{name}") == 1, f"--{name} in {args}"
    return args[args.index(f"--{name}") + 1]


def kubernetes_replicas() -> dict[str, tuple[dict, dict]]:
    """Every model server container in Kubernetes and KServe: (container, its pod spec)."""
    pod = manifests()["Deployment"]["spec"]["template"]["spec"]
    replicas = {"kubernetes/deployment.yaml": (pod["containers"][0], pod)}
    for path in (KSERVE, KSERVE_GRPC):
        predictor = inference_service(path)["spec"]["predictor"]
        replicas[f"kserve/{path.name}"] = (predictor["containers"][0], predictor)
    return replicas


def pod_mounts(container: dict, pod: dict) -> dict[str, dict]:
    """mountPath -> the volume's source (its name left out)."""
    volumes = {v["name"]: {k: x for k, x in v.items() if k != "name"} for v in pod.get("volumes", [])}
    return {m["mountPath"]: volumes[m["name"]] for m in container.get("volumeMounts", [])}


def repository_mount(container: dict, pod: dict) -> str:
    """Where a pod mounts the shared repository's claim."""
    (path,) = [path for path, source in pod_mounts(container, pod).items() if source.get("persistentVolumeClaim", {}).get("claimName") == REPOSITORY_CLAIM]
    return path


def compose_repository_mount(service: dict) -> str:
    """Where a Compose service mounts the shared repository's volume."""
    (path,) = [target for target, (source, _) in compose_mounts(service).items() if source == "models-repository"]
    return path


def fleet_replicas() -> dict[str, tuple[dict[str, str], str]]:
    """Every model server container, in Compose, Kubernetes and KServe: (its environment, where it mounts
    the shared repository). A value taken from the pod's name stands as EXAMPLE_POD."""
    replicas = {f"compose.yaml/{name}": (dict(service["environment"]), compose_repository_mount(service)) for name, service in compose_replicas().items()}
    for where, (container, pod) in kubernetes_replicas().items():
        env = {e["name"]: EXAMPLE_POD if e.get("valueFrom") == POD_NAME else e.get("value") for e in container["env"]}
        replicas[where] = (env, repository_mount(container, pod))
    return replicas


def redis_statefulset() -> dict:
    return objects()[("StatefulSet", "model-server-redis")]


def test_the_fleet_variables_are_the_loaders():
    from config import settings

    assert (settings.STATE_BACKEND_ENV, settings.STATE_URL_ENV) == (STATE_BACKEND_ENV, STATE_URL_ENV)
    assert (settings.REPLICA_ENV, settings.REPOSITORY_ENV) == (REPLICA_ENV, REPOSITORY_ENV)


def test_every_replica_sets_the_fleet_environment():
    """Compose's services, the Deployment and both InferenceServices: Redis as the state backend, its URL,
    a name, and repository.path where the shared repository is mounted; no configuration of their own
    (the image's configuration.yaml, the one source of every other key)."""
    from config.settings import CONFIG_ENV

    replicas = fleet_replicas()
    assert len(replicas) == len(compose_replicas()) + 3
    for where, (env, mount) in replicas.items():
        assert env[STATE_BACKEND_ENV] == "redis", where
        assert env[STATE_URL_ENV].startswith("redis://"), where
        assert env[REPLICA_ENV], where
        assert env[REPOSITORY_ENV] == mount and Path(mount).is_absolute(), where
        assert CONFIG_ENV not in env, where


def test_configuration_yaml_serves_a_fleet_by_each_replicas_environment(monkeypatch):
    from config import load_config

    for where, (env, mount) in fleet_replicas().items():
        for name in (STATE_BACKEND_ENV, STATE_URL_ENV, REPLICA_ENV, REPOSITORY_ENV):
            monkeypatch.setenv(name, env[name])
        config = load_config(ROOT / "configuration.yaml")
        assert config.state.backend == "redis", where
        assert (config.state.url, config.state.replica) == (env[STATE_URL_ENV], env[REPLICA_ENV]), where
        assert config.repository_dir() == Path(mount), where


def test_every_kubernetes_replica_follows_the_fleet():
    """Deployment and both InferenceServices: Redis through its Service, the pod's name as the replica's,
    the shared claim."""
    docs = objects()
    redis_service = docs[("Service", "model-server-redis")]
    (redis_port,) = redis_service["spec"]["ports"]
    for where, (container, pod) in kubernetes_replicas().items():
        env = {e["name"]: e for e in container["env"]}
        assert env[STATE_URL_ENV]["value"] == f"redis://{redis_service['metadata']['name']}:{redis_port['port']}/0", where
        assert env[REPLICA_ENV]["valueFrom"] == POD_NAME, where
        assert env[REPOSITORY_ENV]["value"] == repository_mount(container, pod), where
    assert redis_port["targetPort"] in {p["name"] for p in redis_statefulset()["spec"]["template"]["spec"]["containers"][0]["ports"]}


def test_kserve_predictors_mount_the_repository_read_only():
    """Knative allows a claim without kubernetes.podspec-persistent-volume-write only when read-only."""
    for where, (container, pod) in kubernetes_replicas().items():
        if where.startswith("kserve/"):
            path = repository_mount(container, pod)
            (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == path]
            assert mount["readOnly"] is True and pod_mounts(container, pod)[path]["persistentVolumeClaim"]["readOnly"] is True, where


def test_the_repository_claim_is_read_write_many():
    claim = objects()[("PersistentVolumeClaim", REPOSITORY_CLAIM)]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]  # every pod, on any node, at once
    assert claim["spec"]["resources"]["requests"]["storage"]


def test_kubernetes_redis_persists_and_is_not_a_model_server():
    statefulset = redis_statefulset()
    pod = statefulset["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert statefulset["spec"]["replicas"] == 1
    assert flag(container["args"], "appendonly") == "yes"
    data = flag(container["args"], "dir")
    (claim,) = statefulset["spec"]["volumeClaimTemplates"]
    assert {m["mountPath"]: m["name"] for m in container["volumeMounts"]}[data] == claim["metadata"]["name"]
    # the model server's Service and Deployment must not select Redis' pods
    labels = statefulset["spec"]["template"]["metadata"]["labels"]
    assert not manifests()["Service"]["spec"]["selector"].items() <= labels.items()
    assert not manifests()["Deployment"]["spec"]["selector"]["matchLabels"].items() <= labels.items()
    # the image's user, which owns /data
    assert pod["securityContext"]["runAsUser"] == int(re.search(r"^USER (\d+)", REDIS.read_text(), re.MULTILINE).group(1))
    assert container["image"].split(":")[0] in {i["name"] for i in kustomization()["images"]}


def test_every_compose_replica_follows_the_fleet():
    services = compose()["services"]
    redis_args = services["redis"]["command"]
    repositories = set()
    for name, service in compose_replicas().items():
        environment, mounts = service["environment"], compose_mounts(service)
        # host networking: Redis on the loopback, at the port it listens on
        assert environment[STATE_URL_ENV] == f"redis://{flag(redis_args, 'bind')}:{flag(redis_args, 'port')}/0", name
        assert environment[REPLICA_ENV], name
        assert "redis" in service["depends_on"]
        assert mounts[environment[REPOSITORY_ENV]] == ("models-repository", "ro"), name
        repositories.add(environment[REPOSITORY_ENV])
    # the publisher on the host and the replicas use one path: the volume is that directory of the host
    (repository,) = repositories
    assert compose()["volumes"]["models-repository"]["driver_opts"] == {"type": "none", "o": "bind", "device": repository}


def test_compose_redis_persists_on_a_volume():
    redis = compose()["services"]["redis"]
    args = redis["command"]
    assert flag(args, "appendonly") == "yes"
    source, _ = compose_mounts(redis)[flag(args, "dir")]
    assert source in compose()["volumes"]
    assert flag(args, "bind") == "127.0.0.1"  # no password: never on the host's other addresses


def test_compose_runs_only_images_the_project_builds():
    """The model server's image (scripts/build-container.sh) or one built from a Dockerfile here on the
    same base image (docker/base-image.sh builds it where Docker Hub is unreachable)."""
    base = yaml.safe_load((ROOT / "bentofile.yaml").read_text())["docker"]["base_image"]
    for name, service in compose()["services"].items():
        if is_model_server_image(service.get("image", "")):
            continue
        build = service["build"]
        dockerfile = COMPOSE.parent / build["context"] / build.get("dockerfile", "Dockerfile")
        text = dockerfile.read_text()
        assert re.search(rf"^ARG BASE_IMAGE={re.escape(base)}$", text, re.MULTILINE) and re.search(r"^FROM \$\{BASE_IMAGE\}$", text, re.MULTILINE), name
        assert build.get("network") == "host", name  # dockerd runs without a bridge here (scripts/docker-engine.sh)
    redis_image = compose()["services"]["redis"]["image"]
    assert redis_image == redis_statefulset()["spec"]["template"]["spec"]["containers"][0]["image"]


def test_nginx_balances_the_compose_replicas():
    conf = (ROOT / "deploy" / "nginx" / "model-server.conf").read_text()
    upstream = re.search(r"upstream model_server_replicas \{(.*?)\}", conf, re.DOTALL).group(1)
    servers = re.findall(r"^\s*server 127\.0\.0\.1:(\d+)", upstream, re.MULTILINE)
    assert servers == [r["environment"]["BENTOML_PORT"] for r in compose_replicas().values()]
