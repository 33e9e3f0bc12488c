"""The ``kubernetes`` target: manifests for ``kubectl apply -f``.

``kubernetes.kind: deployment`` (default) writes a ``Deployment`` and a ``Service``;
``kind: kserve`` writes a KServe ``InferenceService`` (``serving.kserve.io/v1beta1``) with
a custom predictor container. Either runs the image the docker target builds (its context
is written next to the manifests, under ``docker/``): ``kubernetes.image`` names where it
was pushed (default: the docker target's local name). Probes use ``/v2/health/live``
and ``/v2/health/ready``; resources, replicas and the namespace come from the spec.

Syllabus records such a revision as ``rendered``: applying the manifests is the cluster
operator's (or CD system's) step.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import yaml

from syllabus.deploy.models import Health
from syllabus.deploy.targets.base import Plan
from syllabus.deploy.targets.docker import CONTAINER_PORT, image_name, write_context

__all__ = ["KubernetesTarget", "dns_name", "manifests"]

MANIFEST_FILE: Final = "manifests.yaml"


def dns_name(text: str) -> str:
    """A DNS-1123 label from a service name (lowercase, '-' for other characters)."""
    name = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return name[:63].rstrip("-") or "service"


def _resources(config: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for part in ("requests", "limits"):
        values = dict(config.get("resources", {}).get(part, {}))
        if "gpu" in values:
            values["nvidia.com/gpu"] = values.pop("gpu")
        if values:
            out[part] = values
    return out


def _probe(path: str, *, initial: int, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": CONTAINER_PORT},
        "initialDelaySeconds": initial,
        "periodSeconds": period,
        "timeoutSeconds": 3,
        "failureThreshold": failures,
    }


def _container(plan: Plan, image: str, name: str) -> dict[str, Any]:
    timeout = int(float(plan.config["readiness_timeout"]))
    return {
        "name": name,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "http", "containerPort": CONTAINER_PORT, "protocol": "TCP"}],
        "env": [{"name": "SYLLABUS_PREDICTIONS", "value": "/data/predictions"}],
        "startupProbe": _probe(
            "/v2/health/ready", initial=1, period=2, failures=max(1, timeout // 2)
        ),
        "readinessProbe": _probe("/v2/health/ready", initial=0, period=5, failures=3),
        "livenessProbe": _probe("/v2/health/live", initial=0, period=10, failures=3),
        "resources": _resources(plan.config),
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
        },
        "volumeMounts": [
            {"name": "data", "mountPath": "/data"},
            {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - the container's own /tmp
        ],
    }


def manifests(plan: Plan) -> list[dict[str, Any]]:
    """The Kubernetes objects for a revision."""
    k8s = plan.config.get("kubernetes", {})
    name = dns_name(plan.name if plan.env == "production" else f"{plan.name}-{plan.env}")
    image = k8s.get("image") or image_name(plan)
    labels = {
        "app.kubernetes.io/name": dns_name(plan.name),
        "app.kubernetes.io/instance": name,
        "app.kubernetes.io/managed-by": "syllabus",
        "syllabus.dev/env": plan.env,
    }
    annotations = {
        "syllabus.dev/revision": str(plan.revision),
        "syllabus.dev/model": plan.primary.ref,
    }
    metadata: dict[str, Any] = {"name": name, "labels": labels, "annotations": annotations}
    if k8s.get("namespace"):
        metadata["namespace"] = k8s["namespace"]
    volumes = [{"name": "data", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}]
    if k8s.get("kind") == "kserve":
        return [
            {
                "apiVersion": "serving.kserve.io/v1beta1",
                "kind": "InferenceService",
                "metadata": metadata,
                "spec": {
                    "predictor": {
                        "minReplicas": int(plan.config["replicas"]),
                        "maxReplicas": int(plan.config["replicas"]),
                        "containers": [_container(plan, image, "kserve-container")],
                        "volumes": volumes,
                    }
                },
            }
        ]
    selector = {"app.kubernetes.io/instance": name}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata,
        "spec": {
            "replicas": int(plan.config["replicas"]),
            "selector": {"matchLabels": selector},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
            },
            "template": {
                "metadata": {"labels": labels, "annotations": annotations},
                "spec": {
                    "containers": [_container(plan, image, "server")],
                    "volumes": volumes,
                    "terminationGracePeriodSeconds": 40,
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {k: v for k, v in metadata.items() if k != "annotations"},
        "spec": {
            "type": k8s.get("service_type") or "ClusterIP",
            "selector": selector,
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    }
    return [deployment, service]


class KubernetesTarget:
    """Manifests written for ``kubectl apply -f``; nothing is applied from here."""

    name = "kubernetes"

    def check(self) -> None:
        """Writing manifests needs no cluster."""

    def render(self, plan: Plan) -> list[Path]:
        plan.folder.mkdir(parents=True, exist_ok=True)
        files = write_context(plan, plan.folder / "docker")
        path = plan.folder / MANIFEST_FILE
        path.write_text(
            "# Written by syllabus deploy; apply with: kubectl apply -f " + MANIFEST_FILE + "\n"
            + yaml.safe_dump_all(manifests(plan), sort_keys=False),
            encoding="utf-8",
        )  # fmt: skip
        return [path, *files]

    def start(self, plan: Plan, previous: Mapping[str, Any] | None) -> dict[str, Any]:
        files = self.render(plan)
        return {"target": self.name, "folder": str(plan.folder), "files": [str(f) for f in files]}

    def stop(self, runtime: Mapping[str, Any]) -> None:
        """Nothing runs from here (``kubectl delete -f`` the manifests to remove them)."""

    def health(self, runtime: Mapping[str, Any]) -> Health:
        return Health("rendered", f"manifests in {runtime.get('folder', '?')}")
