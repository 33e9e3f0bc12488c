"""Gates: the criteria a version must meet to enter a stage, as declared in its policy.

Each gate returns a :class:`~syllabus.registry.models.GateResult` with what was measured
and what was required, passed or not. The evaluation gate (``beats``) is supplied by a
higher layer through the :class:`EvaluationGate` Protocol (wired in ``syllabus.client``);
without one it fails saying so.
"""

from __future__ import annotations

import operator
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

import numpy as np

from syllabus.errors import SyllabusError
from syllabus.refs import Stage
from syllabus.registry.models import Approval, GateResult, ModelVersion
from syllabus.registry.packaging.model import LoadedModel
from syllabus.registry.policy import GateSpec

__all__ = ["EvaluationGate", "GateContext", "check_gates"]

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": operator.eq,
    "!=": operator.ne,
}


class EvaluationGate(Protocol):
    """The ``beats`` gate: the evaluation component (issue 7) implements it."""

    def check(self, version: ModelVersion, params: Mapping[str, Any]) -> GateResult: ...


@dataclass
class GateContext:
    """What gates may look at. Loaders are called lazily, once."""

    version: ModelVersion
    to: Stage
    run_metrics: Callable[[], Mapping[str, float] | None]
    run_artifacts: Callable[[], set[str]]
    model_files: Callable[[], set[str]]
    loader: Callable[[], LoadedModel]
    approvals: Sequence[Approval] = ()
    evaluation: EvaluationGate | None = None
    _cache: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def model(self) -> LoadedModel:
        return self.loader()


def _metric(spec: GateSpec, ctx: GateContext) -> GateResult:
    key, op, value = spec.params["key"], spec.params["op"], float(spec.params["value"])
    required = f"{op} {value:g}"
    metrics = ctx.run_metrics()
    if metrics is None:
        return GateResult(f"metric {key}", False, "no source run", required)
    if key not in metrics:
        return GateResult(
            f"metric {key}", False, "not logged", required, "the source run has no such metric"
        )
    measured = float(metrics[key])
    return GateResult(f"metric {key}", _OPS[op](measured, value), f"{measured:g}", required)


def _signature(spec: GateSpec, ctx: GateContext) -> GateResult:
    has = ctx.version.signature is not None
    return GateResult("signature", has, "present" if has else "missing", "present")


def _artifacts(spec: GateSpec, ctx: GateContext) -> GateResult:
    missing = []
    for path in spec.params["paths"]:
        if path.startswith("run:"):
            if path[4:].strip("/") not in ctx.run_artifacts():
                missing.append(path)
        elif path.strip("/") not in ctx.model_files():
            missing.append(path)
    measured = "all present" if not missing else f"missing {', '.join(missing)}"
    return GateResult("artifacts", not missing, measured, ", ".join(spec.params["paths"]))


def _example(ctx: GateContext) -> Any:
    example = ctx.model.input_example
    if example is None:
        raise _GateError("no input example (log the model with input_example=...)")
    return example


class _GateError(Exception):
    pass


def _smoke_test(spec: GateSpec, ctx: GateContext) -> GateResult:
    try:
        output = ctx.model.predict(_example(ctx))
    except (_GateError, SyllabusError) as exc:
        return GateResult(
            "smoke test", False, "failed", "load and predict the input example", str(exc)
        )
    except Exception as exc:  # noqa: BLE001 - any failure of the user's model fails the gate
        return GateResult(
            "smoke test",
            False,
            "failed",
            "load and predict the input example",
            f"{type(exc).__name__}: {exc}",
        )
    rows = len(output) if hasattr(output, "__len__") else 1
    return GateResult(
        "smoke test", True, f"{rows} prediction(s)", "load and predict the input example"
    )


def _latency(spec: GateSpec, ctx: GateContext) -> GateResult:
    budget, pct, runs = (
        float(spec.params["max_ms"]),
        float(spec.params["percentile"]),
        int(spec.params["runs"]),
    )
    required = f"p{pct:g} <= {budget:g} ms"
    try:
        example = _example(ctx)
        ctx.model.predict(example)  # warm up
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            ctx.model.predict(example)
            times.append((time.perf_counter() - start) * 1000)
    except Exception as exc:  # noqa: BLE001 - a model that cannot predict fails the gate
        return GateResult("latency", False, "failed", required, str(exc))
    measured = float(np.percentile(times, pct))
    return GateResult("latency", measured <= budget, f"{measured:.2f} ms", required, f"{runs} runs")


def _approvals(spec: GateSpec, ctx: GateContext) -> GateResult:
    role = spec.params.get("role")
    count = int(spec.params["count"])
    approvers = {
        a.actor
        for a in ctx.approvals
        if a.decision == "approve" and (role is None or a.role == role)
    }
    required = f"{count}" + (f" by role {role}" if role else "")
    return GateResult("approvals", len(approvers) >= count, str(len(approvers)), required)


def _beats(spec: GateSpec, ctx: GateContext) -> GateResult:
    if ctx.evaluation is None:
        return GateResult(
            "evaluation",
            False,
            "not run",
            "beats the champion",
            "no evaluation component is installed to run this gate",
        )
    return ctx.evaluation.check(ctx.version, spec.params)


_GATES: dict[str, Callable[[GateSpec, GateContext], GateResult]] = {
    "metric": _metric,
    "signature": _signature,
    "artifacts": _artifacts,
    "smoke_test": _smoke_test,
    "latency": _latency,
    "approvals": _approvals,
    "beats": _beats,
}


def check_gates(specs: Sequence[GateSpec], ctx: GateContext) -> list[GateResult]:
    """Every gate's result, in the policy's order (all are checked, none short-circuits)."""
    return [_GATES[spec.kind](spec, ctx) for spec in specs]
