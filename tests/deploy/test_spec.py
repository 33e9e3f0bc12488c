"""Deployment specs: validation with the line of each error, and the same effective
configuration in every environment except what it overrides."""

from __future__ import annotations

import pytest

from syllabus.deploy.spec import ENV_KEYS, parse_spec
from syllabus.errors import InvalidArgumentError

FULL = """\
service: churn
model: churn@production
target: local
workers: 2
resources: {cpu: 500m, memory: 512Mi}
log: {enabled: true, flush_rows: 1000}
traffic:
  canary: {model: churn@staging, percent: 10}
monitoring:
  window: 1h
  alerts: [{metric: psi, above: 0.2}]
environments:
  staging:
    model: churn@staging
    traffic: {}
  production:
    workers: 4
    replicas: 3
"""


def test_parity_across_environments() -> None:
    spec = parse_spec(FULL, source="deploy.yaml")
    staging, production = spec.effective("staging"), spec.effective("production")
    assert spec.overrides("staging") == {"model", "traffic"}
    assert spec.overrides("production") == {"workers", "replicas"}
    differing = {k for k in staging if staging[k] != production[k]}
    assert differing == {"env"} | spec.overrides("staging") | spec.overrides("production")
    assert staging["traffic"] == {"canary": None, "shadow": None}
    assert production["traffic"]["canary"] == {"model": "churn@staging", "percent": 10.0}
    assert production["resources"] == {
        "requests": {"cpu": "500m", "memory": "512Mi"},
        "limits": {"cpu": "500m", "memory": "512Mi"},
    }
    assert production["monitoring"] == {"window": "1h", "alerts": [{"metric": "psi", "above": 0.2}]}
    # the same spec gives the same result every time, and results are independent copies
    assert parse_spec(FULL).effective("production") == production
    production["resources"]["limits"]["cpu"] = "9"
    assert spec.effective("production")["resources"]["limits"]["cpu"] == "500m"


def test_every_overridable_key_can_be_overridden() -> None:
    values = {
        "model": "churn@2", "target": "docker", "workers": 3, "replicas": 2,
        "host": "0.0.0.0", "port": 9000, "readiness_timeout": "2m",
        "resources": "{cpu: 1}", "log": "{enabled: false}",
        "traffic": "{shadow: {model: churn@3}}", "docker": "{image: churn}",
        "kubernetes": "{kind: kserve}", "monitoring": "{window: 1d}",
    }  # fmt: skip
    assert set(values) == set(ENV_KEYS)
    body = "\n".join(f"    {k}: {v}" for k, v in values.items())
    spec = parse_spec(f"service: s\nmodel: m@1\nenvironments:\n  a: {{}}\n  b:\n{body}\n")
    a, b = spec.effective("a"), spec.effective("b")
    assert {k for k in a if a[k] != b[k]} == {"env", *ENV_KEYS}
    assert b["readiness_timeout"] == 120.0
    assert b["traffic"]["shadow"] == {"model": "churn@3"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("service: churn\nmodel: churn@1\nwokers: 2\nenvironments: {a: {}}\n",
         "deploy.yaml:3: the spec: unknown key 'wokers'"),
        ("service: churn\nmodel: churn@1\nenvironments:\n  a:\n    workers: 0\n",
         "deploy.yaml:5: workers must be a whole number from 1 to 256, not 0"),
        ("service: churn\nmodel: 'churn@@1'\nenvironments: {a: {}}\n", "deploy.yaml:2: model:"),
        ("service: churn\nmodel: churn@1\ntarget: lambda\nenvironments: {a: {}}\n",
         "deploy.yaml:3: target 'lambda' is unknown (local, docker, kubernetes)"),
        ("service: churn\nmodel: churn@1\nenvironments: {a: {}}\n"
         "traffic:\n  canary: {model: c@1}\n",
         "deploy.yaml:5: traffic.canary needs model and percent"),
        ("service: churn\nmodel: churn@1\nenvironments: {a: {}}\n"
         "traffic: {canary: {model: c@1, percent: 140}}\n",
         "deploy.yaml:4: traffic.canary.percent must be a number from 0 to 100"),
        ("service: churn\nmodel: churn@1\nresources: {cpu: lots}\nenvironments: {a: {}}\n",
         "deploy.yaml:3: resources.cpu 'lots' is no CPU quantity"),
        ("service: churn\nmodel: churn@1\n", "deploy.yaml:1: the spec needs `environments:`"),
        ("model: churn@1\nenvironments: {a: {}}\n", "deploy.yaml:1: the spec needs `service:"),
        ("service: churn\nenvironments: {a: {}}\n", "needs `model: <model reference>`"),
        ("service: churn\nmodel: churn@1\nenvironments:\n  Prod: {}\n",
         "deploy.yaml:4: environment name 'Prod' must be lowercase"),
        ("service: churn\nmodel: churn@1\nmodel: churn@2\nenvironments: {a: {}}\n",
         "deploy.yaml:3: the spec: 'model' appears twice"),
        ("service: churn\n  model: [\n", "deploy.yaml:2: not valid YAML"),
        ("", "deploy.yaml:1: the spec is empty"),
        ("service: churn\nmodel: churn@1\nenvironments: {a: {}}\nkubernetes: {kind: knative}\n",
         "deploy.yaml:4: kubernetes.kind 'knative' is unknown (deployment, kserve)"),
        ("service: churn\nmodel: churn@1\nenvironments: {a: {}}\nmonitoring: [1]\n",
         "deploy.yaml:4: monitoring must be a mapping"),
    ],
)  # fmt: skip
def test_errors_name_the_line(text: str, message: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        parse_spec(text, source="deploy.yaml")
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_undeclared_environment() -> None:
    spec = parse_spec(FULL, source="deploy.yaml")
    with pytest.raises(
        InvalidArgumentError, match="'dev' is not declared \\(environments: staging"
    ):
        spec.effective("dev")
