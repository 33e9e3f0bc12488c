"""Executors: where steps run. The pipeline code is the same for every executor.

``local`` (the default)
    a pool of worker processes on this machine (``spawn``: each worker imports the step's
    module afresh, so steps must be module-level functions of importable modules, and
    their arguments and results picklable). ``max_workers`` defaults to the CPU count,
    at most 4.
``ray``
    each step is a Ray task (``num_cpus=1``). Uses the Ray instance ``ray.init()`` finds
    (``RAY_ADDRESS`` for a cluster) or starts a local one. Workers open the same store by
    its URI, so the store must be reachable from them (PostgreSQL + S3 for a cluster).
``inline``
    in this process, one step at a time: for debugging (breakpoints work) and for tests.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
from typing import Any, Final, Protocol

from syllabus.errors import ConfigError, InvalidArgumentError
from syllabus.pipelines.worker import StepOutcome, StepTask, execute_step

__all__ = [
    "EXECUTORS",
    "Executor",
    "InlineExecutor",
    "LocalExecutor",
    "RayExecutor",
    "make_executor",
]

EXECUTORS: Final = ("local", "ray", "inline")


class Executor(Protocol):
    """Runs step tasks and hands back futures of their outcomes."""

    name: str

    def submit(self, task: StepTask) -> cf.Future[StepOutcome]: ...

    def close(self) -> None: ...


class InlineExecutor:
    """Runs each step in this process when submitted."""

    name = "inline"

    def submit(self, task: StepTask) -> cf.Future[StepOutcome]:
        future: cf.Future[StepOutcome] = cf.Future()
        future.set_result(execute_step(task))
        return future

    def close(self) -> None:
        return None


class LocalExecutor:
    """A pool of worker processes (started on first use)."""

    name = "local"

    def __init__(self, max_workers: int | None = None) -> None:
        self.max_workers = max_workers or min(4, os.cpu_count() or 1)
        if self.max_workers < 1:
            raise InvalidArgumentError("max_workers must be at least 1")
        self._pool: cf.ProcessPoolExecutor | None = None

    def submit(self, task: StepTask) -> cf.Future[StepOutcome]:
        if self._pool is None:
            self._pool = cf.ProcessPoolExecutor(
                max_workers=self.max_workers, mp_context=multiprocessing.get_context("spawn")
            )
        try:
            return self._pool.submit(execute_step, task)
        except (TypeError, AttributeError) as exc:  # pragma: no cover - pickling happens later
            raise InvalidArgumentError(
                f"step {task.step!r} cannot be sent to a worker: {exc}"
            ) from None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


class RayExecutor:
    """Each step as a Ray task."""

    name = "ray"

    def __init__(self, address: str | None = None, **init_args: Any) -> None:
        try:
            import ray
        except ImportError as exc:
            raise ConfigError(
                "the ray executor needs Ray; run `pip install 'syllabus[ray]'`"
            ) from exc
        self._ray = ray
        self._started = False
        if not ray.is_initialized():
            if address is None and not os.environ.get("RAY_ADDRESS"):
                init_args.setdefault("include_dashboard", False)  # a private local instance
            ray.init(address=address, **init_args)
            self._started = True
        self._remote = ray.remote(num_cpus=1, max_retries=0)(execute_step)

    def submit(self, task: StepTask) -> cf.Future[StepOutcome]:
        ref = self._remote.remote(task)
        future: cf.Future[StepOutcome] = ref.future()
        return future

    def close(self) -> None:
        if self._started:
            self._ray.shutdown()
            self._started = False


def make_executor(name: str, *, max_workers: int | None = None) -> Executor:
    """The executor called ``name`` (``local``, ``ray`` or ``inline``)."""
    if name == "local":
        return LocalExecutor(max_workers)
    if name == "inline":
        return InlineExecutor()
    if name == "ray":
        return RayExecutor()
    raise InvalidArgumentError(f"unknown executor {name!r} (choose {', '.join(EXECUTORS)})")
