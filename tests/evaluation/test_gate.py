"""The beats gate through the registry: passing, refusing, reusing, no champion."""

from __future__ import annotations

import pytest

from syllabus import Client, PromotionRefusedError
from syllabus.refs import Stage

POLICY = """\
policy: churn
stages:
  production:
    gates:
      - beats: {champion: production, metric: [roc_auc, accuracy], data: holdout@latest,
                target: label, confidence: 0.95}
"""


def test_better_challenger_is_promoted_and_audit_links_the_evaluation(prepared: Client) -> None:
    prepared.apply_policy(POLICY)
    result = prepared.transition_stage("churn@2", "production")
    assert result.version.stage is Stage.PRODUCTION
    (gate,) = [g for g in result.gates if g.gate == "evaluation"]
    assert gate.passed
    assert "roc_auc" in gate.measured
    assert "better" in gate.measured
    (evaluation,) = prepared.list_evaluations("churn@2")
    assert evaluation.id in gate.detail
    event = prepared.model_history("churn")[-1]
    assert any(evaluation.id in str(g) for g in event.details["gates"])


def test_identical_challenger_is_refused(prepared: Client) -> None:
    prepared.apply_policy(POLICY)
    with pytest.raises(PromotionRefusedError, match="no significant difference"):
        prepared.transition_stage("churn@3", "production")
    # the stored evaluation is reused: a second attempt runs no new one
    with pytest.raises(PromotionRefusedError):
        prepared.transition_stage("churn@3", "production")
    assert len(prepared.list_evaluations("churn@3")) == 1
    # non-inferiority passes it
    prepared.apply_policy(POLICY.replace("confidence: 0.95", "require: not_worse"))
    assert prepared.transition_stage("churn@3", "production").version.stage is Stage.PRODUCTION


def test_worse_challenger_is_refused_with_a_stored_evaluation(prepared: Client) -> None:
    prepared.transition_stage("churn@2", "production")  # no policy yet: v2 is the champion
    prepared.apply_policy("policy: churn\nstages:\n  production:\n    gates:\n"
                          "      - beats: {metric: roc_auc}\n")  # fmt: skip
    with pytest.raises(PromotionRefusedError, match="no stored evaluation of churn@1"):
        prepared.transition_stage("churn@1", "production")
    prepared.evaluate("churn@1", "holdout@1", "label", against="churn@production", resamples=200)
    with pytest.raises(PromotionRefusedError, match="worse"):
        prepared.transition_stage("churn@1", "production")


def test_no_champion_passes_and_bad_settings_fail(prepared: Client) -> None:
    prepared.apply_policy(POLICY.replace("champion: production", "champion: champion"))
    result = prepared.transition_stage("churn@2", "production")
    (gate,) = [g for g in result.gates if g.gate == "evaluation"]
    assert gate.passed
    assert gate.measured == "no champion"
    prepared.apply_policy(POLICY.replace("confidence: 0.95", "confidense: 0.9"))
    with pytest.raises(PromotionRefusedError, match="unknown key 'confidense'"):
        prepared.transition_stage("churn@3", "production")
