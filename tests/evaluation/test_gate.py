"""The beats gate through the registry: passing, refusing, reusing, no champion."""

from __future__ import annotations

import pytest

from syllabus import Client, PromotionRefusedError
from syllabus.evaluation.gate import BeatsSettings, _judge
from syllabus.evaluation.models import Comparison
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


def _cmp(delta: float, p: float, se: float | None, *, higher: bool = True) -> Comparison:
    return Comparison("roc_auc", 0.8, 0.8 - delta, delta, delta - 0.01, delta + 0.01,
                      "delong", delta / se if se else 0.0, p, "x", higher, se)  # fmt: skip


def test_judge_is_one_sided_at_the_gate_confidence() -> None:
    s = BeatsSettings(metrics=("roc_auc",), confidence=0.95)
    # two-sided p = 0.08: not significant two-sided, but better one-sided at 5 %
    ok, text = _judge(_cmp(0.008, 0.08, 0.0046), "roc_auc", s)
    assert ok
    assert "one-sided delong p=0.04" in text
    assert not _judge(_cmp(0.008, 0.12, 0.0057), "roc_auc", s)[0]  # one-sided p 0.06
    assert not _judge(_cmp(-0.008, 0.08, 0.0046), "roc_auc", s)[0]  # the wrong direction
    ok, text = _judge(_cmp(-0.02, 0.001, 0.006), "roc_auc", s)
    assert not ok
    assert "worse" in text
    # a loss: lower is better
    assert _judge(_cmp(-0.01, 0.01, 0.004, higher=False), "log_loss", s)[0]
    assert not _judge(_cmp(0.01, 0.01, 0.004, higher=False), "log_loss", s)[0]


def test_judge_margin_uses_the_one_sided_bound() -> None:
    margin = BeatsSettings(metrics=("roc_auc",), confidence=0.95, min_delta=0.002)
    # improvement 0.01, se 0.004: bound 0.01 - 1.645 * 0.004 = 0.0034 >= 0.002
    assert _judge(_cmp(0.01, 0.0124, 0.004), "roc_auc", margin)[0]
    # se 0.005: bound 0.0018 < 0.002, although better than 0 one-sided
    ok, text = _judge(_cmp(0.01, 0.0455, 0.005), "roc_auc", margin)
    assert not ok
    assert "not surely >= 0.002" in text
    # a record without a standard error falls back to its interval's lower bound
    assert not _judge(_cmp(0.01, 0.0124, None), "roc_auc", margin)[0]  # low 0.0 < 0.002
    wide = BeatsSettings(metrics=("roc_auc",), confidence=0.95, min_delta=0.0001)
    assert not _judge(_cmp(0.01, 0.0124, None), "roc_auc", wide)[0]
    assert _judge(_cmp(0.02, 0.0001, None), "roc_auc", wide)[0]  # low 0.01
