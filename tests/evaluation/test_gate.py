"""The beats gate through the registry: passing, refusing, reusing, no champion."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

from syllabus import Client, PromotionRefusedError
from syllabus.errors import InvalidArgumentError
from syllabus.evaluation.gate import BeatsSettings, _judge, lower_bound, parse_beats
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
    # non-inferiority within a margin passes it
    prepared.apply_policy(POLICY.replace("confidence: 0.95", "require: not_worse, margin: 0.01"))
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
    # a wrong setting is refused when the policy is applied, with its line; nothing changes
    with pytest.raises(InvalidArgumentError, match=r":\d+: beats gate: unknown key 'confidense'"):
        prepared.apply_policy(POLICY.replace("confidence: 0.95", "confidense: 0.9"))
    result = prepared.transition_stage("churn@3", "production")
    assert [g.measured for g in result.gates if g.gate == "evaluation"] == ["no champion"]


def _cmp(delta: float, se: float | None, *, higher: bool = True) -> Comparison:
    """A DeLong-like comparison: two-sided p from z = delta / se; the stored interval is
    delta +- 0.01 (used only without a standard error)."""
    z = delta / se if se else (0.0 if delta == 0 else math.inf)
    p = float(2 * norm.sf(abs(z)))
    return Comparison("roc_auc", 0.8, 0.8 - delta, delta, delta - 0.01, delta + 0.01,
                      "delong", z, p, "x", higher, se)  # fmt: skip


def test_better_means_the_two_sided_interval_lies_above_zero() -> None:
    s = BeatsSettings(metrics=("roc_auc",), confidence=0.95)
    # z = 1.74 (two-sided p 0.082, one-sided 0.041): not enough at 95 %
    ok, text = _judge(_cmp(0.008, 0.0046), "roc_auc", s)
    assert not ok
    assert "no significant difference" in text
    # z = 2.0: one-sided p 0.0228 < 0.025
    ok, text = _judge(_cmp(0.01, 0.005), "roc_auc", s)
    assert ok
    assert "one-sided p=0.0228, needs < 0.025" in text
    assert not _judge(_cmp(0.0097, 0.005), "roc_auc", s)[0]  # z = 1.94
    assert not _judge(_cmp(-0.01, 0.005), "roc_auc", s)[0]  # the wrong direction
    ok, text = _judge(_cmp(-0.02, 0.006), "roc_auc", s)
    assert not ok
    assert "worse" in text
    # a loss: lower is better
    assert _judge(_cmp(-0.01, 0.004, higher=False), "log_loss", s)[0]
    assert not _judge(_cmp(0.01, 0.004, higher=False), "log_loss", s)[0]
    # at 0.90 the bar is z = 1.645
    assert _judge(_cmp(0.008, 0.0046), "roc_auc", BeatsSettings(confidence=0.90))[0]


def test_min_delta_needs_the_lower_bound_above_it() -> None:
    margin = BeatsSettings(metrics=("roc_auc",), confidence=0.95, min_delta=0.002)
    # improvement 0.01, se 0.004: bound 0.01 - 1.96 * 0.004 = 0.00216 > 0.002
    assert lower_bound(_cmp(0.01, 0.004), 0.95) == pytest.approx(0.01 - 1.959964 * 0.004)
    assert _judge(_cmp(0.01, 0.004), "roc_auc", margin)[0]
    # se 0.0042: bound 0.00177 < 0.002, although significantly better than 0
    ok, text = _judge(_cmp(0.01, 0.0042), "roc_auc", margin)
    assert not ok
    assert "not surely > 0.002 (lower bound +0.001768)" in text
    # a record without a standard error falls back to its interval's lower bound
    assert not _judge(_cmp(0.01, None), "roc_auc", margin)[0]  # low 0.0
    assert _judge(_cmp(0.02, None), "roc_auc", margin)[0]  # low 0.01


def test_not_worse_is_one_sided_against_the_margin() -> None:
    s = BeatsSettings(metrics=("roc_auc",), confidence=0.95, require="not_worse", margin=0.01)
    # -0.002 - 1.96 * 0.003 = -0.0079 > -0.01: worse by less than the margin, surely
    ok, text = _judge(_cmp(-0.002, 0.003), "roc_auc", s)
    assert ok
    assert "not worse" in text
    assert not _judge(_cmp(-0.002, 0.005), "roc_auc", s)[0]  # bound -0.0118
    assert _judge(_cmp(0.0, 0.0), "roc_auc", s)[0]  # identical predictions
    assert _judge(_cmp(0.03, 0.001), "roc_auc", s)[0]  # better is not worse
    # a loss: a higher value is worse
    assert _judge(_cmp(0.002, 0.003, higher=False), "log_loss", s)[0]
    assert not _judge(_cmp(0.005, 0.003, higher=False), "log_loss", s)[0]  # -0.0109
    # the confidence sets the bound: -0.0015 - z * 0.005
    assert not _judge(_cmp(-0.0015, 0.005), "roc_auc", s)[0]  # 95 %: -0.0113
    lax = BeatsSettings(confidence=0.90, require="not_worse", margin=0.01)
    assert _judge(_cmp(-0.0015, 0.005), "roc_auc", lax)[0]  # 90 %: -0.0097
    # without a standard error: the stored interval's lower bound (delta - 0.01)
    assert _judge(_cmp(0.001, None), "roc_auc", s)[0]
    assert not _judge(_cmp(-0.001, None), "roc_auc", s)[0]


@pytest.mark.parametrize("require", ["better", "not_worse"])
def test_false_pass_rate_at_the_null_boundary_is_two_and_a_half_percent(require: str) -> None:
    """Estimates drawn at the null's boundary (true improvement 0 for better, -margin for
    not_worse), normal with the standard error the test uses: 2.5 % pass at 0.95."""
    s = BeatsSettings(confidence=0.95, require=require, margin=0.01 if require != "better" else 0)
    truth = 0.0 if require == "better" else -0.01
    rng = np.random.default_rng(3)
    draws = truth + 0.004 * rng.normal(size=4000)
    rate = np.mean([_judge(_cmp(float(d), 0.004), "roc_auc", s)[0] for d in draws])
    assert 0.015 < rate < 0.036


def test_settings_name_the_wrong_combination() -> None:
    assert parse_beats({"require": "not_worse", "margin": 0.005}).margin == 0.005
    with pytest.raises(InvalidArgumentError, match="not_worse needs margin > 0"):
        parse_beats({"require": "not_worse"})
    with pytest.raises(InvalidArgumentError, match="min_delta is for require: better"):
        parse_beats({"require": "not_worse", "margin": 0.01, "min_delta": 0.01})
    with pytest.raises(InvalidArgumentError, match="margin is for require: not_worse"):
        parse_beats({"margin": 0.01})
    with pytest.raises(InvalidArgumentError, match="min_delta must be at least 0"):
        parse_beats({"min_delta": -0.1})
