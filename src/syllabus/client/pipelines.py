"""Pipelines on the :class:`~syllabus.client.Client` (a mixin): register and run cached
pipelines, read their runs, and run the trigger agent.

A pipeline target is a registered pipeline's name, ``module:attribute`` or
``path/to/file.py:attribute`` (a ``@pipeline`` function), a YAML file, or a
:class:`~syllabus.pipelines.Pipeline` / ``@pipeline`` function object.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from syllabus.client.local import LocalBackend
    from syllabus.config import Settings
    from syllabus.datasets.models import DatasetVersion
    from syllabus.pipelines.agent import Agent, AgentEvent
    from syllabus.pipelines.definition import Pipeline
    from syllabus.pipelines.executors import Executor
    from syllabus.pipelines.models import Firing, PipelineInfo, PipelineResult, PipelineRun, Trigger
    from syllabus.pipelines.service import PipelineService, StepEvent
    from syllabus.pipelines.triggers import AlertSource

__all__ = ["PipelinesAPI"]


def _open_client(uri: str, blobs: str | None, cwd: str, settings: dict[str, Any]) -> Any:
    """A client on the same store, in a worker process (picklable by name)."""
    from syllabus.client.client import Client

    return Client(uri, blobs=blobs, cwd=Path(cwd), create=False, **settings)


class _MonitoringAlerts:
    """Alert triggers over monitoring's alert events (``seq`` is the cursor)."""

    def __init__(self, events: Any) -> None:
        self._events = events

    def alerts_after(self, after: str | None, rule: str) -> list[Any]:
        from syllabus.pipelines.triggers import AlertEvent

        seq = int(after) if after and after.isdigit() else 0
        out: list[AlertEvent] = []
        while True:
            batch = self._events(after=seq)
            if not batch:
                return out
            for e in batch:
                seq = max(seq, int(e.seq))
                wanted = rule in ("*", e.monitor, e.rule, f"{e.monitor}:{e.rule}")
                if e.event == "fired" and wanted:
                    detail = {
                        "monitor": e.monitor,
                        "value": e.value,
                        "window_start": e.window_start,
                    }
                    out.append(AlertEvent(f"{int(e.seq):012d}", e.rule, detail))


