"""Policy files: valid ones parse; every error names its line."""

from __future__ import annotations

import pytest

from syllabus.errors import InvalidArgumentError
from syllabus.refs import Stage
from syllabus.registry.policy import parse_policy

GOOD = """\
policy: churn
stages:
  staging:
    from: [testing, development]
    gates:
      - metric: val_auc >= 0.80
      - latency: {max_ms: 50}
      - approvals: 2
  production:
    allow_multiple: true
retention:
  archived: 30d
"""


def test_valid_policy() -> None:
    policy = parse_policy(GOOD, source="p.yaml")
    rule = policy.rule(Stage.STAGING)
    assert rule.sources == (Stage.TESTING, Stage.DEVELOPMENT)
    assert [g.describe() for g in rule.gates] == [
        "metric val_auc >= 0.8",
        "latency p95 <= 50 ms",
        "2 approval(s)",
    ]
    assert [g.line for g in rule.gates] == [6, 7, 8]
    assert policy.rule(Stage.PRODUCTION).allow_multiple
    assert policy.archived_retention == 30 * 86400
    assert policy.rule(Stage.TESTING).gates == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "policy: churn\nstages:\n  staging:\n    gates:\n      - metrc: a > 1\n",
            r"p.yaml:5: unknown gate 'metrc'",
        ),
        ("policy: churn\nstages:\n  stagin: {}\n", r"p.yaml:3: unknown stage 'stagin'"),
        (
            "policy: churn\nstages:\n  staging:\n    gates:\n      - metric: auc about 0.8\n",
            r"p.yaml:5: metric gate 'auc about 0.8'",
        ),
        (
            "policy: churn\nstages:\n  staging:\n    from: [prod]\n",
            r"p.yaml:4: unknown stage 'prod'",
        ),
        (
            "policy: churn\nstages:\n  staging:\n    gates:\n      - latency: {max_ms: -1}\n",
            r"p.yaml:5: max_ms must be a number",
        ),
        (
            "policy: churn\nstages:\n  staging:\n    gates:\n      - latency: {p: 1}\n",
            r"p.yaml:5: latency gate: unknown key 'p'",
        ),
        (
            "policy: churn\nstages:\n  staging:\n    allow_multiple: true\n",
            r"p.yaml:4: allow_multiple applies to production only",
        ),
        (
            "policy: churn\nretention:\n  archived: soon\n",
            r"p.yaml:3: retention 'soon' is no duration",
        ),
        ("policy: churn\nstages: [\n", r"p.yaml:3: not valid YAML"),
        ("stages: {}\n", r"p.yaml:1: the policy needs `policy:"),
        ("policy: churn\nsurprise: 1\n", r"p.yaml:2: unknown key 'surprise'"),
        ("policy: ../etc\n", r"p.yaml:1: policy must be a model name"),
        ("", r"p.yaml:1: the policy is empty"),
        (
            "policy: churn\nstages:\n  staging:\n    gates:\n      - approvals: {count: 0}\n",
            r"p.yaml:5: count must be",
        ),
        (
            "policy: churn\nstages:\n  production:\n    gates:\n      - beats: {metrc: auc}\n",
            r"p.yaml:5: beats gate: unknown key 'metrc'",
        ),
        (
            "policy: churn\nstages:\n  production:\n    gates:\n"
            "      - beats: {metric: roc_auc, require: not_worse}\n",
            r"p.yaml:5: beats gate: require: not_worse needs margin > 0",
        ),
        (
            "policy: churn\nstages:\n  production:\n    gates:\n"
            "      - beats: {metric: roc_auc, confidence: 1.5}\n",
            r"p.yaml:5: beats gate: confidence must be in \[0.5, 1\)",
        ),
    ],
)
def test_errors_name_the_line(text: str, message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        parse_policy(text, source="p.yaml")
