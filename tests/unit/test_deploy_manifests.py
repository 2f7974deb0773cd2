"""deploy/: the Kubernetes manifests against the API schemas (offline, kubernetes-validate) and the
Compose file's keys, and both against the image (port, user, probes, monitoring volume)."""

from __future__ import annotations

import re
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
KUBE = ROOT / "deploy" / "kubernetes"
K8S_VERSION = "1.33"  # schemas shipped by kubernetes-validate (requirements-dev.txt)
PORT = 3000
MONITORING = "/home/bentoml/monitoring"
MONITORING_OPTION = f"services.clothes.monitoring.options.log_path={MONITORING}"


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
    assert container["ports"] == [{"name": "http", "containerPort": PORT, "protocol": "TCP"}]
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
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["BENTOML_CONFIG_OPTIONS"] == MONITORING_OPTION
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


def test_compose_file():
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    service = compose["services"]["clothes"]
    assert re.fullmatch(r"\$\{CLOTHES_IMAGE:-clothes-service:latest\}", service["image"])
    assert service["network_mode"] == "host" and service["environment"]["BENTOML_PORT"] == str(PORT)
    assert service["restart"] in {"always", "unless-stopped"}
    assert service["mem_limit"] and service["cpus"]
    assert service["stop_grace_period"] == "60s"
    test = " ".join(service["healthcheck"]["test"])
    assert service["healthcheck"]["test"][0] == "CMD" and f"127.0.0.1:{PORT}/readyz" in test
    assert f"monitoring:{MONITORING}" in service["volumes"] and "monitoring" in compose["volumes"]
    assert service["environment"]["BENTOML_CONFIG_OPTIONS"] == MONITORING_OPTION


def test_bentofile_builds_the_container_from_this_directory():
    bentofile = yaml.safe_load((ROOT / "bentofile.yaml").read_text())
    docker = bentofile["docker"]
    assert docker["base_image"] == "python:3.11-slim"  # BentoML's default name: Docker Hub has it
    assert (ROOT / docker["dockerfile_template"]).is_file()
    assert "docker/entrypoint.py" in bentofile["include"]
    template = (ROOT / docker["dockerfile_template"]).read_text()
    assert "HEALTHCHECK" in template and "/readyz" in template and "tensorflow/include" in template
