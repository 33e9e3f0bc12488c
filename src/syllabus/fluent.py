"""Module-level tracking over a default :class:`~syllabus.client.Client`.

::

    import syllabus

    with syllabus.start_run(experiment="churn", params={"lr": 0.1}) as run:
        for step in range(100):
            syllabus.log_metric("loss", 1 / (step + 1), step=step)

The active run is kept per thread (and per asyncio task) in a ContextVar stack. A thread
that has not started a run of its own logs into the run the main thread started, so worker
threads can report into the main run. ``start_run`` inside an active run starts a child
run (nested runs for sweeps). An exception inside ``with`` ends the run as failed (killed
on Ctrl-C) and keeps the error text; runs still active at interpreter exit are ended as
finished. Every function is thread-safe.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import threading
import traceback
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from syllabus.errors import InvalidArgumentError

if TYPE_CHECKING:
    from syllabus.client import Client
    from syllabus.tracking.models import Artifact, Metric, Run

__all__ = [
    "ActiveRun",
    "active_run",
    "end_run",
    "flush",
    "get_client",
    "log_artifact",
    "log_artifacts",
    "log_dict",
    "log_figure",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "log_text",
    "set_client",
    "set_tag",
    "set_tags",
    "start_run",
]

_client_var: ContextVar[Client | None] = ContextVar("syllabus_client", default=None)
_stack_var: ContextVar[tuple[ActiveRun, ...]] = ContextVar("syllabus_runs", default=())
_lock = threading.Lock()
_default_client: Client | None = None
_main_stack: list[ActiveRun] = []  # runs started by the main thread, for other threads
_open_runs: dict[str, ActiveRun] = {}


def get_client() -> Client:
    """The client fluent calls use: set by :func:`set_client`, else one made on first use
    from the settings (the nearest workspace, created here when there is none)."""
    global _default_client  # noqa: PLW0603 - the process-wide default client
    client = _client_var.get()
    if client is not None:
        return client
    with _lock:
        if _default_client is None:
            from syllabus.client import Client

            _default_client = Client()
        return _default_client


def set_client(client: Client | None) -> None:
    """Use ``client`` for fluent calls in this context (None: back to the default)."""
    _client_var.set(client)


class ActiveRun:
    """A run started by :func:`start_run`; a context manager that ends it."""

    def __init__(self, run: Run, client: Client) -> None:
        self.id = run.id
        self.name = run.name
        self.experiment_id = run.experiment_id
        self.parent_id = run.parent_id
        self.client = client
        self._ended = False

    def __repr__(self) -> str:
        return f"ActiveRun(id={self.id!r}, name={self.name!r})"

    @property
    def run(self) -> Run:
        """The run as stored now (params, tags, latest metrics)."""
        return self.client.get_run(self.id)

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.end()
        elif issubclass(exc_type, KeyboardInterrupt):
            self.end("killed", error="KeyboardInterrupt")
        else:
            text = "".join(traceback.format_exception(exc_type, exc, tb)[-10:])
            self.end("failed", error=text)

    def log_input(self, version: object, *, role: str = "input") -> None:
        """Record that this run used a dataset version (a ``syllabus.data.get`` result or a
        reference such as ``"churn@3"``) as ``role`` (``train``, ``test``, ...)."""
        ref = version if isinstance(version, str) else getattr(version, "ref", None)
        if not isinstance(ref, str):
            from syllabus.errors import InvalidArgumentError

            raise InvalidArgumentError(
                f"log_input takes a dataset version or a reference like 'churn@3', "
                f"not {type(version).__name__}"
            )
        self.client.log_dataset_input(self.id, ref, role=role)

    def end(self, status: str = "finished", *, error: str | None = None) -> None:
        """End the run (idempotent) and pop it from the active stacks."""
        with _lock:
            if self._ended:
                return
            self._ended = True
            _open_runs.pop(self.id, None)
            if self in _main_stack:
                _main_stack.remove(self)
        stack = _stack_var.get()
        if self in stack:
            _stack_var.set(tuple(r for r in stack if r is not self))
        self.client.end_run(self.id, status, error=error)


def start_run(
    experiment: str | None = None,
    *,
    name: str | None = None,
    tags: Mapping[str, object] | None = None,
    params: Mapping[str, object] | None = None,
    parent: str | ActiveRun | None = None,
    system_metrics: bool | None = None,
    client: Client | None = None,
) -> ActiveRun:
    """Start a run and make it active; use it as a context manager to end it.

    ``experiment`` is a name (created when new) or an id; by default the active run's
    experiment, else ``Default``. ``parent`` defaults to the active run, so a run started
    inside another is its child. ``system_metrics`` samples CPU, memory, disk, network
    and GPUs into ``system/*`` metrics.
    """
    client = client or get_client()
    current = _current()
    if parent is None and current is not None:
        parent = current
    parent_id = parent.id if isinstance(parent, ActiveRun) else parent
    if experiment is None and isinstance(parent, ActiveRun):
        experiment = parent.experiment_id
    if parent_id is None and os.environ.get("SYLLABUS_REPRODUCE_OF", "").strip():
        # started by `syllabus reproduce`: link the new run to the one it reproduces
        tags = {"syllabus.reproduces": os.environ["SYLLABUS_REPRODUCE_OF"].strip(), **(tags or {})}
    run = client.create_run(
        experiment,
        name=name,
        tags=tags,
        params=params,
        parent=parent_id,
        system_metrics=system_metrics,
    )
    if parent_id is None and client.settings.capture_code:
        _capture_code(client, run.id)
    active = ActiveRun(run, client)
    _stack_var.set((*_stack_var.get(), active))
    with _lock:
        _open_runs[run.id] = active
        if threading.current_thread() is threading.main_thread():
            _main_stack.append(active)
    return active


def _capture_code(client: Client, run_id: str) -> None:
    """Record the run's code, entry point and environment (the ``capture_code`` setting);
    a failure is logged, never raised: it must not stop the run."""
    try:
        client.capture_code(run_id)
    except Exception as exc:  # noqa: BLE001 - capture is best effort at run start
        logging.getLogger("syllabus").warning(
            "syllabus: code of run %s not captured: %s", run_id, exc
        )


def _current() -> ActiveRun | None:
    for run in reversed(_stack_var.get()):
        if not run._ended:  # ended from another thread: that thread could not pop it here
            return run
    if threading.current_thread() is not threading.main_thread():
        with _lock:
            if _main_stack:
                return _main_stack[-1]
    return None


def active_run() -> ActiveRun | None:
    """The run fluent calls log into here, or None."""
    return _current()


def _require() -> ActiveRun:
    run = _current()
    if run is None:
        raise InvalidArgumentError(
            "no active run; call syllabus.start_run() first (or use Client().log_* with a run id)"
        )
    return run


def end_run(status: str = "finished", *, error: str | None = None) -> None:
    """End the active run (nothing happens when there is none)."""
    run = _current()
    if run is not None:
        run.end(status, error=error)


def log_param(key: str, value: object) -> None:
    run = _require()
    run.client.log_param(run.id, key, value)


def log_params(params: Mapping[str, object]) -> None:
    run = _require()
    run.client.log_params(run.id, params)


def set_tag(key: str, value: object) -> None:
    run = _require()
    run.client.set_tag(run.id, key, value)


def set_tags(tags: Mapping[str, object]) -> None:
    run = _require()
    run.client.set_tags(run.id, tags)


def log_metric(
    key: str, value: float, step: int | None = None, timestamp: int | None = None
) -> None:
    """Queue one point for the active run; returns at once (see :func:`flush`)."""
    run = _require()
    run.client.log_metric(run.id, key, value, step, timestamp)


def log_metrics(
    metrics: Mapping[str, float] | Iterable[Metric | tuple[str, float, int, int]],
    step: int | None = None,
    timestamp: int | None = None,
) -> None:
    run = _require()
    run.client.log_metrics(run.id, metrics, step, timestamp)


def log_artifact(path: str | Path, name: str | None = None) -> Artifact:
    run = _require()
    return run.client.log_artifact(run.id, path, name)


def log_artifacts(folder: str | Path, artifact_path: str | None = None) -> list[Artifact]:
    run = _require()
    return run.client.log_artifacts(run.id, folder, artifact_path)


def log_text(text: str, name: str) -> Artifact:
    run = _require()
    return run.client.log_text(run.id, text, name)


def log_dict(data: Mapping[str, Any], name: str) -> Artifact:
    run = _require()
    return run.client.log_dict(run.id, data, name)


def log_figure(figure: Any, name: str) -> Artifact:
    run = _require()
    return run.client.log_figure(run.id, figure, name)


def flush() -> None:
    """Make every queued metric point of the active client durable."""
    run = _current()
    (run.client if run is not None else get_client()).flush()


def _end_open_runs_at_exit() -> None:
    with _lock:
        runs = list(_open_runs.values())
    for run in reversed(runs):
        with contextlib.suppress(Exception):
            run.end()


atexit.register(_end_open_runs_at_exit)
