"""Running pipelines: cache keys, the DAG walk, tracked runs, failure, resume.

A step's cache key is the BLAKE3 digest of its fingerprint: the step's code
(:func:`~syllabus.pipelines.codehash.code_digest`), its params (constants and pipeline
params, as JSON) and the content of its inputs (each upstream output's content id, each
dataset or model version's tree digest). An unchanged step is not run again: its stored
output is reused and the result says so (``cached``). A step re-runs when its key changes,
so a changed param, data version or step code re-runs exactly the steps it reaches (and
downstream ones only when the output they receive changed).

Every pipeline run is a tracked run (experiment ``pipeline:<name>``) and every step a
tracked child run of it, params and dataset inputs recorded, output stored as an artifact
(``output.json`` or ``output.pkl``). A failed step stops the steps that depend on it
(``skipped``); the others finish, and the run can be resumed: a resumed run keeps the
steps that succeeded, with the same params and data versions, and runs the rest.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import blake3

from syllabus._utils.ids import new_id
from syllabus.blobs.digest import Digest
from syllabus.errors import InvalidArgumentError, NotFoundError, SyllabusError
from syllabus.pipelines.codehash import code_digest
from syllabus.pipelines.definition import Pipeline, StepNode, import_step
from syllabus.pipelines.executors import Executor, make_executor
from syllabus.pipelines.models import (
    CacheEntry,
    PipelineInfo,
    PipelineResult,
    PipelineRun,
    RunStatus,
    StepResult,
    StepRun,
    StepStatus,
)
from syllabus.pipelines.store import PipelineStore
from syllabus.pipelines.worker import DatasetArg, Encoded, StepOutcome, StepTask, decode

if TYPE_CHECKING:
    from syllabus.blobs.store import BlobStore
    from syllabus.datasets.models import DatasetVersion
    from syllabus.registry.models import ModelVersion
    from syllabus.tracking.models import Artifact, Run, RunInput

__all__ = ["PipelineHost", "PipelineService", "StepEvent", "definition_digest"]

log = logging.getLogger("syllabus.pipelines")

StepEvent = Callable[[str, StepStatus, str], None]
"""Called as ``on_step(step, status, reason)`` when a step starts, ends or is reused."""


class PipelineHost(Protocol):
    """What the runner needs from the client (the :class:`~syllabus.client.Client` is one)."""

    def create_run(
        self,
        experiment: str | None = None,
        *,
        name: str | None = None,
        tags: Mapping[str, object] | None = None,
        params: Mapping[str, object] | None = None,
        parent: str | None = None,
    ) -> Run: ...

    def end_run(
        self, run_id: str, status: str = "finished", *, error: str | None = None
    ) -> None: ...

    def set_tags(self, run_id: str, tags: Mapping[str, object]) -> None: ...

    def log_inputs(self, run_id: str, inputs: Sequence[RunInput]) -> None: ...

    def log_artifact(self, run_id: str, path: str | Path, name: str | None = None) -> Artifact: ...

    def get_dataset(self, ref: str) -> DatasetVersion: ...

    def get_model_version(self, ref: str) -> ModelVersion: ...


def _now() -> int:
    return time.time_ns() // 1_000_000


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def definition_digest(pipeline: Pipeline) -> str:
    """The content id of a pipeline's definition (what ``pipeline list`` compares)."""
    return blake3.blake3(_canonical(pipeline.to_json()).encode()).hexdigest()


def _coerce(value: Any, default: Any) -> Any:
    """A param given as text (CLI) as the type of its default."""
    if not isinstance(value, str) or isinstance(default, str):
        return value
    try:
        parsed = json.loads(value)
    except ValueError:
        return value
    if isinstance(default, bool) and not isinstance(parsed, bool):
        raise InvalidArgumentError(f"{value!r} is not true or false")
    if isinstance(default, float) and isinstance(parsed, int) and not isinstance(parsed, bool):
        return float(parsed)
    return parsed


