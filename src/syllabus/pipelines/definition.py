"""Defining pipelines: ``@step`` functions composed into a ``@pipeline``, or YAML.

A step is a plain module-level function. Inside a function decorated with ``@pipeline``,
calling a step does not run it: it adds a node to the pipeline's graph and returns a
handle that later steps take as an argument (an edge). Outside a pipeline, calling a step
just calls the function::

    from syllabus import pipeline, step
    from syllabus.pipelines import dataset

    @step
    def prepare(data, test_size: float = 0.25):
        ...

    @step
    def fit(split, c: float = 1.0, ctx=None):
        ...

    @pipeline(name="iris")
    def iris(c: float = 1.0):
        split = prepare(dataset("iris@latest"))
        return fit(split, c=c)

An argument of a step is a constant (JSON), a pipeline param (the pipeline function's
own arguments), another step's output (``handle`` or ``handle["key"]`` for one item of a
dict or tuple output), a dataset version (``dataset("iris@latest")``, resolved when the
run starts) or a model version (``model("iris@production")``). A parameter named ``ctx``
receives the :class:`~syllabus.pipelines.worker.StepContext` (the step's tracked run).

The same graph in YAML (``uses`` names a ``@step`` function as ``module:function``,
importable from the project root, or ``builtin:<name>``; nothing else runs)::

    name: iris
    params: {c: 1.0}
    steps:
      prepare:
        uses: steps:prepare
        with: {data: "dataset:iris@latest"}
      fit:
        uses: steps:fit
        with: {split: "${prepare}", c: "${params.c}"}
    triggers:
      - {name: new-data, dataset: iris}

In ``with``, ``${STEP}`` and ``${STEP.KEY}`` are step outputs, ``${params.NAME}`` a param,
``dataset:REF`` and ``model:REF`` versions; anything else is a constant.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import importlib
import inspect
import json
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Generic, ParamSpec, TypeVar, overload

from syllabus.errors import InvalidArgumentError

__all__ = [
    "Arg",
    "Handle",
    "Param",
    "Pipeline",
    "Step",
    "StepNode",
    "dataset",
    "import_object",
    "import_step",
    "load_pipeline",
    "load_yaml",
    "model",
    "pipeline",
    "step",
]

P = ParamSpec("P")
R = TypeVar("R")

_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,127}")
_REF: Final = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_.-]*)\}")
CONTEXT_PARAM: Final = "ctx"


@dataclass(frozen=True, slots=True)
class Arg:
    """One argument of a step node: ``kind`` is ``value``, ``param``, ``step``,
    ``dataset`` or ``model``."""

    kind: str
    value: Any = None
    key: str | int | None = None  # an item of a step's output

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {self.kind: self.value}
        if self.key is not None:
            out["key"] = self.key
        return out

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> Arg:
        for kind in ("value", "param", "step", "dataset", "model"):
            if kind in data:
                return Arg(kind, data[kind], data.get("key"))
        raise InvalidArgumentError(f"invalid step argument {dict(data)!r}")


@dataclass(frozen=True, slots=True)
class Param:
    """A pipeline param inside a pipeline function (what its arguments are while traced)."""

    name: str
    default: Any = None


@dataclass(frozen=True, slots=True)
class Handle:
    """The output of a step inside a pipeline function; ``handle["key"]`` is one item."""

    step: str
    key: str | int | None = None

    def __getitem__(self, key: str | int) -> Handle:
        if self.key is not None:
            raise InvalidArgumentError(f"step {self.step!r}: only one level of [key] is supported")
        return Handle(self.step, key)


@dataclass(frozen=True, slots=True)
class _Versioned:
    kind: str
    ref: str


def dataset(ref: str) -> Any:
    """A dataset version as a step argument (``iris@latest`` is resolved when the run starts;
    the step receives a handle with ``to_pandas()``, ``to_arrow()``, ``path()``)."""
    _check_ref(ref, "dataset")
    return _Versioned("dataset", ref)


def model(ref: str) -> Any:
    """A model version as a step argument (the step receives its ``name@version`` text)."""
    _check_ref(ref, "model")
    return _Versioned("model", ref)


def _check_ref(ref: object, what: str) -> None:
    if not isinstance(ref, str) or not ref or ref != ref.strip():
        raise InvalidArgumentError(f"invalid {what} reference {ref!r}")


@dataclass(frozen=True, slots=True)
class StepNode:
    """A step in a pipeline: its name, the function it runs and its arguments."""

    name: str
    uses: str  # module:qualname, or builtin:<name>
    args: Mapping[str, Arg]
    cache: bool = True

    @property
    def upstream(self) -> list[str]:
        return sorted({a.value for a in self.args.values() if a.kind == "step"})

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "uses": self.uses,
            "args": {k: a.to_json() for k, a in self.args.items()},
            "cache": self.cache,
        }

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> StepNode:
        return StepNode(
            name=data["name"],
            uses=data["uses"],
            args={k: Arg.from_json(v) for k, v in data.get("args", {}).items()},
            cache=bool(data.get("cache", True)),
        )


class _Trace:
    def __init__(self) -> None:
        self.nodes: dict[str, StepNode] = {}


_tracing: contextvars.ContextVar[_Trace | None] = contextvars.ContextVar(
    "syllabus_pipeline_trace", default=None
)


def _to_arg(value: Any, where: str) -> Arg:
    if isinstance(value, Handle):
        return Arg("step", value.step, value.key)
    if isinstance(value, Param):
        return Arg("param", value.name)
    if isinstance(value, _Versioned):
        return Arg(value.kind, value.ref)
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        raise InvalidArgumentError(
            f"{where}: {type(value).__name__} is not a JSON value, a param, a step output, "
            "dataset(...) or model(...)"
        ) from None
    return Arg("value", value)


def _module_ref(module: str) -> str:
    """How a definition names a module: a script run as ``__main__`` by its file's name (so
    a worker, the CLI or the agent import the same file later, as ``FILE.py:NAME`` does),
    anything else by its name."""
    if module in ("__main__", "__mp_main__"):
        file = getattr(sys.modules.get(module), "__file__", None)
        if file and file.endswith(".py"):
            return Path(file).stem
    return module


class Step(Generic[P, R]):
    """A step function (see :func:`step`). Calling it inside a pipeline adds a node."""

    def __init__(self, fn: Callable[P, R], *, name: str | None = None, cache: bool = True) -> None:
        if fn.__qualname__ != fn.__name__ or "<" in fn.__qualname__:
            raise InvalidArgumentError(
                f"step {fn.__qualname__!r} must be a module-level function (steps run in "
                "other processes, which import them by name)"
            )
        self.fn = fn
        self.name = name or fn.__name__
        self.cache = cache
        functools.update_wrapper(self, fn)

    @property
    def uses(self) -> str:
        module = self.fn.__module__
        if module.startswith("syllabus.pipelines.builtin"):
            return f"builtin:{self.fn.__name__}"
        return f"{_module_ref(module)}:{self.fn.__qualname__}"

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        trace = _tracing.get()
        if trace is None:
            return self.fn(*args, **kwargs)
        return self._node(trace, args, kwargs)  # type: ignore[return-value]

    def _node(self, trace: _Trace, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Handle:
        sig = inspect.signature(self.fn)
        try:
            bound = sig.bind_partial(*args, **kwargs)
        except TypeError as exc:
            raise InvalidArgumentError(f"step {self.name!r}: {exc}") from None
        if CONTEXT_PARAM in bound.arguments:
            raise InvalidArgumentError(
                f"step {self.name!r}: {CONTEXT_PARAM!r} is passed by the runner"
            )
        missing = [
            p.name
            for p in sig.parameters.values()
            if p.name not in bound.arguments
            and p.name != CONTEXT_PARAM
            and p.default is inspect.Parameter.empty
            and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        ]
        if missing:
            raise InvalidArgumentError(f"step {self.name!r} needs {', '.join(missing)}")
        name = self.name
        n = 2
        while name in trace.nodes:
            name = f"{self.name}_{n}"
            n += 1
        node_args: dict[str, Arg] = {}
        for key, value in bound.arguments.items():
            kind = sig.parameters[key].kind
            if kind is inspect.Parameter.VAR_KEYWORD:
                for k, v in value.items():
                    node_args[k] = _to_arg(v, f"step {name!r} argument {k!r}")
            elif kind is inspect.Parameter.VAR_POSITIONAL:
                raise InvalidArgumentError(f"step {name!r}: *args are not supported")
            else:
                node_args[key] = _to_arg(value, f"step {name!r} argument {key!r}")
        for a in node_args.values():
            if a.kind == "step" and a.value not in trace.nodes:
                raise InvalidArgumentError(f"step {name!r} uses an output of an unknown step")
        trace.nodes[name] = StepNode(name, self.uses, node_args, self.cache)
        return Handle(name)


@overload
def step(fn: Callable[P, R], /) -> Step[P, R]: ...
@overload
def step(
    *, name: str | None = None, cache: bool = True
) -> Callable[[Callable[P, R]], Step[P, R]]: ...
def step(
    fn: Callable[P, R] | None = None, /, *, name: str | None = None, cache: bool = True
) -> Step[P, R] | Callable[[Callable[P, R]], Step[P, R]]:
    """Make a module-level function a pipeline step (``cache=False``: always re-run)."""
    if fn is not None:
        return Step(fn, name=name, cache=cache)

    def wrap(f: Callable[P, R]) -> Step[P, R]:
        return Step(f, name=name, cache=cache)

    return wrap


@dataclass(frozen=True)
class Pipeline:
    """A named DAG of steps with params (defaults) and triggers."""

    name: str
    steps: tuple[StepNode, ...]
    params: Mapping[str, Any] = field(default_factory=dict)
    triggers: tuple[Mapping[str, Any], ...] = ()
    source: str = ""
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise InvalidArgumentError(
                f"invalid pipeline name {self.name!r} (letters, digits, _ . -; up to 128)"
            )
        if not self.steps:
            raise InvalidArgumentError(f"pipeline {self.name!r} has no steps")
        names = [s.name for s in self.steps]
        if len(set(names)) != len(names):
            raise InvalidArgumentError(f"pipeline {self.name!r} has two steps with one name")
        known = set(names)
        for s in self.steps:
            if not _NAME.fullmatch(s.name):
                raise InvalidArgumentError(f"invalid step name {s.name!r}")
            for a in s.args.values():
                if a.kind == "step" and a.value not in known:
                    raise InvalidArgumentError(
                        f"step {s.name!r} uses the output of {a.value!r}, which is not a step "
                        f"of pipeline {self.name!r}"
                    )
                if a.kind == "param" and a.value not in self.params:
                    raise InvalidArgumentError(
                        f"step {s.name!r} uses param {a.value!r}, which pipeline "
                        f"{self.name!r} does not declare"
                    )
        self.order()  # refuses cycles

    def node(self, name: str) -> StepNode:
        for s in self.steps:
            if s.name == name:
                return s
        raise InvalidArgumentError(
            f"pipeline {self.name!r} has no step {name!r} (steps: {', '.join(self.step_names)})"
        )

    @property
    def step_names(self) -> list[str]:
        return [s.name for s in self.steps]

    def order(self) -> list[str]:
        """Steps in a topological order (stable: definition order among ready steps)."""
        deps = {s.name: set(s.upstream) for s in self.steps}
        done: list[str] = []
        remaining = [s.name for s in self.steps]
        while remaining:
            ready = [n for n in remaining if deps[n] <= set(done)]
            if not ready:
                raise InvalidArgumentError(
                    f"pipeline {self.name!r} has a cycle among {', '.join(remaining)}"
                )
            done.append(ready[0])
            remaining.remove(ready[0])
        return done

    def downstream(self, names: Sequence[str]) -> set[str]:
        """The steps that depend, directly or not, on any of ``names`` (and those)."""
        out = set(names)
        changed = True
        while changed:
            changed = False
            for s in self.steps:
                if s.name not in out and out & set(s.upstream):
                    out.add(s.name)
                    changed = True
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "params": dict(self.params),
            "steps": [s.to_json() for s in self.steps],
            "triggers": [dict(t) for t in self.triggers],
        }

    @staticmethod
    def from_json(data: Mapping[str, Any], *, source: str = "") -> Pipeline:
        return Pipeline(
            name=data["name"],
            description=data.get("description", ""),
            params=dict(data.get("params", {})),
            steps=tuple(StepNode.from_json(s) for s in data.get("steps", [])),
            triggers=tuple(data.get("triggers", [])),
            source=source,
        )


class PipelineFunction:
    """What ``@pipeline`` returns: call ``.build()`` for the :class:`Pipeline` graph."""

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None,
        triggers: Sequence[Mapping[str, Any]],
        description: str | None,
    ) -> None:
        self.fn = fn
        self.name = name or fn.__name__
        self.triggers = tuple(dict(t) for t in triggers)
        self.description = description if description is not None else (fn.__doc__ or "")
        functools.update_wrapper(self, fn)

    def build(self) -> Pipeline:
        sig = inspect.signature(self.fn)
        params: dict[str, Any] = {}
        placeholders: dict[str, Param] = {}
        for p in sig.parameters.values():
            if p.default is inspect.Parameter.empty:
                raise InvalidArgumentError(
                    f"pipeline {self.name!r}: param {p.name!r} needs a default value"
                )
            _to_arg(p.default, f"pipeline {self.name!r} param {p.name!r}")
            params[p.name] = p.default
            placeholders[p.name] = Param(p.name, p.default)
        trace = _Trace()
        token = _tracing.set(trace)
        try:
            self.fn(**placeholders)
        finally:
            _tracing.reset(token)
        module = self.fn.__module__
        return Pipeline(
            name=self.name,
            steps=tuple(trace.nodes.values()),
            params=params,
            triggers=self.triggers,
            source=f"{_module_ref(module)}:{self.fn.__qualname__}",
            description=inspect.cleandoc(self.description) if self.description else "",
        )

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)


@overload
def pipeline(fn: Callable[..., Any], /) -> PipelineFunction: ...
@overload
def pipeline(
    *,
    name: str | None = None,
    triggers: Sequence[Mapping[str, Any]] = (),
    description: str | None = None,
) -> Callable[[Callable[..., Any]], PipelineFunction]: ...
def pipeline(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    triggers: Sequence[Mapping[str, Any]] = (),
    description: str | None = None,
) -> PipelineFunction | Callable[[Callable[..., Any]], PipelineFunction]:
    """Make a function that calls steps a pipeline (its arguments, all with defaults, are
    the pipeline's params; ``triggers`` from :mod:`syllabus.pipelines.triggers`)."""
    if fn is not None:
        return PipelineFunction(fn, name=name, triggers=triggers, description=description)

    def wrap(f: Callable[..., Any]) -> PipelineFunction:
        return PipelineFunction(f, name=name, triggers=triggers, description=description)

    return wrap


# -- importing and YAML ----------------------------------------------------------------------


def import_object(spec: str, *, root: Path | None = None) -> Any:
    """The object ``module:qualname`` names (``builtin:NAME`` for a built-in step); a
    ``path/to/file.py:name`` is imported from that file (under ``root`` when relative)."""
    module_name, sep, qualname = spec.rpartition(":")
    if not sep or not module_name or not qualname:
        raise InvalidArgumentError(f"{spec!r} is not module:name")
    if module_name == "builtin":
        module_name = "syllabus.pipelines.builtin"
    if module_name.endswith(".py"):
        module = _import_file(Path(module_name), root)
    else:
        with _on_path(root):
            try:
                module = importlib.import_module(module_name)
            except ImportError as exc:
                raise InvalidArgumentError(f"cannot import {module_name!r}: {exc}") from None
    obj: Any = module
    for part in qualname.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise InvalidArgumentError(f"{module_name!r} has no {qualname!r}") from None
    return obj


@contextlib.contextmanager
def _on_path(root: Path | None) -> Iterator[None]:
    """``root`` on ``sys.path`` while importing (kept there: workers need it too)."""
    if root is not None and str(root) not in sys.path:
        sys.path.insert(0, str(root))
    yield


def _import_file(path: Path, root: Path | None) -> Any:
    full = (root / path) if root is not None and not path.is_absolute() else path
    full = full.resolve()
    if not full.is_file():
        raise InvalidArgumentError(f"no such file {str(path)!r}")
    with _on_path(full.parent):
        try:
            module = importlib.import_module(full.stem)
            loaded = getattr(module, "__file__", None)
            if loaded is None or Path(loaded).resolve() != full:
                # another file of that name was imported first (another project, an
                # earlier folder): the file asked for wins
                sys.modules.pop(full.stem, None)
                importlib.invalidate_caches()
                if str(full.parent) in sys.path:
                    sys.path.remove(str(full.parent))
                sys.path.insert(0, str(full.parent))
                module = importlib.import_module(full.stem)
        except ImportError as exc:
            raise InvalidArgumentError(f"cannot import {str(path)!r}: {exc}") from None
        return module


def import_step(spec: str, *, root: Path | None = None) -> Callable[..., Any]:
    """The function of the ``@step`` that ``spec`` names. Only decorated steps run: a
    definition (say, one stored in a shared database) cannot name any other callable."""
    obj = import_object(spec, root=root)
    if not isinstance(obj, Step):
        raise InvalidArgumentError(f"{spec!r} is not a @step function (decorate it with @step)")
    return obj.fn


def load_pipeline(target: str, *, root: Path | None = None) -> Pipeline:
    """The pipeline ``target`` names: a YAML file, or ``module:attribute`` /
    ``file.py:attribute`` (a ``@pipeline`` function or a :class:`Pipeline`)."""
    if target.endswith((".yaml", ".yml")):
        path = Path(target)
        full = (root / path) if root is not None and not path.is_absolute() else path
        if not full.is_file():
            raise InvalidArgumentError(f"no such file {target!r}")
        return load_yaml(full.read_text(encoding="utf-8"), source=target)
    obj = import_object(target, root=root)
    if isinstance(obj, PipelineFunction):
        built = obj.build()
    elif isinstance(obj, Pipeline):
        built = obj
    else:
        raise InvalidArgumentError(f"{target!r} is not a @pipeline function")
    return Pipeline(
        name=built.name,
        steps=built.steps,
        params=built.params,
        triggers=built.triggers,
        source=target,
        description=built.description,
    )


def _yaml_arg(value: Any, where: str) -> Arg:
    if isinstance(value, str):
        if value.startswith("dataset:"):
            _check_ref(value[8:], "dataset")
            return Arg("dataset", value[8:])
        if value.startswith("model:"):
            _check_ref(value[6:], "model")
            return Arg("model", value[6:])
        m = _REF.fullmatch(value.strip())
        if m:
            target = m.group(1)
            if target.startswith("params."):
                return Arg("param", target[7:])
            name, _, key = target.partition(".")
            return Arg("step", name, (int(key) if key.isdigit() else key) if key else None)
    return _to_arg(value, where)


def load_yaml(text: str, *, source: str = "") -> Pipeline:
    """A pipeline from its YAML definition (see the module's docstring)."""
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidArgumentError(f"invalid pipeline YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict) or "name" not in data or "steps" not in data:
        raise InvalidArgumentError("a pipeline YAML needs `name` and `steps`")
    steps_in = data["steps"]
    if isinstance(steps_in, dict):
        steps_in = [{"name": k, **(v or {})} for k, v in steps_in.items()]
    if not isinstance(steps_in, list):
        raise InvalidArgumentError("`steps` must map step names to {uses, with}")
    nodes: list[StepNode] = []
    for item in steps_in:
        if not isinstance(item, dict) or "uses" not in item or "name" not in item:
            raise InvalidArgumentError(f"step {item!r} needs `uses` (module:function)")
        name = str(item["name"])
        given = item.get("with") or {}
        if not isinstance(given, dict):
            raise InvalidArgumentError(f"step {name!r}: `with` must be a mapping")
        args = {str(k): _yaml_arg(v, f"step {name!r} argument {k!r}") for k, v in given.items()}
        nodes.append(StepNode(name, str(item["uses"]), args, bool(item.get("cache", True))))
    params = data.get("params") or {}
    triggers = data.get("triggers") or []
    if not isinstance(params, dict) or not isinstance(triggers, list):
        raise InvalidArgumentError("`params` must be a mapping and `triggers` a list")
    for t in triggers:
        if not isinstance(t, dict):
            raise InvalidArgumentError(f"invalid trigger {t!r}")
    return Pipeline(
        name=str(data["name"]),
        steps=tuple(nodes),
        params=params,
        triggers=tuple(triggers),
        source=source,
        description=str(data.get("description") or ""),
    )
