"""Deployment specs: one YAML file per service, the same for every environment.

::

    service: churn                 # the service name (letters, digits, '_', '.', '-')
    model: churn@production        # the model reference, resolved to a version when applied
    target: local                  # local | docker | kubernetes
    workers: 2                     # server worker processes
    replicas: 1                    # containers / pods (docker, kubernetes)
    port: 0                        # local: 0 = each revision on its own free port;
                                   #   N = every revision on port N (SO_REUSEPORT handover)
    host: 127.0.0.1                # local: address to bind
    readiness_timeout: 60s         # how long a new revision may take to become ready
    resources: {cpu: "1", memory: 1Gi}          # requests (= limits unless `limits:` given)
    log: {enabled: true, flush_rows: 10000, flush_seconds: 5}   # the prediction log
    traffic:
      canary: {model: churn@staging, percent: 10}   # this share of requests goes there
      shadow: {model: churn@4}                      # scores copies, answers never returned
    docker: {image: churn-serving, base: "python:3.11-slim"}
    kubernetes: {kind: deployment, namespace: ml, image: registry.example/churn:1}
    monitoring: {...}              # kept as written; the monitoring component reads it
    environments:                  # every environment a spec may be applied to
      staging:
        model: churn@staging
      production:
        workers: 4
        traffic: {}

An environment's entries replace the top-level value of the same key, whole (a mapping is
not merged: ``traffic: {}`` in production means no canary there). Everything not
overridden is identical in every environment: :meth:`DeploymentSpec.effective` is the
one place that combines them. Every error names the line it is about
(``deploy.yaml:12: unknown key 'wokers'``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import yaml

from syllabus._utils.yamlnodes import mapping_items, node_line, node_value
from syllabus.config import parse_duration
from syllabus.errors import ConfigError, InvalidArgumentError, InvalidReferenceError
from syllabus.refs import parse_ref

__all__ = [
    "ENV_KEYS",
    "TARGETS",
    "DeploymentSpec",
    "SpecError",
    "parse_spec",
]

SpecError = InvalidArgumentError
"""What a malformed spec raises; the message names the line."""

TARGETS: Final = ("local", "docker", "kubernetes")
KUBERNETES_KINDS: Final = ("deployment", "kserve")

ENV_KEYS: Final = (
    "model",
    "target",
    "workers",
    "replicas",
    "host",
    "port",
    "readiness_timeout",
    "resources",
    "log",
    "traffic",
    "docker",
    "kubernetes",
    "monitoring",
)
"""Keys an environment may override (everything but ``service`` and ``environments``)."""

_TOP_KEYS: Final = ("service", *ENV_KEYS, "environments")
_SERVICE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
_ENV: Final = re.compile(r"[a-z][a-z0-9-]{0,31}")
_CPU: Final = re.compile(r"^(\d+(\.\d+)?|\d+m)$")
_MEMORY: Final = re.compile(r"^\d+(\.\d+)?(Ki|Mi|Gi|Ti|Pi|k|K|M|G|T|P)?$")
_IMAGE: Final = re.compile(r"^[a-z0-9][a-z0-9._/:@-]{0,254}$")
_NAMESPACE: Final = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")

DEFAULTS: Final[Mapping[str, Any]] = {
    "target": "local",
    "workers": 1,
    "replicas": 1,
    "host": "127.0.0.1",
    "port": 0,
    "readiness_timeout": 60.0,
    "resources": {"requests": {}, "limits": {}},
    "log": {"enabled": True, "flush_rows": 10_000, "flush_seconds": 5.0},
    "traffic": {"canary": None, "shadow": None},
    "docker": {"image": None, "base": "python:3.11-slim"},
    "kubernetes": {
        "kind": "deployment",
        "namespace": None,
        "image": None,
        "service_type": "ClusterIP",
    },
    "monitoring": None,
}


def _fail(source: str, node: yaml.Node | None, message: str) -> SpecError:
    return SpecError(f"{source}:{node_line(node)}: {message}")


_value = node_value


def _mapping(source: str, node: yaml.Node, what: str) -> list[tuple[str, yaml.Node, yaml.Node]]:
    return mapping_items(source, node, what, _fail)


def _known(
    source: str, items: list[tuple[str, yaml.Node, yaml.Node]], what: str, known: tuple[str, ...]
) -> None:
    for name, key, _ in items:
        if name not in known:
            raise _fail(source, key, f"{what}: unknown key {name!r} ({', '.join(known)})")


def _scalar(source: str, node: yaml.Node, what: str) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        raise _fail(source, node, f"{what} must be a single value")
    return _value(node)


def _string(source: str, node: yaml.Node, what: str, pattern: re.Pattern[str] | None = None) -> str:
    value = _scalar(source, node, what)
    if not isinstance(value, str) or not value.strip():
        raise _fail(source, node, f"{what} must be a non-empty string, not {value!r}")
    if pattern is not None and not pattern.fullmatch(value):
        raise _fail(source, node, f"{what} {value!r} is not valid")
    return value.strip()


def _integer(source: str, node: yaml.Node, what: str, lo: int, hi: int) -> int:
    value = _scalar(source, node, what)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise _fail(source, node, f"{what} must be a whole number from {lo} to {hi}, not {value!r}")
    return value


def _number(source: str, node: yaml.Node, what: str, lo: float, hi: float) -> float:
    value = _scalar(source, node, what)
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
        raise _fail(source, node, f"{what} must be a number from {lo:g} to {hi:g}, not {value!r}")
    return float(value)


def _model_ref(source: str, node: yaml.Node, what: str) -> str:
    text = _string(source, node, what)
    try:
        parse_ref(text)
    except InvalidReferenceError as exc:
        raise _fail(source, node, f"{what}: {exc}") from None
    return text


def _duration(source: str, node: yaml.Node, what: str) -> float:
    raw = _scalar(source, node, what)
    try:
        seconds = parse_duration(str(raw))
    except ConfigError:
        raise _fail(source, node, f"{what} {raw!r} is no duration (e.g. 90s, 5m)") from None
    if not 1 <= seconds <= 86400:
        raise _fail(source, node, f"{what} must be from 1s to 1d")
    return seconds


def _quantities(source: str, node: yaml.Node, what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, key, value in _mapping(source, node, what):
        raw = _scalar(source, value, f"{what}.{name}")
        text = str(raw)
        if isinstance(raw, bool) or raw is None:
            raise _fail(source, value, f"{what}.{name} must be a quantity, not {raw!r}")
        if name == "cpu":
            if not _CPU.match(text):
                raise _fail(source, value, f"{what}.cpu {text!r} is no CPU quantity (2, 0.5, 500m)")
        elif name == "memory":
            if not _MEMORY.match(text):
                raise _fail(
                    source, value, f"{what}.memory {text!r} is no memory quantity (512Mi, 2Gi)"
                )
        elif name == "gpu":
            if not isinstance(raw, int) or raw < 0:
                raise _fail(source, value, f"{what}.gpu must be a whole number of GPUs")
        else:
            raise _fail(source, key, f"{what}: unknown key {name!r} (cpu, memory, gpu)")
        out[name] = text
    return out


def _resources(source: str, node: yaml.Node) -> dict[str, dict[str, str]]:
    items = _mapping(source, node, "resources")
    names = {name for name, _, _ in items}
    if names & {"requests", "limits"}:
        _known(source, items, "resources", ("requests", "limits"))
        parts = {name: _quantities(source, value, f"resources.{name}") for name, _, value in items}
        requests = parts.get("requests", {})
        return {"requests": requests, "limits": parts.get("limits", dict(requests))}
    flat = _quantities(source, node, "resources")
    return {"requests": flat, "limits": dict(flat)}


def _log(source: str, node: yaml.Node) -> dict[str, Any]:
    out = dict(DEFAULTS["log"])
    items = _mapping(source, node, "log")
    _known(source, items, "log", ("enabled", "flush_rows", "flush_seconds"))
    for name, _, value in items:
        if name == "enabled":
            flag = _scalar(source, value, "log.enabled")
            if not isinstance(flag, bool):
                raise _fail(source, value, f"log.enabled must be true or false, not {flag!r}")
            out["enabled"] = flag
        elif name == "flush_rows":
            out["flush_rows"] = _integer(source, value, "log.flush_rows", 1, 10**9)
        else:
            out["flush_seconds"] = _number(source, value, "log.flush_seconds", 0.001, 86400)
    return out


def _traffic(source: str, node: yaml.Node) -> dict[str, Any]:
    out: dict[str, Any] = {"canary": None, "shadow": None}
    if isinstance(node, yaml.ScalarNode) and _value(node) is None:
        return out
    items = _mapping(source, node, "traffic")
    _known(source, items, "traffic", ("canary", "shadow"))
    for name, _, value in items:
        parts = _mapping(source, value, f"traffic.{name}")
        if name == "canary":
            _known(source, parts, "traffic.canary", ("model", "percent"))
            got = {n: v for n, _, v in parts}
            if "model" not in got or "percent" not in got:
                raise _fail(source, value, "traffic.canary needs model and percent")
            out["canary"] = {
                "model": _model_ref(source, got["model"], "traffic.canary.model"),
                "percent": _number(source, got["percent"], "traffic.canary.percent", 0, 100),
            }
        else:
            _known(source, parts, "traffic.shadow", ("model",))
            got = {n: v for n, _, v in parts}
            if "model" not in got:
                raise _fail(source, value, "traffic.shadow needs model")
            out["shadow"] = {"model": _model_ref(source, got["model"], "traffic.shadow.model")}
    return out


def _docker(source: str, node: yaml.Node) -> dict[str, Any]:
    out = dict(DEFAULTS["docker"])
    items = _mapping(source, node, "docker")
    _known(source, items, "docker", ("image", "base"))
    for name, _, value in items:
        out[name] = _string(source, value, f"docker.{name}", _IMAGE)
    return out


def _kubernetes(source: str, node: yaml.Node) -> dict[str, Any]:
    out = dict(DEFAULTS["kubernetes"])
    items = _mapping(source, node, "kubernetes")
    _known(source, items, "kubernetes", ("kind", "namespace", "image", "service_type"))
    for name, _, value in items:
        if name == "kind":
            kind = _string(source, value, "kubernetes.kind")
            if kind not in KUBERNETES_KINDS:
                raise _fail(
                    source,
                    value,
                    f"kubernetes.kind {kind!r} is unknown ({', '.join(KUBERNETES_KINDS)})",
                )
            out["kind"] = kind
        elif name == "namespace":
            out["namespace"] = _string(source, value, "kubernetes.namespace", _NAMESPACE)
        elif name == "image":
            out["image"] = _string(source, value, "kubernetes.image", _IMAGE)
        else:
            kind = _string(source, value, "kubernetes.service_type")
            if kind not in ("ClusterIP", "NodePort", "LoadBalancer"):
                raise _fail(
                    source,
                    value,
                    f"kubernetes.service_type {kind!r} is unknown "
                    "(ClusterIP, NodePort, LoadBalancer)",
                )
            out["service_type"] = kind
    return out


def _monitoring(source: str, node: yaml.Node) -> dict[str, Any] | None:
    value = _value(node)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _fail(source, node, "monitoring must be a mapping (its settings)")
    return value


def _target(source: str, node: yaml.Node) -> str:
    target = _string(source, node, "target")
    if target not in TARGETS:
        raise _fail(source, node, f"target {target!r} is unknown ({', '.join(TARGETS)})")
    return target


_PARSERS: Final[Mapping[str, Any]] = {
    "model": lambda s, n: _model_ref(s, n, "model"),
    "target": _target,
    "workers": lambda s, n: _integer(s, n, "workers", 1, 256),
    "replicas": lambda s, n: _integer(s, n, "replicas", 1, 1000),
    "host": lambda s, n: _string(s, n, "host"),
    "port": lambda s, n: _integer(s, n, "port", 0, 65535),
    "readiness_timeout": lambda s, n: _duration(s, n, "readiness_timeout"),
    "resources": _resources,
    "log": _log,
    "traffic": _traffic,
    "docker": _docker,
    "kubernetes": _kubernetes,
    "monitoring": _monitoring,
}


def _setting(source: str, name: str, node: yaml.Node) -> Any:
    """One overridable setting, validated."""
    return _PARSERS[name](source, node)


@dataclass(frozen=True, slots=True)
class DeploymentSpec:
    """A parsed spec: shared settings and each environment's overrides."""

    service: str
    settings: Mapping[str, Any]
    environments: Mapping[str, Mapping[str, Any]]
    text: str = ""
    source: str = "spec"
    lines: Mapping[str, int] = field(default_factory=dict)

    def overrides(self, env: str) -> frozenset[str]:
        """The keys ``env`` declares differently from the shared settings."""
        return frozenset(self._env(env))

    def _env(self, env: str) -> Mapping[str, Any]:
        if env not in self.environments:
            known = ", ".join(self.environments) or "none"
            raise InvalidArgumentError(
                f"{self.source}: environment {env!r} is not declared "
                f"(environments: {known}); add it under `environments:`"
            )
        return self.environments[env]

    def effective(self, env: str) -> dict[str, Any]:
        """The configuration ``env`` gets: defaults < shared settings < its overrides."""
        merged: dict[str, Any] = {k: _copy(v) for k, v in DEFAULTS.items()}
        merged.update({k: _copy(v) for k, v in self.settings.items()})
        merged.update({k: _copy(v) for k, v in self._env(env).items()})
        merged["service"] = self.service
        merged["env"] = env
        if "model" not in merged:
            raise InvalidArgumentError(
                f"{self.source}: environment {env!r} has no model (set `model:` at the top or "
                "in the environment)"
            )
        return dict(sorted(merged.items()))