class PipelinesAPI:
    """Pipelines, their runs, triggers and the agent (mixed into ``Client``)."""

    if TYPE_CHECKING:
        settings: Settings
        _cwd: Path

        def _open(self, *, write: bool) -> LocalBackend: ...

        @property
        def project_root(self) -> Path: ...

        def list_dataset_versions(self, name: str) -> list[DatasetVersion]: ...

    def _pipelines(self, *, write: bool = False) -> PipelineService:
        from syllabus.errors import ConfigError
        from syllabus.pipelines.service import PipelineService
        from syllabus.tracking.service import _user

        backend = self._open(write=write)
        location = backend.location
        extra = {
            "s3_endpoint_url": self.settings.s3_endpoint_url,
            "predictions": self.settings.predictions,
        }
        # Workers open the same workspace when there is one (not only its database), so
        # what they deploy and log lands in the workspace's folders too.
        workspace = self.settings.workspace
        factory = functools.partial(
            _open_client,
            str(workspace) if workspace is not None else location.db_url,
            location.blobs_url,
            str(self._cwd),
            {k: v for k, v in extra.items() if v is not None},
        )
        store = getattr(backend, "pipeline_store", None)
        if store is None:
            raise ConfigError(
                f"pipelines need direct access to the store's database; {location.db_url} "
                "does not offer them yet (point SYLLABUS_URI at the database itself)"
            )
        return PipelineService(
            store,
            self,  # type: ignore[arg-type]
            backend.blobs,
            host_factory=factory,
            root=self.project_root,
            actor=_user(),
            trigger_baseline=self._trigger_baseline,
        )

    def _trigger_baseline(self, kind: str, spec: Mapping[str, Any]) -> str | None:
        """A new dataset trigger starts at the dataset's current latest version (it fires
        for versions added after it), other triggers start empty."""
        from syllabus.pipelines.triggers import alert_occurrence, dataset_occurrence

        if kind == "dataset":
            occ = dataset_occurrence(spec, self._latest_dataset)
            return None if occ is None else occ[0]
        if kind == "alert":
            occ = alert_occurrence({"alert": spec["alert"]}, None, self._alert_source())
            return None if occ is None else occ[0]
        return None

    def _latest_dataset(self, name: str) -> tuple[str, int] | None:
        from syllabus.errors import NotFoundError

        try:
            versions = self.list_dataset_versions(name)
        except NotFoundError:
            return None
        live = [v for v in versions if v.deleted_at is None]
        if not live:
            return None
        latest = max(live, key=lambda v: v.version)
        return latest.id, latest.version

    def _alert_source(self) -> AlertSource | None:
        """Monitoring's alerts for alert triggers: its own source when it offers one
        (``pipeline_alert_source``), else its alert events; None without monitoring."""
        source = getattr(self, "pipeline_alert_source", None)
        if callable(source):
            return source()  # type: ignore[no-any-return]
        events = getattr(self, "alert_events", None)
        return _MonitoringAlerts(events) if callable(events) else None

    def _load(self, target: str | Pipeline | Any) -> Pipeline:
        from syllabus.pipelines.definition import Pipeline, PipelineFunction, load_pipeline

        if isinstance(target, Pipeline):
            return target
        if isinstance(target, PipelineFunction):
            return target.build()
        text = str(target)
        if ":" in text or text.endswith((".yaml", ".yml")):
            return load_pipeline(text, root=self.project_root)
        return self._pipelines(write=True).definition(text)

    # -- definitions -----------------------------------------------------------------------

    def register_pipeline(self, target: str | Pipeline | Any) -> PipelineInfo:
        """Save a pipeline's definition and triggers (``run_pipeline`` does it too)."""
        return self._pipelines(write=True).register(self._load(target))

    def get_pipeline(self, name: str) -> PipelineInfo:
        return self._pipelines().store.get_pipeline(name)

    def pipeline_definition(self, name: str) -> Pipeline:
        """The steps, params and triggers of a registered pipeline (from its source when it
        still loads)."""
        return self._pipelines().definition(name)

    def list_pipelines(self) -> list[PipelineInfo]:
        return self._pipelines().store.list_pipelines()

    # -- runs ------------------------------------------------------------------------------

    def run_pipeline(
        self,
        target: str | Pipeline | Any,
        *,
        params: Mapping[str, Any] | None = None,
        force: Sequence[str] = (),
        executor: str | Executor | None = None,
        max_workers: int | None = None,
        resume: str | None = None,
        on_step: StepEvent | None = None,
    ) -> PipelineResult:
        """Run a pipeline, reusing the results of unchanged steps; ``force`` re-runs these
        steps (and what their new output reaches); ``resume`` continues a failed run (id or
        prefix, or ``"last"`` for this pipeline's latest) with its params and data versions.
        ``executor``: ``local`` (default, the ``pipeline_executor`` setting), ``ray`` or
        ``inline``."""
        from syllabus.errors import InvalidArgumentError, NotFoundError

        pipeline = self._load(target)
        service = self._pipelines(write=True)
        if resume == "last":
            runs = service.store.list_runs(pipeline.name, limit=1)
            if not runs:
                raise NotFoundError(f"pipeline {pipeline.name!r} has no run to resume")
            resume = runs[0].id
        if executor is None:
            executor = self.settings.pipeline_executor
        if resume is not None and force:
            raise InvalidArgumentError("--resume and --force do not mix")
        return service.run(
            pipeline,
            params=params,
            force=force,
            executor=executor,
            max_workers=max_workers,
            resume=resume,
            on_step=on_step,
        )

    def list_pipeline_runs(self, name: str | None = None, *, limit: int = 100) -> list[PipelineRun]:
        """Pipeline runs (of one pipeline), newest first."""
        return self._pipelines().store.list_runs(name, limit=limit)

    def get_pipeline_run(self, ref: str) -> PipelineResult:
        """A pipeline run with its steps (``value(step)`` loads a step's output)."""
        return self._pipelines().result(ref)

    # -- triggers and the agent ------------------------------------------------------------

    def list_triggers(self, pipeline: str | None = None) -> list[Trigger]:
        return self._pipelines().store.list_triggers(pipeline)

    def list_firings(self, pipeline: str | None = None, *, limit: int = 100) -> list[Firing]:
        """What triggers fired, newest first."""
        return self._pipelines().store.list_firings(pipeline, limit=limit)

    def pipeline_agent(
        self,
        *,
        executor: str | Executor | None = None,
        lease_seconds: float = 60.0,
        owner: str | None = None,
    ) -> Agent:
        """An :class:`~syllabus.pipelines.agent.Agent` on this store."""
        from syllabus.pipelines.agent import Agent

        if executor is None:
            executor = self.settings.pipeline_executor
        return Agent(
            self._pipelines(write=True),
            latest_dataset=self._latest_dataset,
            alerts=self._alert_source(),
            executor=executor,
            lease_seconds=lease_seconds,
            owner=owner,
        )

    def run_agent(
        self,
        *,
        once: bool = False,
        interval: float = 60.0,
        executor: str | Executor | None = None,
        lease_seconds: float = 60.0,
        stop: threading.Event | None = None,
    ) -> list[AgentEvent]:
        """Check triggers and run what they fire: one pass with ``once`` (returns what it
        ran), else pass after pass every ``interval`` seconds until ``stop`` is set."""
        agent = self.pipeline_agent(executor=executor, lease_seconds=lease_seconds)
        if once:
            return agent.tick()
        agent.run_forever(interval, stop)
        return []
