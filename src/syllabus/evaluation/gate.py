"""The ``beats`` promotion gate: the registry's :class:`EvaluationGate`, supplied by this
component and wired in ``syllabus.client``.

::

    - beats:
        champion: production        # the stage or alias of the version to beat
        metric: roc_auc             # or a list: [roc_auc, log_loss]
        data: churn-holdout@latest  # evaluate on this dataset version (reused when stored)
        target: label               # its label column (needed to evaluate on demand)
        min_delta: 0.0              # better by at least this much (lower interval bound)
        confidence: 0.95
        require: better             # or not_worse: better or no significant difference

The gate looks for a stored evaluation of the candidate against the current champion on
the named dataset version (the newest one on any data when ``data`` is left out); when
there is none and the policy names the data and target, it runs one. It passes when every
named metric's verdict is what ``require`` asks. With no champion it passes, saying so.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from syllabus.errors import InvalidArgumentError, NotFoundError
from syllabus.evaluation.models import Comparison, Evaluation
from syllabus.registry.models import GateResult, ModelVersion

if TYPE_CHECKING:
    from syllabus.evaluation.service import EvaluationService

__all__ = ["BeatsGate", "BeatsSettings", "parse_beats"]

_KEYS: Final = ("champion", "metric", "data", "target", "min_delta", "confidence", "require")
_REQUIRE: Final = ("better", "not_worse")
_GATE: Final = "evaluation"


@dataclass(frozen=True, slots=True)
class BeatsSettings:
    """A ``beats`` gate's settings, checked."""

    champion: str = "production"
    metrics: tuple[str, ...] = ()
    data: str | None = None
    target: str | None = None
    min_delta: float = 0.0
    confidence: float = 0.95
    require: str = "better"


def parse_beats(params: Mapping[str, Any]) -> BeatsSettings:
    """The settings of a ``beats`` gate; InvalidArgumentError naming the wrong key."""
    unknown = [k for k in params if k not in _KEYS]
    if unknown:
        raise InvalidArgumentError(f"unknown key {unknown[0]!r} ({', '.join(_KEYS)})")
    metric = params.get("metric", ())
    metrics = (metric,) if isinstance(metric, str) else tuple(metric or ())
    if not all(isinstance(m, str) and m for m in metrics):
        raise InvalidArgumentError(f"metric must be a name or a list of names, not {metric!r}")
    try:
        min_delta = float(params.get("min_delta", 0.0))
        confidence = float(params.get("confidence", 0.95))
    except (TypeError, ValueError):
        raise InvalidArgumentError("min_delta and confidence must be numbers") from None
    if not 0.5 <= confidence < 1:
        raise InvalidArgumentError(f"confidence must be in [0.5, 1), not {confidence:g}")
    if min_delta < 0:
        raise InvalidArgumentError(f"min_delta must be at least 0, not {min_delta:g}")
    require = str(params.get("require", "better"))
    if require not in _REQUIRE:
        raise InvalidArgumentError(f"require must be better or not_worse, not {require!r}")
    for key in ("champion", "data", "target"):
        if key in params and not (isinstance(params[key], str) and params[key]):
            raise InvalidArgumentError(f"{key} must be a non-empty string")
    return BeatsSettings(
        champion=str(params.get("champion", "production")),
        metrics=metrics,
        data=params.get("data"),
        target=params.get("target"),
        min_delta=min_delta,
        confidence=confidence,
        require=require,
    )


def _oriented_low(c: Comparison) -> float | None:
    """The stored interval's bound on the improvement (delta for higher-is-better metrics)."""
    if c.higher_is_better:
        return c.low
    return None if c.high is None else -c.high


def _judge(c: Comparison | None, name: str, s: BeatsSettings) -> tuple[bool, str]:
    """Whether comparison ``c`` meets the gate, and the text saying why.

    ``require: better`` asks a one-directional question ("is the challenger better by at
    least ``min_delta``?"), so it is a one-sided test at the gate's confidence: the
    metric's own paired test, one-sided, must reject "not better" (p below
    ``1 - confidence``), and with a margin the one-sided lower confidence bound on the
    improvement, ``improvement - z * se``, must reach ``min_delta`` (for ROC AUC that is
    DeLong's test against the margin). ``require: not_worse`` fails only on a
    significant (two-sided) "worse" verdict."""
    from scipy.stats import norm

    from syllabus.evaluation.stats import one_sided_p, verdict

    if c is None or c.delta is None:
        return False, f"{name}: not compared"
    p_two = float("nan") if c.p_value is None else c.p_value
    text = f"{name} {c.delta:+.4g}"
    if c.low is not None and c.high is not None:
        text += f" [{c.low:+.4g}, {c.high:+.4g}]"
    v = verdict(c.delta, p_two, higher_is_better=c.higher_is_better, confidence=s.confidence)
    if s.require == "not_worse":
        text += f" {v}" + ("" if c.p_value is None else f" (p={c.p_value:.3g})")
        return v != "worse", text
    improvement = c.delta if c.higher_is_better else -c.delta
    p_one = one_sided_p(p_two, improvement)
    ok = improvement > 0 and p_one < 1 - s.confidence
    text += " better" if ok else f" {v}"
    if math.isfinite(p_one):
        text += f" (one-sided {c.test} p={p_one:.3g})"
    if ok and s.min_delta > 0:
        if c.se is not None and math.isfinite(c.se):
            bound: float | None = improvement - float(norm.ppf(s.confidence)) * c.se
        else:  # records made before the standard error was stored
            bound = _oriented_low(c)
        if bound is None or bound < s.min_delta:
            ok = False
            shown = "-" if bound is None else f"{bound:+.4g}"
            text += f", improvement not surely >= {s.min_delta:g} (bound {shown})"
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
        if s.min_delta:
            required += f" by >= {s.min_delta:g}"
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