def _copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_copy(v) for v in value]
    return value


def _environments(source: str, node: yaml.Node) -> dict[str, dict[str, Any]]:
    environments: dict[str, dict[str, Any]] = {}
    for env, key, value in _mapping(source, node, "environments"):
        if not _ENV.fullmatch(env):
            raise _fail(source, key, f"environment name {env!r} must be lowercase a-z, 0-9, '-'")
        overrides: dict[str, Any] = {}
        if not (isinstance(value, yaml.ScalarNode) and _value(value) is None):
            items = _mapping(source, value, f"environment {env}")
            _known(source, items, f"environment {env}", ENV_KEYS)
            for name, _, setting in items:
                overrides[name] = _setting(source, name, setting)
        environments[env] = overrides
    return environments


def parse_spec(text: str, *, source: str = "spec") -> DeploymentSpec:
    """Parse and validate a spec; SpecError naming the line when it is wrong."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise SpecError(f"{source}:{line}: not valid YAML: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise SpecError(f"{source}:1: not valid YAML: {exc}") from None
    if root is None:
        raise SpecError(f"{source}:1: the spec is empty")
    items = _mapping(source, root, "the spec")
    _known(source, items, "the spec", _TOP_KEYS)
    service: str | None = None
    settings: dict[str, Any] = {}
    environments: dict[str, dict[str, Any]] = {}
    lines: dict[str, int] = {}
    for name, key, value in items:
        lines[name] = key.start_mark.line + 1
        if name == "service":
            service = _string(source, value, "service")
            if not _SERVICE.fullmatch(service):
                raise _fail(
                    source,
                    value,
                    f"service {service!r} must be letters, digits, '_', '.' or '-' "
                    "(at most 63, starting with a letter or digit)",
                )
        elif name == "environments":
            environments = _environments(source, value)
        else:
            settings[name] = _setting(source, name, value)
    if service is None:
        raise _fail(source, root, "the spec needs `service: <name>`")
    if not environments:
        raise _fail(
            source, root, "the spec needs `environments:` (e.g. staging: {} and production: {})"
        )
    if "model" not in settings and any("model" not in e for e in environments.values()):
        raise _fail(source, root, "the spec needs `model: <model reference>`")
    return DeploymentSpec(service, settings, environments, text, source, lines)
