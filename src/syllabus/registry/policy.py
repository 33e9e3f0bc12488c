"""Promotion policies: YAML, per model (or ``default``), versioned when applied.

::

    policy: churn                 # the model it governs, or "default" for every other
    stages:
      testing:
        from: [development]       # stages a version may come from (default: any)
      staging:
        from: [testing]
        gates:
          - metric: val_auc >= 0.80          # on the version's source run
          - signature: required
          - artifacts: [requirements.txt, "run:reports/eval.html"]
          - smoke_test: true                 # load it and predict the input example
          - latency: {max_ms: 50, percentile: 95, runs: 20}
      production:
        from: [staging]
        allow_multiple: false     # promoting archives the previous production version
        gates:
          - approvals: {count: 2, role: ml-lead}
          - beats: {champion: production, metric: roc_auc}   # the evaluation gate
    retention:
      archived: 30d               # archived versions may be retired after this

Every error names the line it is about (``policy.yaml:12: unknown gate 'metrc'``).
Without any policy the built-in default applies: every move is allowed, no gates, one
production version at a time, no retention period.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import yaml

from syllabus._utils.yamlnodes import mapping_items, node_line, node_value
from syllabus.config import parse_duration
from syllabus.errors import ConfigError, InvalidArgumentError
from syllabus.refs import STAGES, Stage, validate_name
from syllabus.registry.beats import parse_beats

__all__ = [
    "DEFAULT_POLICY",
    "GATE_KINDS",
    "GateSpec",
    "Policy",
    "PolicyError",
    "StageRule",
    "parse_policy",
]

GATE_KINDS: Final = (
    "metric",
    "signature",
    "artifacts",
    "smoke_test",
    "latency",
    "approvals",
    "beats",
)
_METRIC = re.compile(r"^\s*([A-Za-z0-9_./:-]+)\s*(>=|<=|==|!=|>|<)\s*(-?[0-9.eE+-]+)\s*$")


PolicyError = InvalidArgumentError
"""What a malformed policy raises; the message names the line."""


@dataclass(frozen=True, slots=True)
class GateSpec:
    """One declared gate: its kind, its parameters and the line it was declared on."""

    kind: str
    params: Mapping[str, Any]
    line: int = 0

    def describe(self) -> str:
        p = self.params
        if self.kind == "metric":
            return f"metric {p['key']} {p['op']} {p['value']:g}"
        if self.kind == "artifacts":
            return f"artifacts {', '.join(p['paths'])}"
        if self.kind == "latency":
            return f"latency p{p['percentile']:g} <= {p['max_ms']:g} ms"
        if self.kind == "approvals":
            role = f" ({p['role']})" if p.get("role") else ""
            return f"{p['count']} approval(s){role}"
        return self.kind


@dataclass(frozen=True, slots=True)
class StageRule:
    """How a version may enter a stage."""

    stage: Stage
    sources: tuple[Stage, ...] | None = None  # None: from any stage
    gates: tuple[GateSpec, ...] = ()
    allow_multiple: bool = False


@dataclass(frozen=True, slots=True)
class Policy:
    """A parsed policy. ``version`` is set once it is applied (None for the built-in)."""

    name: str
    rules: Mapping[Stage, StageRule] = field(default_factory=dict)
    archived_retention: float | None = None  # seconds
    version: int | None = None

    def rule(self, stage: Stage) -> StageRule:
        return self.rules.get(stage) or StageRule(stage)


DEFAULT_POLICY: Final = Policy("default")


def _fail(source: str, node: yaml.Node | None, message: str) -> PolicyError:
    return PolicyError(f"{source}:{node_line(node)}: {message}")


_scalar = node_value


def _mapping(source: str, node: yaml.Node, what: str) -> list[tuple[str, yaml.Node, yaml.Node]]:
    return mapping_items(source, node, what, _fail)


def _stage(source: str, node: yaml.Node) -> Stage:
    value = _scalar(node) if isinstance(node, yaml.ScalarNode) else None
    if not isinstance(value, str) or value not in STAGES:
        raise _fail(source, node, f"unknown stage {value!r} (expected one of {', '.join(STAGES)})")
    return Stage(value)


def _number(source: str, node: yaml.Node, what: str, *, minimum: float = 0.0) -> float:
    value = _scalar(node) if isinstance(node, yaml.ScalarNode) else None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
        raise _fail(source, node, f"{what} must be a number of at least {minimum:g}, not {value!r}")
    return float(value)


def _metric_gate(source: str, value: yaml.Node) -> dict[str, Any]:
    text = _scalar(value) if isinstance(value, yaml.ScalarNode) else None
    m = _METRIC.match(str(text)) if isinstance(text, str) else None
    if m is None:
        raise _fail(source, value, f"metric gate {text!r} must read like 'val_auc >= 0.80'")
    try:
        threshold = float(m.group(3))
    except ValueError:
        raise _fail(source, value, f"metric gate threshold {m.group(3)!r} is no number") from None
    return {"key": m.group(1), "op": m.group(2), "value": threshold}


def _flag_gate(source: str, value: yaml.Node) -> dict[str, Any]:
    flag = _scalar(value) if isinstance(value, yaml.ScalarNode) else None
    if flag not in (True, "required"):
        raise _fail(source, value, f"this gate takes true (or 'required'), not {flag!r}")
    return {}


def _artifacts_gate(source: str, value: yaml.Node) -> dict[str, Any]:
    if not isinstance(value, yaml.SequenceNode) or not value.value:
        raise _fail(source, value, "artifacts gate takes a list of paths")
    paths = []
    for item in value.value:
        path = _scalar(item) if isinstance(item, yaml.ScalarNode) else None
        if not isinstance(path, str) or not path.strip():
            raise _fail(source, item, "artifact paths must be non-empty strings")
        paths.append(path.strip())
    return {"paths": tuple(paths)}


def _latency_gate(source: str, value: yaml.Node) -> dict[str, Any]:
    params: dict[str, Any] = {"percentile": 95.0, "runs": 20}
    for name, k, v in _mapping(source, value, "latency gate"):
        if name == "max_ms":
            params["max_ms"] = _number(source, v, "max_ms")
        elif name == "percentile":
            params["percentile"] = _number(source, v, "percentile", minimum=1)
            if params["percentile"] > 100:
                raise _fail(source, v, "percentile must be at most 100")
        elif name == "runs":
            params["runs"] = int(_number(source, v, "runs", minimum=1))
        else:
            raise _fail(source, k, f"latency gate: unknown key {name!r} (max_ms, percentile, runs)")
    if "max_ms" not in params:
        raise _fail(source, value, "latency gate needs max_ms")
    return params


def _approvals_gate(source: str, value: yaml.Node) -> dict[str, Any]:
    params: dict[str, Any] = {"count": 1, "role": None}
    if isinstance(value, yaml.ScalarNode):
        params["count"] = int(_number(source, value, "approvals", minimum=1))
        return params
    for name, k, v in _mapping(source, value, "approvals gate"):
        if name == "count":
            params["count"] = int(_number(source, v, "count", minimum=1))
        elif name == "role":
            role = _scalar(v) if isinstance(v, yaml.ScalarNode) else None
            if not isinstance(role, str) or not role:
                raise _fail(source, v, "role must be a non-empty string")
            params["role"] = role
        else:
            raise _fail(source, k, f"approvals gate: unknown key {name!r} (count, role)")
    return params


def _beats_gate(source: str, value: yaml.Node) -> dict[str, Any]:
    """The evaluation gate: its settings are checked here, with the policy's line, and
    judged by the evaluation component at promotion."""
    beats = yaml.safe_load(yaml.serialize(value))
    if not isinstance(beats, dict):
        raise _fail(source, value, "beats gate takes a mapping (champion, metric, ...)")
    try:
        parse_beats(beats)
    except InvalidArgumentError as exc:
        raise _fail(source, value, f"beats gate: {exc}") from None
    return beats


_GATE_PARSERS: Final = {
    "metric": _metric_gate,
    "signature": _flag_gate,
    "artifacts": _artifacts_gate,
    "smoke_test": _flag_gate,
    "latency": _latency_gate,
    "approvals": _approvals_gate,
    "beats": _beats_gate,
}


def _gate(source: str, node: yaml.Node) -> GateSpec:
    items = _mapping(source, node, "a gate")
    if len(items) != 1:
        raise _fail(source, node, f"a gate is one of {', '.join(GATE_KINDS)} with its setting")
    kind, key, value = items[0]
    parser = _GATE_PARSERS.get(kind)
    if parser is None:
        raise _fail(source, key, f"unknown gate {kind!r} (expected one of {', '.join(GATE_KINDS)})")
    return GateSpec(kind, parser(source, value), key.start_mark.line + 1)


def _rule(source: str, stage: Stage, node: yaml.Node) -> StageRule:
    sources: tuple[Stage, ...] | None = None
    gates: list[GateSpec] = []
    allow_multiple = False
    for name, key, value in _mapping(source, node, f"stage {stage.value}"):
        if name == "from":
            items = value.value if isinstance(value, yaml.SequenceNode) else [value]
            sources = tuple(_stage(source, item) for item in items)
        elif name == "gates":
            if not isinstance(value, yaml.SequenceNode):
                raise _fail(source, value, "gates must be a list")
            gates.extend(_gate(source, item) for item in value.value)
        elif name == "allow_multiple":
            flag = _scalar(value) if isinstance(value, yaml.ScalarNode) else None
            if not isinstance(flag, bool):
                raise _fail(source, value, f"allow_multiple must be true or false, not {flag!r}")
            if stage is not Stage.PRODUCTION:
                raise _fail(source, key, "allow_multiple applies to production only")
            allow_multiple = flag
        else:
            raise _fail(
                source,
                key,
                f"stage {stage.value}: unknown key {name!r} (from, gates, allow_multiple)",
            )
    return StageRule(stage, sources, tuple(gates), allow_multiple)


def _policy_name(source: str, value: yaml.Node) -> str:
    raw = _scalar(value) if isinstance(value, yaml.ScalarNode) else None
    try:
        if isinstance(raw, str):
            return validate_name(raw)
    except InvalidArgumentError:
        pass
    raise _fail(source, value, f"policy must be a model name or 'default', not {raw!r}")


def _retention(source: str, value: yaml.Node) -> float | None:
    retention = None
    for rname, rkey, rvalue in _mapping(source, value, "retention"):
        if rname != "archived":
            raise _fail(source, rkey, f"retention: unknown key {rname!r} (archived)")
        raw = _scalar(rvalue) if isinstance(rvalue, yaml.ScalarNode) else None
        try:
            retention = parse_duration(str(raw))
        except ConfigError:
            raise _fail(source, rvalue, f"retention {raw!r} is no duration (e.g. 30d)") from None
    return retention


def parse_policy(text: str, *, source: str = "policy") -> Policy:
    """Parse and validate a policy; PolicyError naming the line when it is wrong."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise PolicyError(f"{source}:{line}: not valid YAML: {exc.problem or exc}") from None
    if root is None:
        raise PolicyError(f"{source}:1: the policy is empty")
    name: str | None = None
    rules: dict[Stage, StageRule] = {}
    retention: float | None = None
    for key_name, key, value in _mapping(source, root, "the policy"):
        if key_name == "policy":
            name = _policy_name(source, value)
        elif key_name == "stages":
            for _, skey, svalue in _mapping(source, value, "stages"):
                stage = _stage(source, skey)
                rules[stage] = _rule(source, stage, svalue)
        elif key_name == "retention":
            retention = _retention(source, value)
        else:
            raise _fail(source, key, f"unknown key {key_name!r} (policy, stages, retention)")
    if name is None:
        raise _fail(source, root, "the policy needs `policy: <model name or default>`")
    return Policy(name, rules, retention)
