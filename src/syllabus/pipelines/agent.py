"""The agent: checks triggers and runs the pipelines they fire, as a long-lived process.

Each pass (:meth:`Agent.tick`):

1. takes over firings whose agent died (their lease expired while running) and resumes
   their pipeline run: a firing is never fired again, only finished;
2. for each enabled trigger, takes its lease (a row-level claim with an expiry: at most
   one agent checks a trigger at a time), computes its newest occurrence (the scheduled
   minute, the dataset's latest version, the newest alert) and, when it is past the
   trigger's cursor, records the firing (unique per trigger and occurrence, in the same
   transaction that moves the cursor), then gives the lease back;
3. runs the pipeline of each firing it recorded, renewing the firing's lease from a
   background thread while it runs, and records how it ended.

So two agents on one database, or an agent restarted half-way, never fire an occurrence
twice: the database's unique key decides, whatever the timing.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from syllabus._utils.ids import new_id
from syllabus.errors import SyllabusError
from syllabus.pipelines.models import Firing, RunStatus, Trigger
from syllabus.pipelines.triggers import (
    AlertSource,
    Occurrence,
    alert_occurrence,
    cron_occurrence,
    dataset_occurrence,
)

if TYPE_CHECKING:
    from syllabus.pipelines.executors import Executor
    from syllabus.pipelines.service import PipelineService

__all__ = ["Agent", "AgentEvent"]

log = logging.getLogger("syllabus.pipelines")


@dataclass(frozen=True, slots=True)
class AgentEvent:
    """What one pass of the agent did for one firing."""

    pipeline: str
    trigger: str
    occurrence: str
    firing_id: str
    status: str  # succeeded | failed
    pipeline_run_id: str | None
    resumed: bool = False
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "pipeline": self.pipeline,
            "trigger": self.trigger,
            "occurrence": self.occurrence,
            "firing_id": self.firing_id,
            "status": self.status,
            "pipeline_run_id": self.pipeline_run_id,
            "resumed": self.resumed,
            "error": self.error,
        }


class Agent:
    """Fires triggers and runs their pipelines (see the module)."""

    def __init__(
        self,
        service: PipelineService,
        *,
        latest_dataset: Callable[[str], tuple[str, int] | None],
        alerts: AlertSource | None = None,
        executor: str | Executor = "local",
        lease_seconds: float = 60.0,
        owner: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.service = service
        self.store = service.store
        self.latest_dataset = latest_dataset
        self.alerts = alerts
        self.executor = executor
        self.ttl_ms = int(lease_seconds * 1000)
        self.owner = owner or f"{socket.gethostname()[:32]}:{os.getpid()}:{new_id()[-8:]}"
        self.clock = clock

    def _now(self) -> int:
        return int(self.clock() * 1000)

    def occurrence(self, trigger: Trigger, now: int) -> Occurrence | None:
        """The trigger's newest occurrence (None when there is none yet)."""
        if trigger.kind == "cron":
            return cron_occurrence(
                trigger.spec, datetime.fromtimestamp(now / 1000, UTC), trigger.created_at
            )
        if trigger.kind == "dataset":
            return dataset_occurrence(trigger.spec, self.latest_dataset)
        if trigger.kind == "alert":
            return alert_occurrence(trigger.spec, trigger.state, self.alerts)
        log.warning("trigger %s: unknown kind %r", trigger.name, trigger.kind)
        return None

    def tick(self) -> list[AgentEvent]:
        """One pass over stale firings and triggers; returns what it ran."""
        events: list[AgentEvent] = []
        now = self._now()
        for firing in self.store.claim_stale_firings(self.owner, now, self.ttl_ms):
            trigger = self._trigger(firing.trigger_id)
            if trigger is not None:
                events.append(self._run(trigger, firing, resumed=True))
        fired: list[tuple[Trigger, Firing]] = []
        for trigger in self.store.list_triggers():
            if not trigger.enabled:
                continue
            now = self._now()
            if not self.store.claim_trigger(trigger.id, self.owner, now, self.ttl_ms):
                continue
            try:
                occ = self.occurrence(trigger, now)
                if occ is not None and occ[0] != trigger.state:
                    new = self.store.fire(
                        trigger.id, self.owner, occ[0], occ[1], now=self._now(), ttl_ms=self.ttl_ms
                    )
                    if new is not None:
                        log.info("trigger %s/%s fired (%s)", trigger.pipeline, trigger.name, occ[0])
                        fired.append((trigger, new))
            except SyllabusError as exc:
                log.warning("trigger %s/%s: %s", trigger.pipeline, trigger.name, exc)
            finally:
                self.store.release_trigger(trigger.id, self.owner, checked_at=now)
        for trigger, firing in fired:
            events.append(self._run(trigger, firing, resumed=False))
        return events

    def run_forever(self, interval: float, stop: threading.Event | None = None) -> None:
        """Pass after pass, ``interval`` seconds apart, until ``stop`` is set."""
        stop = stop or threading.Event()
        while not stop.is_set():
            try:
                self.tick()
            except SyllabusError as exc:
                log.error("agent pass failed: %s", exc)  # noqa: TRY400 - one line, no traceback
            stop.wait(interval)

    def _trigger(self, trigger_id: str) -> Trigger | None:
        for t in self.store.list_triggers():
            if t.id == trigger_id:
                return t
        return None

    def _run(self, trigger: Trigger, firing: Firing, *, resumed: bool) -> AgentEvent:
        stop = threading.Event()

        def renew() -> None:
            while not stop.wait(max(self.ttl_ms / 3000, 0.05)):
                if not self.store.update_firing(
                    firing.id, self.owner, now=self._now(), ttl_ms=self.ttl_ms
                ):
                    log.warning("lost the lease of firing %s", firing.id)
                    return

        keeper = threading.Thread(target=renew, name="syllabus-firing-lease", daemon=True)
        keeper.start()
        run_id: str | None = None
        error: str | None = None
        try:
            pipeline = self.service.definition(trigger.pipeline)
            earlier = [
                r for r in self.store.list_runs(trigger.pipeline) if r.firing_id == firing.id
            ]
            if resumed and earlier and earlier[0].status is RunStatus.SUCCEEDED:
                run_id, status = earlier[0].id, "succeeded"
            else:
                if resumed and earlier:
                    result = self.service.run(
                        pipeline,
                        resume=earlier[0].id,
                        executor=self.executor,
                        firing_id=firing.id,
                    )
                else:
                    result = self.service.run(
                        pipeline,
                        params=trigger.spec.get("params") or {},
                        executor=self.executor,
                        firing_id=firing.id,
                    )
                run_id = result.run.id
                status = "succeeded" if result.ok else "failed"
                error = result.run.error
        except SyllabusError as exc:
            status, error = "failed", str(exc)
            log.error(  # noqa: TRY400 - an expected failure: one line
                "pipeline %s (trigger %s) failed: %s", trigger.pipeline, trigger.name, exc
            )
        finally:
            stop.set()
            keeper.join()
        self.store.update_firing(
            firing.id, self.owner, now=self._now(), status=status, pipeline_run_id=run_id
        )
        return AgentEvent(
            pipeline=trigger.pipeline,
            trigger=trigger.name,
            occurrence=firing.occurrence,
            firing_id=firing.id,
            status=status,
            pipeline_run_id=run_id,
            resumed=resumed,
            error=error,
        )
