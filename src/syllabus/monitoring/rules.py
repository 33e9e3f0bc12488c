"""The alert rule language.

A rule is ``METRIC[(FEATURE)] OP VALUE[UNIT] [for N windows]``:

- ``psi(age) > 0.2 for 2 windows`` — a feature's statistic: ``psi``, ``ks``, ``ks_p``,
  ``wasserstein``, ``js``, ``chi2_p``, ``drift`` (1 when flagged), ``null_rate``,
  ``out_of_range``, ``type_errors``, ``mean``;
- ``drift_share > 0.3``, ``rows < 100``, ``latency_p50|p95|p99|mean > 200ms`` — the window's;
- ``accuracy < 0.85`` — a performance metric of the window, once feedback has arrived
  (``accuracy``, ``precision``, ``recall``, ``f1``, ``f1_macro``, ``f1_weighted``,
  ``precision_macro``, ``recall_macro``, ``rmse``, ``mae``, ``r2``, ``mape``, ``labelled``).

``OP`` is one of ``> >= < <= == !=``. Units: ``ms`` and ``s`` (latencies, in ms), ``%``
(rates). ``for N windows`` fires only when the condition holds in each of the last N
closed windows (default 1). A rule whose metric has no value in a window (no feedback yet,
a feature below the minimum rows) does not hold there.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from syllabus.errors import InvalidArgumentError

__all__ = ["DATASET_METRICS", "FEATURE_METRICS", "PERFORMANCE_METRICS", "Rule", "parse_rule"]

FEATURE_METRICS: Final = (
    "psi", "ks", "ks_p", "wasserstein", "js", "chi2_p", "drift", "null_rate",
    "out_of_range", "type_errors", "mean",
)  # fmt: skip
DATASET_METRICS: Final = (
    "drift_share", "rows", "latency_p50", "latency_p95", "latency_p99", "latency_mean",
)  # fmt: skip
PERFORMANCE_METRICS: Final = (
    "accuracy", "precision", "recall", "f1", "f1_macro", "f1_weighted", "precision_macro",
    "recall_macro", "roc_auc", "log_loss", "rmse", "mae", "r2", "mape", "labelled",
)  # fmt: skip
_OPS: Final[dict[str, Callable[[float, float], bool]]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le,
    "==": operator.eq, "!=": operator.ne,
}  # fmt: skip
_RULE = re.compile(
    r"""^\s*(?P<metric>[A-Za-z_][A-Za-z0-9_]*)
        \s*(?:\(\s*(?P<feature>[^()]+?)\s*\))?
        \s*(?P<op>>=|<=|==|!=|>|<)
        \s*(?P<value>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
        \s*(?P<unit>ms|s|%)?
        (?:\s+for\s+(?P<n>\d+)\s+windows?)?\s*$""",
    re.VERBOSE,
)


@dataclass(frozen=True, slots=True)
class Rule:
    """A parsed rule; ``text`` is its canonical form."""

    metric: str
    op: str
    value: float
    feature: str | None = None
    windows: int = 1

    @property
    def text(self) -> str:
        target = f"{self.metric}({self.feature})" if self.feature else self.metric
        unit = "ms" if self.metric.startswith("latency_") else ""
        value = f"{self.value:g}{unit}"
        tail = "" if self.windows == 1 else f" for {self.windows} windows"
        return f"{target} {self.op} {value}{tail}"

    def value_in(self, summary: Mapping[str, Any]) -> float | None:
        """This rule's metric in a window summary (None where it has no value)."""
        if self.feature is not None:
            feature = summary.get("features", {}).get(self.feature)
            if feature is None:
                return None
            if self.metric == "drift":
                flag = feature.get("drifted")
                return None if flag is None else float(flag)
            for holder in (feature, feature.get("stats", {})):
                v = holder.get(self.metric)
                if v is not None:
                    return float(v)
            return None
        if self.metric in PERFORMANCE_METRICS:
            v = summary.get("performance", {}).get(self.metric)
        else:
            v = summary.get(self.metric)
        return None if v is None else float(v)

    def holds(self, value: float | None) -> bool:
        return value is not None and math.isfinite(value) and _OPS[self.op](value, self.value)


def _fail(text: str, why: str) -> InvalidArgumentError:
    return InvalidArgumentError(f"alert rule {text!r}: {why}")


def parse_rule(text: str) -> Rule:
    """Parse ``text``; an InvalidArgumentError names what is wrong."""
    if not text or not text.strip():
        raise _fail(text, "empty rule; e.g. 'psi(age) > 0.2 for 2 windows'")
    m = _RULE.match(text)
    if m is None:
        if not re.search(r">=|<=|==|!=|>|<", text):
            raise _fail(text, "no comparison; write METRIC OP VALUE, e.g. 'drift_share > 0.3'")
        if re.search(r"\bfor\b", text) and not re.search(r"for\s+\d+\s+windows?\s*$", text):
            raise _fail(text, "write the duration as 'for N windows'")
        raise _fail(
            text,
            "expected METRIC[(FEATURE)] OP NUMBER[ms|s|%] [for N windows], "
            "e.g. 'psi(age) > 0.2 for 2 windows'",
        )
    metric, feature = m["metric"].lower(), m["feature"]
    value = float(m["value"])
    unit = m["unit"]
    known = (*FEATURE_METRICS, *DATASET_METRICS, *PERFORMANCE_METRICS)
    if metric not in known:
        raise _fail(text, f"unknown metric {metric!r}; known: {', '.join(known)}")
    if feature is not None and metric not in FEATURE_METRICS:
        raise _fail(text, f"{metric} is not a per-feature metric; write it without (...)")
    if feature is None and metric in FEATURE_METRICS:
        raise _fail(text, f"{metric} needs a feature, e.g. {metric}(age)")
    if unit in ("ms", "s"):
        if not metric.startswith("latency_"):
            raise _fail(text, f"unit {unit} applies to latency metrics only")
        value = value * 1000 if unit == "s" else value
    elif unit == "%":
        value = value / 100
    windows = int(m["n"]) if m["n"] else 1
    if windows < 1 or windows > 1000:
        raise _fail(text, "the number of windows must be between 1 and 1000")
    return Rule(metric, m["op"], value, feature, windows)
