"""What runs inside an executor's worker: one step, given a picklable :class:`StepTask`.

The step function is imported by name (``module:qualname``), so it must be a module-level
function of an importable module (or of the ``__main__`` script run under
``if __name__ == "__main__":``, for the local process pool). Its arguments arrive
pickled: upstream outputs as the bytes the upstream step produced, decoded here; dataset
versions as references, opened here through the worker's own client. The return value is
serialized here (JSON when it is plain JSON data, else pickle) and sent back as bytes.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import pickle
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from syllabus.pipelines.definition import CONTEXT_PARAM, import_step

__all__ = [
    "DatasetArg",
    "Encoded",
    "StepContext",
    "StepOutcome",
    "StepTask",
    "decode",
    "describe_outputs",
    "encode",
    "execute_step",
]

log = logging.getLogger("syllabus.pipelines")

_PLAIN_JSON: Final = (str, int, float, bool, type(None))


@dataclass(frozen=True, slots=True)
class Encoded:
    """A step output as stored: ``format`` ``json`` or ``pickle``, and its bytes."""

    format: str
    data: bytes
    key: str | int | None = None  # one item of it


@dataclass(frozen=True, slots=True)
class DatasetArg:
    """A dataset version argument (``name@version``), opened in the worker."""

    ref: str


@dataclass(frozen=True)
class StepTask:
    """Everything a worker needs to run one step (picklable)."""

    step: str
    uses: str
    run_id: str
    pipeline_run_id: str
    kwargs: Mapping[str, Any]
    host_factory: Callable[[], Any] | None = None
    sys_path: tuple[str, ...] = ()
    root: str | None = None


@dataclass(frozen=True)
class StepOutcome:
    """What a worker sends back."""

    ok: bool
    output: Encoded | None = None
    described: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None
    traceback: str | None = None
    duration_ms: int = 0


def _is_plain_json(value: Any, depth: int = 0) -> bool:
    if depth > 64:
        return False
    if isinstance(value, float):
        import math

        return math.isfinite(value)
    if isinstance(value, _PLAIN_JSON):
        return True
    if type(value) is list:
        return all(_is_plain_json(v, depth + 1) for v in value)
    if type(value) is dict:
        return all(isinstance(k, str) and _is_plain_json(v, depth + 1) for k, v in value.items())
    return False


def encode(value: Any) -> Encoded:
    """JSON for plain JSON data (so it can be read anywhere), else pickle."""
    if _is_plain_json(value):
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
        return Encoded("json", text.encode())
    return Encoded("pickle", pickle.dumps(value, protocol=5))


def decode(encoded: Encoded) -> Any:
    """The value back (with ``key`` applied). Only for bytes this store produced and
    recorded: the content id is checked on every blob read."""
    if encoded.format == "json":
        value = json.loads(encoded.data)
    elif encoded.format == "pickle":
        value = pickle.loads(encoded.data)  # noqa: S301 - bytes recorded by this store's own runs
    else:  # pragma: no cover - formats are written by encode()
        raise ValueError(f"unknown output format {encoded.format!r}")
    if encoded.key is not None:
        value = value[encoded.key]
    return value


def describe_outputs(value: Any) -> dict[str, Any]:
    """The model versions, dataset versions and artifacts found in a step's output (the
    value itself, or the items of a dict, list or tuple)."""
    from syllabus.datasets.models import DatasetVersion
    from syllabus.registry.models import ModelVersion
    from syllabus.tracking.models import Artifact

    items: list[Any]
    if isinstance(value, dict):
        items = list(value.values())
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        items = [value]
    out: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        if isinstance(item, ModelVersion):
            out.setdefault("model_versions", []).append({"id": item.id, "ref": item.ref})
        elif isinstance(item, DatasetVersion):
            out.setdefault("dataset_versions", []).append(
                {"id": item.id, "ref": f"{item.name}@{item.version}"}
            )
        elif isinstance(item, Artifact):
            out.setdefault("artifacts", []).append({"path": item.path, "digest": item.digest})
    return out


class StepContext:
    """What a step receives as ``ctx``: its tracked run and the client of the store.

    ``ctx.log_metric("acc", 0.9)`` and friends log into the step's run; ``ctx.client`` is a
    full :class:`~syllabus.client.Client` on the pipeline's store.
    """

    def __init__(self, client: Any, run_id: str, step: str, pipeline_run_id: str) -> None:
        self.client = client
        self.run_id = run_id
        self.step = step
        self.pipeline_run_id = pipeline_run_id

    def log_metric(self, key: str, value: float, step: int | None = None) -> None:
        self.client.log_metric(self.run_id, key, value, step)

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        self.client.log_metrics(self.run_id, metrics, step)

    def log_param(self, key: str, value: object) -> None:
        self.client.log_param(self.run_id, key, value)

    def log_params(self, params: Mapping[str, object]) -> None:
        self.client.log_params(self.run_id, params)

    def set_tag(self, key: str, value: object) -> None:
        self.client.set_tag(self.run_id, key, value)

    def log_artifact(self, path: Any, name: str | None = None) -> Any:
        return self.client.log_artifact(self.run_id, path, name)

    def log_text(self, text: str, name: str) -> Any:
        return self.client.log_text(self.run_id, text, name)

    def log_dataset_input(self, ref: str, *, role: str = "input") -> None:
        self.client.log_dataset_input(self.run_id, ref, role=role)

    def log_model(self, model: Any, artifact_path: str = "model", **kwargs: Any) -> Any:
        """Package ``model`` into this step's run (``registered_name=`` also registers it);
        returns ``(ModelInfo, ModelVersion | None)``."""
        return self.client.log_model(self.run_id, model, artifact_path, **kwargs)


_hosts: dict[int, Any] = {}
_hosts_lock = threading.Lock()


def _host(factory: Callable[[], Any] | None) -> Any:
    if factory is None:
        return None
    key = hash(pickle.dumps(factory))
    with _hosts_lock:
        host = _hosts.get(key)
        if host is None:
            host = factory()
            _hosts[key] = host
        return host


def _argument(value: Any, host: Any) -> Any:
    if isinstance(value, Encoded):
        return decode(value)
    if isinstance(value, DatasetArg):
        if host is None:
            return value.ref
        return host.dataset(value.ref)
    return value


def execute_step(task: StepTask) -> StepOutcome:
    """Run one step; never raises (failures come back as an outcome)."""
    start = time.perf_counter()
    for entry in reversed(task.sys_path):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    try:
        from pathlib import Path

        fn = import_step(task.uses, root=Path(task.root) if task.root else None)
        host = _host(task.host_factory)
        kwargs = {k: _argument(v, host) for k, v in task.kwargs.items()}
        import inspect

        if CONTEXT_PARAM in inspect.signature(fn).parameters:
            kwargs[CONTEXT_PARAM] = StepContext(host, task.run_id, task.step, task.pipeline_run_id)
        value = fn(**kwargs)
        output = encode(value)
        described = describe_outputs(value)
        if host is not None:
            with contextlib.suppress(Exception):
                host.flush()
    except BaseException as exc:
        if isinstance(exc, (KeyboardInterrupt, SystemExit)) and not isinstance(exc, SystemExit):
            raise
        buf = io.StringIO()
        traceback.print_exception(exc, file=buf)
        message = f"{type(exc).__name__}: {exc}".splitlines()[0][:2000]
        return StepOutcome(
            ok=False,
            error=message,
            traceback=buf.getvalue()[-20000:],
            duration_ms=int((time.perf_counter() - start) * 1000),
        )
    return StepOutcome(
        ok=True,
        output=output,
        described=described,
        duration_ms=int((time.perf_counter() - start) * 1000),
    )