def _diff(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> str:
    """Why a step runs, compared with its previous fingerprint."""
    if not old:
        return "no cached result"
    reasons: list[str] = []
    if old.get("code") != new.get("code"):
        reasons.append("code changed")
    old_args: Mapping[str, Any] = old.get("args", {})
    for name, arg in new.get("args", {}).items():
        before = old_args.get(name)
        if before == arg:
            continue
        if "value" in arg:
            shown_old = "unset" if before is None else _canonical(before.get("value"))
            reasons.append(f"param {name} changed ({shown_old} -> {_canonical(arg['value'])})")
        elif "dataset" in arg:
            was = before.get("dataset") if before else None
            reasons.append(f"data {name} changed ({was} -> {arg['dataset']})")
        elif "model" in arg:
            was = before.get("model") if before else None
            reasons.append(f"model {name} changed ({was} -> {arg['model']})")
        else:
            reasons.append(f"input {name} changed (output of {arg.get('step')})")
    for name in old_args:
        if name not in new.get("args", {}):
            reasons.append(f"argument {name} removed")
    return "; ".join(reasons) or "no cached result"


def _key(fingerprint: Mapping[str, Any]) -> str:
    """The cache key: code, params and input *content* (not the names of versions)."""
    args = {}
    for name, arg in fingerprint["args"].items():
        args[name] = {k: v for k, v in arg.items() if k not in ("dataset", "model")}
    material = {"uses": fingerprint["uses"], "code": fingerprint["code"], "args": args}
    return blake3.blake3(_canonical(material).encode()).hexdigest()


class PipelineService:
    """Registers and runs pipelines over a store, a client (``host``) and a blob store.

    ``host_factory`` builds, in a worker process, a client on the same store (picklable);
    ``root`` is the project folder step modules are imported from.
    """

    def __init__(
        self,
        store: PipelineStore,
        host: PipelineHost,
        blobs: BlobStore,
        *,
        host_factory: Callable[[], Any] | None = None,
        root: Path | None = None,
        actor: str = "unknown",
        trigger_baseline: Callable[[str, Mapping[str, Any]], str | None] | None = None,
    ) -> None:
        self.store = store
        self.host = host
        self.blobs = blobs
        self.host_factory = host_factory
        self.root = root
        self.actor = actor
        self.trigger_baseline = trigger_baseline

    # -- definitions -----------------------------------------------------------------------

    def register(self, pipeline: Pipeline) -> PipelineInfo:
        """Save the definition (by name) and make its triggers the declared ones."""
        from syllabus.pipelines.triggers import parse_trigger

        specs = []
        for i, t in enumerate(pipeline.triggers):
            name, kind, spec = parse_trigger(t, default_name=f"trigger-{i + 1}")
            specs.append((name, kind, spec))
        names = [s[0] for s in specs]
        if len(set(names)) != len(names):
            raise InvalidArgumentError(f"pipeline {pipeline.name!r} has two triggers with one name")
        for node in pipeline.steps:  # every step must be importable before anything is saved
            self._function(node)
        info = self.store.save_pipeline(
            pipeline.name, pipeline.source, pipeline.to_json(), definition_digest(pipeline)
        )
        existing = {t.name: t for t in self.store.list_triggers(pipeline.name)}
        full = []
        for name, kind, spec in specs:
            state = None
            if name not in existing and self.trigger_baseline is not None:
                state = self.trigger_baseline(kind, spec)
            full.append((name, kind, spec, state))
        self.store.sync_triggers(info.id, full)
        return info

    def definition(self, name: str) -> Pipeline:
        """A registered pipeline, re-read from its source when that still loads (so edits
        take effect), else as stored."""
        from syllabus.pipelines.definition import load_pipeline

        info = self.store.get_pipeline(name)
        if info.source:
            try:
                fresh = load_pipeline(info.source, root=self.root)
            except SyllabusError as exc:
                log.warning("pipeline %s: using the stored definition (%s)", name, exc)
            else:
                if fresh.name == name:
                    if definition_digest(fresh) != info.digest:
                        self.register(fresh)
                    return fresh
        return Pipeline.from_json(info.definition, source=info.source)

    def _function(self, node: StepNode) -> Callable[..., Any]:
        return import_step(node.uses, root=self.root)

    # -- running ---------------------------------------------------------------------------

    def run(
        self,
        pipeline: Pipeline,
        *,
        params: Mapping[str, Any] | None = None,
        force: Sequence[str] = (),
        executor: str | Executor = "local",
        max_workers: int | None = None,
        resume: str | None = None,
        firing_id: str | None = None,
        on_step: StepEvent | None = None,
    ) -> PipelineResult:
        """Run ``pipeline`` (registering it), reusing cached steps; see the module."""
        info = self.register(pipeline)
        kept: dict[str, StepRun] = {}
        resumed: PipelineRun | None = None
        if resume is not None:
            resumed = self.store.get_run(resume)
            if resumed.pipeline != pipeline.name:
                raise InvalidArgumentError(
                    f"pipeline run {resume} is a run of {resumed.pipeline!r}, not {pipeline.name!r}"
                )
            if resumed.status is RunStatus.SUCCEEDED:
                raise InvalidArgumentError(
                    f"pipeline run {resumed.id[:12]} succeeded; nothing to resume"
                )
            if resumed.status is RunStatus.RUNNING:  # its process died (or was killed)
                self._abandon(resumed)
            kept = {
                s.step: s
                for s in self.store.list_steps(resumed.id)
                if s.status.done and s.outputs and "value" in s.outputs
            }
        forced = [pipeline.node(n).name for n in force]  # refuses unknown steps
        values = self._params(pipeline, resumed.params if resumed else params or {})
        if resumed is not None and params:
            raise InvalidArgumentError("a resumed run keeps its params; do not give new ones")
        inputs = self._resolve_inputs(pipeline, pinned=resumed.inputs if resumed else None)
        run = PipelineRun(
            id=new_id(),
            pipeline_id=info.id,
            pipeline=pipeline.name,
            run_id=None,
            status=RunStatus.RUNNING,
            params=values,
            digest=info.digest,
            executor=executor if isinstance(executor, str) else executor.name,
            forced=tuple(forced),
            created_by=self.actor,
            started_at=_now(),
            resumes=resumed.id if resumed else None,
            firing_id=firing_id,
            inputs={
                k: f"{v.name}@{v.version}" if hasattr(v, "version") else v.ref
                for k, v in inputs.items()
            },
        )
        steps = {
            name: StepRun(id=new_id(), pipeline_run_id=run.id, step=name, status=StepStatus.PENDING)
            for name in pipeline.order()
        }
        self.store.create_run(run, list(steps.values()))
        tracked = self.host.create_run(
            f"pipeline:{pipeline.name}",
            name=f"{pipeline.name}-{run.id[-6:]}",
            params=values,
            tags={
                "syllabus.pipeline": pipeline.name,
                "syllabus.pipeline_run": run.id,
                **({"syllabus.pipeline.resumes": resumed.id} if resumed else {}),
                **({"syllabus.trigger.firing": firing_id} if firing_id else {}),
            },
        )
        run = replace(run, run_id=tracked.id)
        self.store.update_run(run.id, tracked_run_id=tracked.id)
        walk = _Walk(
            self,
            pipeline,
            run,
            steps=steps,
            params=values,
            inputs=inputs,
            forced=set(forced),
            kept=kept,
            on_step=on_step,
        )
        own = isinstance(executor, str)
        ex = (
            make_executor(executor, max_workers=max_workers)
            if isinstance(executor, str)
            else executor
        )
        error: str | None = None
        try:
            walk.execute(ex)
        except BaseException as exc:
            error = f"{type(exc).__name__}: {exc}".splitlines()[0]
            walk.abandon(error)
            raise
        finally:
            if own:
                ex.close()
            failed = [s for s in walk.steps.values() if s.status is StepStatus.FAILED]
            status = RunStatus.SUCCEEDED if not failed and error is None else RunStatus.FAILED
            if failed and error is None:
                error = f"step {failed[0].step} failed: {failed[0].error}"
            ended = _now()
            self.store.update_run(run.id, status=status.value, ended_at=ended, error=error)
            self.host.end_run(
                tracked.id, "finished" if status is RunStatus.SUCCEEDED else "failed", error=error
            )
            run = replace(run, status=status, ended_at=ended, error=error)
        return self._result(run, [walk.steps[n] for n in pipeline.order()], walk.produced)

    def _abandon(self, run: PipelineRun) -> None:
        """End a run whose process is gone: what was running failed, the run too."""
        error = "abandoned: its process stopped; resumed by a new run"
        now = _now()
        for step in self.store.list_steps(run.id):
            if step.status is StepStatus.RUNNING:
                failed = replace(step, status=StepStatus.FAILED, error=error, ended_at=now)
                self.store.save_step(failed)
                if step.run_id:
                    with contextlib.suppress(SyllabusError):
                        self.host.end_run(step.run_id, "killed", error=error)
        self.store.update_run(run.id, status=RunStatus.FAILED.value, ended_at=now, error=error)
        if run.run_id:
            with contextlib.suppress(SyllabusError):
                self.host.end_run(run.run_id, "killed", error=error)

    def _params(self, pipeline: Pipeline, given: Mapping[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(given) - set(pipeline.params))
        if unknown:
            known = ", ".join(pipeline.params) or "none"
            raise InvalidArgumentError(
                f"pipeline {pipeline.name!r} has no param {unknown[0]!r} (params: {known})"
            )
        out = dict(pipeline.params)
        for k, v in given.items():
            out[k] = _coerce(v, pipeline.params[k])
            try:
                json.dumps(out[k], allow_nan=False)
            except (TypeError, ValueError):
                raise InvalidArgumentError(f"param {k!r} must be a JSON value") from None
        return out

    def _resolve_inputs(
        self, pipeline: Pipeline, *, pinned: Mapping[str, str] | None
    ) -> dict[str, Any]:
        """Each dataset and model reference of the pipeline, resolved once for the run
        (a resumed run uses the versions its original resolved)."""
        out: dict[str, Any] = {}
        for node in pipeline.steps:
            for arg in node.args.values():
                if arg.kind not in ("dataset", "model"):
                    continue
                key = f"{arg.kind}:{arg.value}"
                if key in out:
                    continue
                ref = (pinned or {}).get(key, arg.value)
                if arg.kind == "dataset":
                    out[key] = self.host.get_dataset(ref)
                else:
                    out[key] = self.host.get_model_version(ref)
        return out

    # -- reading ---------------------------------------------------------------------------

    def result(self, ref: str) -> PipelineResult:
        """A past pipeline run with its steps (outputs load from the store on demand)."""
        run = self.store.get_run(ref)
        rows = {s.step: s for s in self.store.list_steps(run.id)}
        try:
            order = Pipeline.from_json(self.store.get_pipeline(run.pipeline).definition).order()
        except (NotFoundError, InvalidArgumentError, KeyError):
            order = list(rows)
        order = [n for n in order if n in rows] + [n for n in rows if n not in order]
        return self._result(run, [rows[n] for n in order], {})

    def _result(
        self, run: PipelineRun, steps: Sequence[StepRun], produced: Mapping[str, Encoded]
    ) -> PipelineResult:
        results = tuple(
            StepResult(
                step=s.step,
                status=s.status,
                reason=s.reason or "",
                run_id=s.run_id,
                cache_key=s.cache_key,
                outputs=s.outputs,
                error=s.error,
                duration_ms=s.duration_ms,
            )
            for s in steps
        )
        return PipelineResult(run=run, steps=results, values=_Values(self.blobs, steps, produced))


class _Values(Mapping[str, Any]):
    """Step outputs, decoded when first asked for."""

    def __init__(
        self, blobs: BlobStore, steps: Sequence[StepRun], produced: Mapping[str, Encoded]
    ) -> None:
        self._blobs = blobs
        self._produced = dict(produced)
        self._rows = {
            s.step: s for s in steps if s.status.done and s.outputs and "value" in s.outputs
        }
        self._cache: dict[str, Any] = {}

    def __getitem__(self, step: str) -> Any:
        if step not in self._cache:
            enc = self._produced.get(step)
            if enc is None:
                row = self._rows[step]
                assert row.outputs is not None
                value = row.outputs["value"]
                enc = Encoded(value["format"], self._blobs.read_bytes(Digest(value["digest"])))
            self._cache[step] = decode(enc)
        return self._cache[step]

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(set(self._rows) | set(self._produced)))

    def __len__(self) -> int:
        return len(set(self._rows) | set(self._produced))


class _Walk:
    """One pipeline run's walk through its DAG."""

    def __init__(
        self,
        service: PipelineService,
        pipeline: Pipeline,
        run: PipelineRun,
        *,
        steps: dict[str, StepRun],
        params: Mapping[str, Any],
        inputs: Mapping[str, Any],
        forced: set[str],
        kept: Mapping[str, StepRun],
        on_step: StepEvent | None,
    ) -> None:
        self.s = service
        self.pipeline = pipeline
        self.run = run
        self.steps = steps
        self.params = params
        self.inputs = inputs
        self.forced = forced
        self.kept = kept
        self.on_step = on_step or (lambda step, status, reason: None)
        self.produced: dict[str, Encoded] = {}
        self.digests: dict[str, str] = {}
        self._previous: dict[str, Mapping[str, Any]] | None = None

    # -- bookkeeping -----------------------------------------------------------------------

    def _save(self, step: StepRun) -> None:
        self.steps[step.step] = step
        self.s.store.save_step(step)
        if step.status is not StepStatus.PENDING:
            self.on_step(step.step, step.status, step.reason or step.error or "")

    def _previous_fingerprints(self) -> dict[str, Mapping[str, Any]]:
        if self._previous is None:
            found: dict[str, Mapping[str, Any]] = {}
            for past in self.s.store.list_runs(self.pipeline.name, limit=20):
                if past.id == self.run.id:
                    continue
                for row in self.s.store.list_steps(past.id):
                    fp = (row.outputs or {}).get("fingerprint")
                    if fp and row.step not in found:
                        found[row.step] = fp
            self._previous = found
        return self._previous

    def _fingerprint(self, node: StepNode) -> dict[str, Any]:
        args: dict[str, Any] = {}
        for name, arg in node.args.items():
            if arg.kind == "value":
                args[name] = {"value": arg.value}
            elif arg.kind == "param":
                args[name] = {"value": self.params[arg.value]}
            elif arg.kind == "step":
                args[name] = {"step": arg.value, "key": arg.key, "digest": self.digests[arg.value]}
            elif arg.kind == "dataset":
                v = self.inputs[f"dataset:{arg.value}"]
                args[name] = {"dataset": f"{v.name}@{v.version}", "digest": v.tree}
            else:
                m = self.inputs[f"model:{arg.value}"]
                args[name] = {"model": m.ref, "digest": m.tree}
        fn = self.s._function(node)
        return {"uses": node.uses, "code": code_digest(fn), "args": args}

    def _kwargs(self, node: StepNode) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, arg in node.args.items():
            if arg.kind == "value":
                out[name] = arg.value
            elif arg.kind == "param":
                out[name] = self.params[arg.value]
            elif arg.kind == "step":
                enc = self._encoded(arg.value)
                out[name] = Encoded(enc.format, enc.data, arg.key)
            elif arg.kind == "dataset":
                v = self.inputs[f"dataset:{arg.value}"]
                out[name] = DatasetArg(f"{v.name}@{v.version}")
            else:
                out[name] = self.inputs[f"model:{arg.value}"].ref
        return out

    def _encoded(self, step: str) -> Encoded:
        enc = self.produced.get(step)
        if enc is None:
            row = self.steps[step]
            assert row.outputs is not None
            value = row.outputs["value"]
            enc = Encoded(value["format"], self.s.blobs.read_bytes(Digest(value["digest"])))
            self.produced[step] = enc
        return enc

    def _step_params(self, node: StepNode) -> dict[str, str]:
        out: dict[str, str] = {}
        for name, arg in node.args.items():
            if arg.kind == "value":
                out[name] = _canonical(arg.value) if not isinstance(arg.value, str) else arg.value
            elif arg.kind == "param":
                v = self.params[arg.value]
                out[name] = v if isinstance(v, str) else _canonical(v)
        return {k: v[:8000] for k, v in out.items()}

    def _tracked(self, node: StepNode, tags: Mapping[str, str]) -> str:
        from syllabus.tracking.models import RunInput

        assert self.run.run_id is not None
        tracked = self.s.host.create_run(
            f"pipeline:{self.pipeline.name}",
            name=node.name,
            parent=self.run.run_id,
            params=self._step_params(node),
            tags={
                "syllabus.pipeline": self.pipeline.name,
                "syllabus.pipeline_run": self.run.id,
                "syllabus.step": node.name,
                **tags,
            },
        )
        inputs = []
        for name, arg in node.args.items():
            if arg.kind == "dataset":
                v = self.inputs[f"dataset:{arg.value}"]
                inputs.append(
                    RunInput(
                        "dataset", v.id, name=f"{v.name}@{v.version}", digest=v.tree, role=name
                    )
                )
            elif arg.kind == "model":
                m = self.inputs[f"model:{arg.value}"]
                inputs.append(RunInput("model_version", m.id, name=m.ref, digest=m.tree, role=name))
        if inputs:
            self.s.host.log_inputs(tracked.id, inputs)
        return tracked.id

    # -- the walk --------------------------------------------------------------------------

    def execute(self, executor: Executor) -> None:
        order = self.pipeline.order()
        running: dict[cf.Future[StepOutcome], tuple[str, dict[str, Any], str, int]] = {}
        while True:
            progressed = self._schedule(order, executor, running)
            if not running:
                if not progressed:
                    break
                continue
            done, _ = cf.wait(list(running), return_when=cf.FIRST_COMPLETED)
            for future in done:
                name, fingerprint, key, started = running.pop(future)
                try:
                    outcome = future.result()
                except BaseException as exc:  # noqa: BLE001 - a worker that died
                    outcome = StepOutcome(ok=False, error=f"{type(exc).__name__}: {exc}")
                self._finish(name, fingerprint, key, started, outcome)

    def _schedule(
        self,
        order: Sequence[str],
        executor: Executor,
        running: dict[cf.Future[StepOutcome], tuple[str, dict[str, Any], str, int]],
    ) -> bool:
        progressed = False
        active = {v[0] for v in running.values()}
        for name in order:
            row = self.steps[name]
            if row.status is not StepStatus.PENDING or name in active:
                continue
            node = self.pipeline.node(name)
            ups = [self.steps[u] for u in node.upstream]
            bad = [u for u in ups if u.status in (StepStatus.FAILED, StepStatus.SKIPPED)]
            if bad:
                self._save(
                    replace(
                        row,
                        status=StepStatus.SKIPPED,
                        reason=f"upstream step {bad[0].step} {bad[0].status.value}",
                    )
                )
                progressed = True
                continue
            if not all(u.status.done for u in ups):
                continue
            progressed = True
            self._start(node, row, executor, running)
        return progressed

    def _start(
        self,
        node: StepNode,
        row: StepRun,
        executor: Executor,
        running: dict[cf.Future[StepOutcome], tuple[str, dict[str, Any], str, int]],
    ) -> None:
        name = node.name
        kept = self.kept.get(name)
        fingerprint = self._fingerprint(node)
        key = _key(fingerprint)
        if kept is not None and name not in self.forced:
            assert kept.outputs is not None
            self._reuse(
                node,
                row,
                fingerprint=fingerprint,
                key=key,
                outputs=kept.outputs,
                source_step_run=kept.id,
                reason=f"kept from run {kept.pipeline_run_id[:12]}",
            )
            return
        entry = self.s.store.get_cache(key) if node.cache and name not in self.forced else None
        if entry is not None and self.s.blobs.has(Digest(entry.digest)):
            self._reuse(
                node,
                row,
                fingerprint=fingerprint,
                key=key,
                outputs=entry.outputs,
                source_step_run=entry.step_run_id,
                reason="unchanged (same code, params and inputs)",
            )
            return
        if name in self.forced:
            reason = "forced (--force)"
        elif not node.cache:
            reason = "not cached (cache=False)"
        else:
            reason = _diff(self._previous_fingerprints().get(name), fingerprint)
        started = _now()
        run_id = self._tracked(node, {"syllabus.step.cache_key": key})
        self._save(
            replace(
                row,
                status=StepStatus.RUNNING,
                run_id=run_id,
                cache_key=key,
                reason=reason,
                started_at=started,
                outputs={"fingerprint": fingerprint},
            )
        )
        task = StepTask(
            step=name,
            uses=node.uses,
            run_id=run_id,
            pipeline_run_id=self.run.id,
            kwargs=self._kwargs(node),
            host_factory=self.s.host_factory,
            sys_path=tuple(p for p in ([str(self.s.root)] if self.s.root else [])),
            root=str(self.s.root) if self.s.root else None,
        )
        try:
            future = executor.submit(task)
        except Exception as exc:  # noqa: BLE001 - a task that cannot be sent fails its step
            future = cf.Future()
            future.set_result(StepOutcome(ok=False, error=f"{type(exc).__name__}: {exc}"))
        running[future] = (name, fingerprint, key, started)

    def _reuse(
        self,
        node: StepNode,
        row: StepRun,
        *,
        fingerprint: dict[str, Any],
        key: str,
        outputs: Mapping[str, Any],
        source_step_run: str,
        reason: str,
    ) -> None:
        now = _now()
        run_id = self._tracked(
            node, {"syllabus.step.cache_key": key, "syllabus.step.cached_from": source_step_run}
        )
        self.s.host.end_run(run_id, "finished")
        self.digests[node.name] = outputs["value"]["digest"]
        self._save(
            replace(
                row,
                status=StepStatus.CACHED,
                run_id=run_id,
                cache_key=key,
                cached_from=source_step_run,
                reason=reason,
                outputs={**outputs, "fingerprint": fingerprint},
                started_at=now,
                ended_at=now,
            )
        )

    def _finish(
        self,
        name: str,
        fingerprint: dict[str, Any],
        key: str,
        started: int,
        outcome: StepOutcome,
    ) -> None:
        row = self.steps[name]
        assert row.run_id is not None
        node = self.pipeline.node(name)
        if not outcome.ok or outcome.output is None:
            if outcome.traceback:
                try:
                    self._log_text(row.run_id, outcome.traceback, "traceback.txt")
                except SyllabusError:  # pragma: no cover - keep the step's own error
                    log.exception("could not store the traceback of step %s", name)
            self.s.host.end_run(row.run_id, "failed", error=outcome.error)
            self._save(
                replace(
                    row,
                    status=StepStatus.FAILED,
                    error=outcome.error or "failed",
                    ended_at=_now(),
                )
            )
            return
        enc = outcome.output
        digest = str(self.s.blobs.put_bytes(enc.data))
        self.s.blobs.flush()
        self.produced[name] = enc
        self.digests[name] = digest
        suffix = "json" if enc.format == "json" else "pkl"
        artifact = self._log_bytes(row.run_id, enc.data, f"output.{suffix}")
        outputs: dict[str, Any] = {
            "value": {"digest": digest, "format": enc.format, "size": len(enc.data)},
            "artifacts": [{"path": artifact, "digest": digest}] if artifact else [],
            **{k: v for k, v in outcome.described.items() if k != "artifacts"},
        }
        if "artifacts" in outcome.described:
            outputs["artifacts"] = outputs["artifacts"] + list(outcome.described["artifacts"])
        self.s.host.end_run(row.run_id, "finished")
        if node.cache:
            self.s.store.put_cache(
                CacheEntry(
                    key=key,
                    step=name,
                    digest=digest,
                    format=enc.format,
                    outputs=outputs,
                    step_run_id=row.id,
                    created_at=_now(),
                )
            )
        self._save(
            replace(
                row,
                status=StepStatus.SUCCEEDED,
                outputs={**outputs, "fingerprint": fingerprint},
                ended_at=_now(),
            )
        )

    def _log_text(self, run_id: str, text: str, name: str) -> None:
        self._log_bytes(run_id, text.encode(), name)

    def _log_bytes(self, run_id: str, data: bytes, name: str) -> str | None:
        fd, tmp = tempfile.mkstemp(prefix="syllabus-step-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            return self.s.host.log_artifact(run_id, tmp, name).path
        finally:
            Path(tmp).unlink(missing_ok=True)

    def abandon(self, error: str) -> None:
        """Mark what did not finish after an interruption (the run can be resumed)."""
        for row in list(self.steps.values()):
            if row.status is StepStatus.RUNNING:
                if row.run_id:
                    self.s.host.end_run(row.run_id, "killed", error=error)
                self._save(replace(row, status=StepStatus.FAILED, error=error, ended_at=_now()))
