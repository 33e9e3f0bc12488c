"""Docker and Kubernetes targets: the build context and manifests validated structurally;
the image's entrypoint serves the baked model folders (run here as a plain process)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from syllabus import Client
from syllabus.errors import TargetUnavailableError
from tests.deploy.conftest import SPEC, register_linear

DOCKER_SPEC = SPEC.replace("target: local", "target: docker") + (
    "resources: {cpu: 500m, memory: 256Mi}\n"
    "traffic:\n  shadow: {model: churn@2}\n"
    "kubernetes: {namespace: ml, image: registry.example/churn:7}\n"
)


@pytest.fixture
def models(client: Client) -> Client:
    register_linear(client, "churn", 2.0)
    register_linear(client, "churn", 3.0)
    return client


def test_docker_context(models: Client, workdir: Path) -> None:
    (workdir / "deploy.yaml").write_text(DOCKER_SPEC)
    out = workdir / "rendered"
    files = models.render_deployment(workdir / "deploy.yaml", "production", out)
    names = {p.relative_to(out).as_posix() for p in files}
    assert {"docker/Dockerfile", "docker/requirements.txt", "docker/serving.json",
            "docker/models.json", "docker/.dockerignore",
            "docker/models/primary/syllabus-model.json",
            "docker/models/shadow/syllabus-model.json"} <= names  # fmt: skip
    ctx = out / "docker"
    dockerfile = (ctx / "Dockerfile").read_text()
    instructions = [
        line.split()[0] for line in dockerfile.splitlines() if line and line[0].isupper()
    ]
    assert instructions[0] == "FROM"
    assert dockerfile.splitlines()[1] == "FROM python:3.11-slim"
    assert re.search(r"^USER 10001:10001$", dockerfile, re.M)  # not root
    assert instructions.index("USER") > instructions.index("RUN")  # installs ran as root
    assert "HEALTHCHECK" in instructions
    assert "/v2/health/ready" in dockerfile
    entry = json.loads(dockerfile.split("ENTRYPOINT ", 1)[1].splitlines()[0])
    assert entry == ["python", "-m", "syllabus.deploy.targets.container", "/app/serving.json"]
    for line in dockerfile.splitlines():  # every COPY source exists in the context
        if line.startswith("COPY "):
            sources = [p for p in line.split()[1:-1] if not p.startswith("--")]
            assert all((ctx / s).exists() for s in sources), line
    requirements = (ctx / "requirements.txt").read_text().split()
    assert all("==" in r for r in requirements), requirements
    assert any(r.startswith("scikit-learn==") for r in requirements)
    assert any(r.startswith("syllabus[server]==") for r in requirements)
    config = json.loads((ctx / "serving.json").read_text())
    assert config["models"] == {
        "primary": "churn@2", "canary": None, "shadow": {"model": "churn@2"},
    }  # fmt: skip
    assert (config["host"], config["port"], config["uri"]) == ("0.0.0.0", 8080, None)
    baked = json.loads((ctx / "models.json").read_text())
    version = models.get_model_version("churn@2")
    assert baked["churn@2"]["model_digest"] == version.model_digest
    # render records nothing
    assert models.list_deployments() == []


def test_image_entrypoint_serves_the_baked_models(models: Client, workdir: Path) -> None:
    """Run the image's entrypoint on the rendered context, outside Docker: it loads the
    model folders with the content-id guard and answers like `syllabus serve`."""
    (workdir / "deploy.yaml").write_text(DOCKER_SPEC)
    out = workdir / "rendered"
    models.render_deployment(workdir / "deploy.yaml", "staging", out)
    ctx = out / "docker"
    config = json.loads((ctx / "serving.json").read_text())
    config.update(host="127.0.0.1", port=0, ready_file=str(workdir / "ready.json"))
    config["log"]["enabled"] = False
    (ctx / "serving.json").write_text(json.dumps(config))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYLLABUS_")}
    with subprocess.Popen(
        [sys.executable, "-m", "syllabus.deploy.targets.container", str(ctx / "serving.json")],
        cwd=workdir.parent, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    ) as proc:  # fmt: skip
        try:
            deadline = time.monotonic() + 120
            while not (workdir / "ready.json").exists():
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "the entrypoint never became ready"
                time.sleep(0.1)
            port = json.loads((workdir / "ready.json").read_text())["port"]
            response = httpx.post(f"http://127.0.0.1:{port}/predict", json=[{"x": 2.0}], timeout=10)
            assert response.status_code == 200, response.text
            assert response.json()["version"] == 1  # staging serves churn@1: y = 2x
            assert response.json()["predictions"] == [pytest.approx(4.0)]
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def test_docker_apply_needs_a_daemon(models: Client, workdir: Path) -> None:
    (workdir / "deploy.yaml").write_text(DOCKER_SPEC)
    try:
        subprocess.run(["docker", "info"], capture_output=True, check=True, timeout=15)
        pytest.skip("a Docker daemon is reachable here")
    except (OSError, subprocess.SubprocessError):
        pass
    with pytest.raises(TargetUnavailableError, match="docker target: ") as info:
        models.apply_deployment(workdir / "deploy.yaml", "staging")
    assert "\n" not in str(info.value)
    assert models.list_deployments() == []  # nothing recorded


def _manifests(client: Client, workdir: Path, env: str, staging: str = "{}") -> list[dict]:  # type: ignore[type-arg]
    text = DOCKER_SPEC.replace("target: docker", "target: kubernetes")
    (workdir / "deploy.yaml").write_text(text.replace("  staging: {}", f"  staging: {staging}"))
    revision = client.apply_deployment(workdir / "deploy.yaml", env)
    assert revision.status == "rendered"
    path = Path(revision.runtime["folder"]) / "manifests.yaml"
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _check_container(container: dict, replicas_resources: dict) -> None:  # type: ignore[type-arg]
    assert container["image"] == "registry.example/churn:7"
    assert container["ports"][0]["containerPort"] == 8080
    assert container["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": 8080}
    assert container["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": 8080}
    assert container["resources"] == replicas_resources
    assert container["securityContext"]["runAsNonRoot"] is True


def test_kubernetes_deployment_and_service(models: Client, workdir: Path) -> None:
    docs = _manifests(models, workdir, "production")
    deployment, service = docs
    assert (deployment["apiVersion"], deployment["kind"]) == ("apps/v1", "Deployment")
    assert (service["apiVersion"], service["kind"]) == ("v1", "Service")
    assert deployment["metadata"]["name"] == service["metadata"]["name"] == "churn"
    assert deployment["metadata"]["namespace"] == "ml"
    assert deployment["metadata"]["annotations"]["syllabus.dev/model"] == "churn@2"
    spec = deployment["spec"]
    assert spec["replicas"] == 1
    labels = spec["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= labels.items()
    assert service["spec"]["selector"].items() <= labels.items()
    (container,) = spec["template"]["spec"]["containers"]
    limits = {"cpu": "500m", "memory": "256Mi"}
    _check_container(container, {"requests": limits, "limits": limits})
    mounts = {m["name"] for m in container["volumeMounts"]}
    assert mounts <= {v["name"] for v in spec["template"]["spec"]["volumes"]}
    assert service["spec"]["ports"][0]["targetPort"] == container["ports"][0]["name"]
    (status,) = models.deployment_status("churn")
    assert status.health.state == "rendered"
    # a rollback re-renders what the earlier revision had
    models.apply_deployment(workdir / "deploy.yaml", "production")
    back = models.rollback_deployment("churn", "production")
    assert (back.revision, back.based_on, back.status) == (3, 1, "rendered")
    assert Path(back.runtime["folder"], "manifests.yaml").read_text().count("kind: ") >= 2


def test_kubernetes_kserve(models: Client, workdir: Path) -> None:
    (isvc,) = _manifests(
        models,
        workdir,
        "staging",
        "\n    kubernetes: {kind: kserve, image: registry.example/churn:7}",
    )
    assert (isvc["apiVersion"], isvc["kind"]) == ("serving.kserve.io/v1beta1", "InferenceService")
    assert isvc["metadata"]["name"] == "churn-staging"
    assert "namespace" not in isvc["metadata"]  # the staging override replaced the block
    predictor = isvc["spec"]["predictor"]
    assert predictor["minReplicas"] == 1
    (container,) = predictor["containers"]
    limits = {"cpu": "500m", "memory": "256Mi"}
    _check_container(container, {"requests": limits, "limits": limits})
