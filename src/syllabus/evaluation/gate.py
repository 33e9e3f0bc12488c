"""The ``beats`` promotion gate: the registry's :class:`EvaluationGate`, supplied by this
component and wired in ``syllabus.client``.

::

    - beats:
        champion: production        # the stage or alias of the version to beat
        metric: roc_auc             # or a list: [roc_auc, log_loss]
        data: churn-holdout@latest  # evaluate on this dataset version (reused when stored)
        target: label               # its label column (needed to evaluate on demand)
        min_delta: 0.0              # require better: by more than this (interval's lower bound)
        confidence: 0.95            # the two-sided interval; each test is one-sided at 2.5 %
        require: better             # or not_worse (non-inferiority), with margin: 0.005

``require: not_worse`` passes a candidate that is worse than the champion by less than
``margin`` (in the metric's units), surely: the lower bound of the improvement's
two-sided ``confidence`` interval must exceed ``-margin``.

The gate looks for a stored evaluation of the candidate against the current champion on
the named dataset version (the newest one on any data when ``data`` is left out); when
there is none and the policy names the data and target, it runs one. It passes when every
named metric's verdict is what ``require`` asks. With no champion it passes, saying so.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

from syllabus.errors import InvalidArgumentError, NotFoundError
from syllabus.evaluation.models import Comparison, Evaluation
from syllabus.registry.beats import BeatsSettings, parse_beats
from syllabus.registry.models import GateResult, ModelVersion

if TYPE_CHECKING:
    from syllabus.evaluation.service import EvaluationService

__all__ = ["BeatsGate", "BeatsSettings", "lower_bound", "parse_beats"]

_GATE: Final = "evaluation"


def _oriented(c: Comparison) -> tuple[float | None, float | None]:
    """The stored interval on the improvement (the delta, oriented so that positive means
    the candidate is better): ``(low, high)``."""
    if c.higher_is_better:
        return c.low, c.high
    return (None if c.high is None else -c.high), (None if c.low is None else -c.low)


def lower_bound(c: Comparison, confidence: float) -> float | None:
    """The lower bound of the two-sided ``confidence`` interval of the improvement:
    ``improvement - z((1 + confidence) / 2) * se`` with the comparison's standard error
    (DeLong's for ROC AUC, the paired bootstrap's otherwise); records stored without a
    standard error fall back to their stored (two-sided) interval."""
    from scipy.stats import norm

    if c.delta is None:
        return None
    improvement = c.delta if c.higher_is_better else -c.delta
    if c.se is not None and math.isfinite(c.se):
        return improvement - float(norm.ppf((1 + confidence) / 2)) * c.se
    return _oriented(c)[0]


def _judge(c: Comparison | None, name: str, s: BeatsSettings) -> tuple[bool, str]:
    """Whether comparison ``c`` meets the gate, and the text saying why.

    Both requirements are one-sided tests at level ``(1 - confidence) / 2`` (2.5 % at
    0.95): the two-sided ``confidence`` interval of the improvement must lie above the
    bar. ``require: better``: the metric's own paired test must call the candidate
    better at ``confidence`` (two-sided p below ``1 - confidence``, in the candidate's
    favour) and, with ``min_delta``, the interval's lower bound must exceed it (for ROC
    AUC: DeLong's test against the margin). ``require: not_worse`` (non-inferiority):
    the lower bound must exceed ``-margin``: the candidate is worse by less than the
    margin, surely."""
    from syllabus.evaluation.stats import one_sided_p, verdict

    if c is None or c.delta is None:
        return False, f"{name}: not compared"
    text = f"{name} {c.delta:+.4g}"
    bound = lower_bound(c, s.confidence)
    shown = "-" if bound is None else f"{bound:+.4g}"
    if s.require == "not_worse":
        ok = bound is not None and bound > -s.margin
        relation = "not worse" if ok else "not surely within the margin"
        return ok, f"{text} {relation}: improvement's lower bound {shown} vs -{s.margin:g}"
    p_two = float("nan") if c.p_value is None else c.p_value
    if c.low is not None and c.high is not None:
        text += f" [{c.low:+.4g}, {c.high:+.4g}]"
    v = verdict(c.delta, p_two, higher_is_better=c.higher_is_better, confidence=s.confidence)
    improvement = c.delta if c.higher_is_better else -c.delta
    p_one = one_sided_p(p_two, improvement)
    ok = v == "better"
    text += f" {v}"
    if math.isfinite(p_one):
        text += f" ({c.test} one-sided p={p_one:.3g}, needs < {(1 - s.confidence) / 2:.3g})"
    if ok and s.min_delta > 0 and (bound is None or bound <= s.min_delta):
        ok = False
        text += f", improvement not surely > {s.min_delta:g} (lower bound {shown})"
    return ok, text


class BeatsGate:
    """:class:`~syllabus.registry.gates.EvaluationGate` over an evaluation service (made
    on first use: most promotions never reach this gate)."""

    def __init__(self, service: Callable[[], EvaluationService]) -> None:
        self._factory = service
        self._service: EvaluationService | None = None

    @property
    def service(self) -> EvaluationService:
        if self._service is None:
            self._service = self._factory()
        return self._service

    def check(self, version: ModelVersion, params: Mapping[str, Any]) -> GateResult:
        try:
            s = parse_beats(params)
        except InvalidArgumentError as exc:
            return GateResult(_GATE, False, "invalid settings", "valid beats settings", str(exc))
        required = f"{s.require.replace('_', ' ')} than the {s.champion} version"
        champion_ref = s.champion if "@" in s.champion else f"{version.name}@{s.champion}"
        try:
            champion = self.service.models.get_version(champion_ref)
        except NotFoundError:
            return GateResult(
                _GATE, True, "no champion", required, f"{champion_ref} does not exist"
            )
        if champion.id == version.id:
            return GateResult(_GATE, True, "is the champion", required, f"{champion.ref}")
        required = f"{s.require.replace('_', ' ')} than {champion.ref} ({s.champion})"
        try:
            found = self._evaluation(version, champion, s)
        except (InvalidArgumentError, NotFoundError) as exc:
            return GateResult(_GATE, False, "not evaluated", required, str(exc))
        if isinstance(found, str):
            return GateResult(_GATE, False, "not evaluated", required, found)
        metrics = s.metrics or (_default_metric(found),)
        judged = [_judge(found.comparison(m), m, s) for m in metrics]
        passed = all(ok for ok, _ in judged)
        measured = "; ".join(text for _, text in judged)
        detail = f"evaluation {found.id} on {found.dataset_ref}"
        if s.require == "not_worse":
            required += f" by {s.margin:g} or more"
        elif s.min_delta:
            required += f" by > {s.min_delta:g}"
        return GateResult(_GATE, passed, measured, f"{required} at {s.confidence:.0%}", detail)

    def _evaluation(
        self, version: ModelVersion, champion: ModelVersion, s: BeatsSettings
    ) -> Evaluation | str:
        service = self.service
        dataset_id = None
        if s.data is not None:
            dataset_id = service.data.resolve_data(s.data).id
        found = service.store.find(version.id, champion.id, dataset_id, s.target)
        if found is not None:
            return found
        if s.data is None or s.target is None:
            return (
                f"no stored evaluation of {version.ref} against {champion.ref}"
                + ("" if s.data is None else f" on {s.data}")
                + f"; run `syllabus evaluate {version.ref} --data DATASET --target COLUMN "
                f"--against {champion.ref}` (or name data and target in the policy)"
            )
        return service.evaluate(
            version.ref,
            s.data,
            s.target,
            against=champion.ref,
            confidence=s.confidence,
        )


def _default_metric(evaluation: Evaluation) -> str:
    if evaluation.task == "regression":
        return "rmse"
    return "roc_auc" if evaluation.comparison("roc_auc") else "accuracy"
