"""The settings of the ``beats`` promotion gate, checked where a policy is read (so a
policy with a wrong setting is refused when it is applied, with its line) and again where
the evaluation component judges the gate (:mod:`syllabus.evaluation.gate`)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from syllabus.errors import InvalidArgumentError

__all__ = ["BeatsSettings", "parse_beats"]

_KEYS: Final = (
    "champion",
    "metric",
    "data",
    "target",
    "min_delta",
    "margin",
    "confidence",
    "require",
)
_REQUIRE: Final = ("better", "not_worse")


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
    margin: float = 0.0


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
        margin = float(params.get("margin", 0.0))
        confidence = float(params.get("confidence", 0.95))
    except (TypeError, ValueError):
        raise InvalidArgumentError("min_delta, margin and confidence must be numbers") from None
    if not 0.5 <= confidence < 1:
        raise InvalidArgumentError(f"confidence must be in [0.5, 1), not {confidence:g}")
    if not (math.isfinite(min_delta) and min_delta >= 0):
        raise InvalidArgumentError(f"min_delta must be at least 0, not {min_delta:g}")
    require = str(params.get("require", "better"))
    if require not in _REQUIRE:
        raise InvalidArgumentError(f"require must be better or not_worse, not {require!r}")
    if require == "not_worse":
        if "min_delta" in params:
            raise InvalidArgumentError(
                "min_delta is for require: better; require: not_worse takes margin "
                "(the largest loss to accept)"
            )
        if not (math.isfinite(margin) and margin > 0):
            raise InvalidArgumentError(
                "require: not_worse needs margin > 0, the largest loss to accept in the "
                "metric's units (e.g. margin: 0.005 for roc_auc)"
            )
    elif "margin" in params:
        raise InvalidArgumentError(
            "margin is for require: not_worse; require: better takes min_delta"
        )
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
        margin=margin,
    )
