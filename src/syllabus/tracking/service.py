"""Tracking behaviour on top of any :class:`~syllabus.tracking.store.TrackingStore`.

Validation and limits (see :mod:`~syllabus.tracking.models`), defaults (run names, user,
host, the ``Default`` experiment), buffered metric logging, heartbeats of the runs this
process owns, artifacts' bytes in the blob store, and purging soft-deleted runs.
"""

from __future__ import annotations

import functools
import getpass
import math
import os
import random
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from syllabus._utils.ids import is_id, new_id
from syllabus.blobs.manifest import check_relpath
from syllabus.errors import (
    AlreadyExistsError,
    ConflictError,
    InvalidArgumentError,
    NotFoundError,
    PathEscapeError,
)
from syllabus.tracking.buffer import MetricBuffer
from syllabus.tracking.models import (
    MAX_KEY,
    MAX_NAME,
    MAX_VALUE,
    Artifact,
    Experiment,
    Metric,
    Run,
    RunInput,
    RunPage,
    RunStatus,
)
from syllabus.tracking.store import DeletedFilter, RunEnd, TrackingStore

if TYPE_CHECKING:
    from syllabus.blobs.store import BlobStore
    from syllabus.tracking.sysmetrics import SystemMetrics

__all__ = ["DEFAULT_EXPERIMENT", "TrackingService"]

DEFAULT_EXPERIMENT: Final = "Default"
_INT64: Final = 2**63 - 1
_ENDED: Final = {RunStatus.FINISHED.value, RunStatus.FAILED.value, RunStatus.KILLED.value}
_ADJECTIVES: Final = (
    "amber", "bold", "brisk", "calm", "clever", "crisp", "eager", "fair", "gentle", "glad",
    "keen", "lively", "lucky", "merry", "nimble", "proud", "quick", "quiet", "rapid", "shy",
    "sunny", "swift", "tidy", "vivid", "warm", "wise", "witty", "young", "zesty", "noble",
)  # fmt: skip
_NOUNS: Final = (
    "ant", "bear", "cat", "crane", "deer", "dove", "eel", "finch", "fox", "frog", "goat",
    "hare", "hawk", "heron", "ibis", "koala", "lark", "lion", "lynx", "mole", "newt", "otter",
    "owl", "panda", "quail", "robin", "seal", "swan", "tiger", "wolf", "yak", "zebra",
)  # fmt: skip


_HOST: Final = socket.gethostname()[:MAX_NAME]
_CONTROL: Final = re.compile("[\x00-\x1f\x7f]")


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _check_text(what: str, text: object, limit: int) -> str:
    if not isinstance(text, str):
        raise InvalidArgumentError(f"{what} must be text, not {type(text).__name__}")
    if not text or text != text.strip():
        raise InvalidArgumentError(f"{what} {text!r} is empty or has surrounding spaces")
    if len(text) > limit:
        raise InvalidArgumentError(
            f"{what} {text[:40]!r}... has {len(text)} characters (at most {limit})"
        )
    if _CONTROL.search(text):
        raise InvalidArgumentError(f"{what} {text!r} contains control characters")
    return text


def _check_value(what: str, key: str, value: object) -> str:
    text = value if isinstance(value, str) else str(value)
    if len(text) > MAX_VALUE:
        raise InvalidArgumentError(
            f"{what} {key!r} has a value of {len(text)} characters (at most {MAX_VALUE}); "
            "log long text as an artifact (log_text)"
        )
    return text


def _check_number(key: str, value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidArgumentError(
            f"metric {key!r} needs a number, not {type(value).__name__} {value!r:.40}"
        ) from None


def _check_step(step: object) -> int:
    if isinstance(step, bool) or not isinstance(step, int):
        try:
            as_int: int = int(step)  # type: ignore[call-overload]
        except (TypeError, ValueError):
            raise InvalidArgumentError(f"step must be an integer, not {step!r:.40}") from None
        if as_int != step:
            raise InvalidArgumentError(f"step must be an integer, not {step!r:.40}")
    else:
        as_int = step
    if not -_INT64 <= as_int <= _INT64:
        raise InvalidArgumentError(f"step {as_int} is out of range (64-bit integers)")
    return as_int


def random_run_name() -> str:
    """``adjective-noun-NNN``, like ``swift-otter-042``."""
    rnd = random.SystemRandom()
    return f"{rnd.choice(_ADJECTIVES)}-{rnd.choice(_NOUNS)}-{rnd.randrange(1000):03d}"


@functools.cache
def _user() -> str:
    try:
        return getpass.getuser()[:MAX_NAME] or "unknown"
    except (KeyError, OSError):
        return "unknown"


class TrackingService:
    """Experiments and runs over a store, with buffered metrics and artifacts in ``blobs``.

    ``blobs`` is called when bytes are first needed (so metadata-only work never opens
    the blob store). Thread-safe.
    """

    def __init__(
        self,
        store: TrackingStore,
        blobs: Callable[[], BlobStore],
        *,
        heartbeat_interval: float = 30.0,
        flush_interval: float = 0.5,
        system_metrics: bool = False,
        system_metrics_interval: float = 10.0,
    ) -> None:
        self.store = store
        self._blobs = blobs
        self.system_metrics = system_metrics
        self.system_metrics_interval = system_metrics_interval
        self._lock = threading.Lock()
        self._active: set[str] = set()
        self._samplers: dict[str, SystemMetrics] = {}
        self._valid_keys: set[str] = set()
        self._experiment_ids: dict[str, str] = {}  # name -> id, checked by create_run
        self.buffer = MetricBuffer(
            store.log_metrics,
            interval=flush_interval,
            tick=self._heartbeat,
            tick_interval=heartbeat_interval,
        )

    # -- experiments -----------------------------------------------------------------------

    def create_experiment(self, name: str, description: str | None = None) -> Experiment:
        return self.store.create_experiment(
            _check_text("experiment name", name, MAX_NAME), description
        )

    def get_experiment(self, ref: str) -> Experiment:
        """By id, unique id prefix, or name."""
        try:
            return self.store.get_experiment(ref)
        except NotFoundError:
            return self.store.get_experiment(ref, by_name=True)

    def get_experiment_by_name(self, name: str) -> Experiment:
        return self.store.get_experiment(name, by_name=True)

    def get_or_create_experiment(self, name: str) -> Experiment:
        try:
            return self.store.get_experiment(name, by_name=True)
        except NotFoundError:
            pass
        try:
            return self.create_experiment(name)
        except AlreadyExistsError:  # created meanwhile by another process or thread
            return self.store.get_experiment(name, by_name=True)

    def search_experiments(
        self, *, name_like: str | None = None, deleted: DeletedFilter = "active"
    ) -> list[Experiment]:
        found = self.store.list_experiments(deleted=deleted)
        if name_like:
            import fnmatch

            pattern = name_like.replace("%", "*").replace("_", "?")
            found = [e for e in found if fnmatch.fnmatchcase(e.name, pattern)]
        return found

    def rename_experiment(self, ref: str, new_name: str) -> Experiment:
        exp = self.get_experiment(ref)
        return self.store.update_experiment(
            exp.id, name=_check_text("experiment name", new_name, MAX_NAME)
        )

    def delete_experiment(self, ref: str) -> Experiment:
        return self.store.update_experiment(self.get_experiment(ref).id, deleted=True)

    def restore_experiment(self, ref: str) -> Experiment:
        try:
            exp = self.get_experiment(ref)
        except NotFoundError:
            matches = [e for e in self.store.list_experiments(deleted="deleted") if e.name == ref]
            if not matches:
                raise
            exp = matches[-1]
        return self.store.update_experiment(exp.id, deleted=False)

    # -- runs ------------------------------------------------------------------------------

    def create_run(
        self,
        experiment: str | None = None,
        *,
        name: str | None = None,
        tags: Mapping[str, object] | None = None,
        params: Mapping[str, object] | None = None,
        parent: str | None = None,
        start_time: int | None = None,
        system_metrics: bool | None = None,
    ) -> Run:
        """A running run in ``experiment`` (id, prefix or name; created when a new name;
        ``Default`` when None). Its heartbeat is sent by this process until it ends."""
        ref = DEFAULT_EXPERIMENT if experiment is None else experiment
        run_name = _check_text("run name", name, MAX_NAME) if name is not None else None
        values = {
            "run_id": new_id(),
            "name": run_name or random_run_name(),
            "user": _user(),
            "host": _HOST,
            "start_time": start_time if start_time is not None else _now_ms(),
            "parent_id": parent,
            "params": self._params(params),
            "tags": self._tags(tags),
        }
        exp_id = ref if is_id(ref) else self._experiment_ids.get(ref)
        run = None
        if exp_id is not None:
            try:
                run = self.store.create_run(exp_id, **values)  # type: ignore[arg-type]
            except (NotFoundError, ConflictError):
                if is_id(ref):
                    raise
                self._experiment_ids.pop(ref, None)  # renamed or deleted meanwhile
        if run is None:
            try:
                exp = self.get_experiment(ref)
            except NotFoundError:
                exp = self.get_or_create_experiment(ref)
            run = self.store.create_run(exp.id, **values)  # type: ignore[arg-type]
            if not is_id(ref):
                self._experiment_ids[ref] = exp.id
        with self._lock:
            self._active.add(run.id)
        self.buffer.ensure_started()
        if self.system_metrics if system_metrics is None else system_metrics:
            self.start_system_metrics(run.id)
        return run

    def get_run(self, ref: str) -> Run:
        self.buffer.flush()
        return self.store.get_run(ref)

    def end_run(
        self,
        ref: str,
        status: str | RunStatus = RunStatus.FINISHED,
        *,
        error: str | None = None,
        end_time: int | None = None,
    ) -> None:
        """Flush the run's metrics, stop its heartbeat and mark it ended."""
        status = str(RunStatus(status) if not isinstance(status, RunStatus) else status)
        if status not in _ENDED:
            raise InvalidArgumentError(f"a run ends as finished, failed or killed, not {status!r}")
        with self._lock:
            known = ref in self._active
        # A run this process started exists; any other is looked up first, so that a
        # wrong id fails before the flush instead of inside it.
        run_id = ref if known else self.store.get_run(ref).id
        self.stop_system_metrics(run_id)
        end = RunEnd(
            run_id,
            status,
            end_time if end_time is not None else _now_ms(),
            error[:MAX_VALUE] if error else None,
        )
        # The run's last points and its end are one transaction.
        self.buffer.flush(lambda batch: self.store.log_metrics(batch, end=end))
        with self._lock:
            self._active.discard(run_id)

    def delete_run(self, ref: str) -> None:
        self.store.update_run(ref, deleted=True)

    def restore_run(self, ref: str) -> None:
        self.store.update_run(ref, deleted=False)

    def search_runs(
        self,
        experiments: Sequence[str] | str | None = None,
        *,
        filter: str | None = None,
        order_by: Sequence[str] | str | None = None,
        max_results: int = 1000,
        page_token: str | None = None,
        parent: str | None = None,
        deleted: DeletedFilter = "active",
    ) -> RunPage:
        self.buffer.flush()
        if isinstance(experiments, str):
            experiments = [experiments]
        if isinstance(order_by, str):
            order_by = [order_by]
        exp_ids = None
        if experiments is not None:
            exp_ids = [self.get_experiment(e).id for e in experiments]
        return self.store.search_runs(
            exp_ids,
            filter=filter,
            order_by=order_by,
            max_results=max_results,
            page_token=page_token,
            parent_id=parent,
            deleted=deleted,
        )

    def _heartbeat(self) -> None:
        with self._lock:
            active = sorted(self._active)
        if active:
            self.store.heartbeat(active, _now_ms())

    # -- params, tags, metrics -------------------------------------------------------------

    def _params(self, params: Mapping[str, object] | None) -> dict[str, str]:
        return {
            _check_text("param key", k, MAX_KEY): _check_value("param", k, v)
            for k, v in (params or {}).items()
        }

    def _tags(self, tags: Mapping[str, object] | None) -> dict[str, str]:
        return {
            _check_text("tag key", k, MAX_KEY): _check_value("tag", k, v)
            for k, v in (tags or {}).items()
        }

    def log_params(self, run_id: str, params: Mapping[str, object]) -> None:
        self.store.log_batch(run_id, params=self._params(params))

    def set_tags(self, run_id: str, tags: Mapping[str, object]) -> None:
        self.store.log_batch(run_id, tags=self._tags(tags))

    def _metric_key(self, key: str) -> str:
        if key not in self._valid_keys:
            _check_text("metric key", key, MAX_KEY)
            self._valid_keys.add(key)
        return key

    def log_metric(
        self,
        run_id: str,
        key: str,
        value: float,
        step: int | None = None,
        timestamp: int | None = None,
    ) -> None:
        """Queue one point; never waits on the database."""
        if key not in self._valid_keys:
            self._metric_key(key)
        if type(value) is not float:
            value = _check_number(key, value)
        self.buffer.add(
            run_id,
            key,
            value,
            0 if step is None else _check_step(step),
            _now_ms() if timestamp is None else int(timestamp),
        )

    def log_metrics(  # noqa: PLR0912 - the batch hot path is kept in one loop
        self,
        run_id: str,
        metrics: Mapping[str, float] | Iterable[Metric | tuple[str, float, int, int]],
        step: int | None = None,
        timestamp: int | None = None,
    ) -> None:
        """Queue many points: a ``{key: value}`` mapping at one step, or Metric points
        (or ``(key, value, step, timestamp)`` tuples, the fastest form)."""
        ts = _now_ms() if timestamp is None else int(timestamp)
        grouped: dict[str, list[tuple[int, int, float]]] = {}
        valid = self._valid_keys
        n = 0
        key: Any
        value: Any
        st: Any
        if isinstance(metrics, Mapping):
            st = 0 if step is None else _check_step(step)
            for key, raw in metrics.items():
                if key not in valid:
                    self._metric_key(key)
                value = raw if type(raw) is float else _check_number(key, raw)
                grouped.setdefault(key, []).append((st, ts, value))
                n += 1
        else:
            # The hot path of batch logging: one pass, no calls for well-typed points.
            series: list[tuple[int, int, float]] | None = None
            last_key = None
            t: Any
            for m in metrics:
                if isinstance(m, Metric):
                    key, value, st, t = m.key, m.value, m.step, m.timestamp
                else:
                    key, value, st, t = m
                if key is not last_key:
                    if key not in valid:
                        self._metric_key(key)
                    series = grouped.get(key)
                    if series is None:
                        series = grouped[key] = []
                    last_key = key
                if type(value) is not float:
                    value = _check_number(key, value)
                if type(st) is not int or not -_INT64 <= st <= _INT64:
                    st = _check_step(st)
                assert series is not None
                series.append((st, int(t), value))
                n += 1
        if n:
            self.buffer.add_series(run_id, grouped, n)

    def log_batch(
        self,
        run_id: str,
        *,
        metrics: Iterable[Metric | tuple[str, float, int, int]] = (),
        params: Mapping[str, object] | None = None,
        tags: Mapping[str, object] | None = None,
        synchronous: bool = False,
    ) -> None:
        """Params and tags now; metrics queued (written before return when ``synchronous``)."""
        if params or tags:
            self.store.log_batch(run_id, params=self._params(params), tags=self._tags(tags))
        self.log_metrics(run_id, metrics)
        if synchronous:
            self.buffer.flush()

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        self.buffer.flush()
        return self.store.get_metric_history(run_id, key)

    def flush(self) -> None:
        """Make every queued metric point durable."""
        self.buffer.flush()

    # -- system metrics --------------------------------------------------------------------

    def start_system_metrics(self, run_id: str, interval: float | None = None) -> None:
        """Sample CPU, memory, disk, network (and GPUs via NVML) into ``system/*`` metrics."""
        from syllabus.tracking.sysmetrics import SystemMetrics

        with self._lock:
            if run_id in self._samplers:
                return
            sampler = SystemMetrics(
                lambda points: self.buffer.add_many(run_id, points),
                interval=interval or self.system_metrics_interval,
            )
            self._samplers[run_id] = sampler
        sampler.start()

    def stop_system_metrics(self, run_id: str) -> None:
        with self._lock:
            sampler = self._samplers.pop(run_id, None)
        if sampler is not None:
            sampler.stop()

    # -- artifacts -------------------------------------------------------------------------

    def _check_artifact_path(self, path: str) -> str:
        path = path.replace(os.sep, "/") if os.sep != "/" else path
        path = path.rstrip("/")
        check_relpath(path)
        if len(path) > 1024:
            raise InvalidArgumentError(f"artifact path {path[:40]!r}... is over 1024 characters")
        return path

    def log_artifact(self, run_id: str, path: str | Path, name: str | None = None) -> Artifact:
        """Store one file as ``name`` (a run-relative path; default: the file's name)."""
        source = Path(path)
        if not source.is_file():
            raise NotFoundError(f"cannot log artifact {source}: not a file")
        dest = self._check_artifact_path(name if name is not None else source.name)
        full = self.store.get_run(run_id).id
        entry = self._blobs().put_file(source)
        artifact = Artifact(dest, str(entry.digest), entry.size)
        self.store.add_artifacts(full, [artifact])
        return artifact

    def log_artifacts(
        self, run_id: str, folder: str | Path, artifact_path: str | None = None
    ) -> list[Artifact]:
        """Store every file under ``folder`` (optionally under ``artifact_path`` in the run)."""
        source = Path(folder)
        if not source.is_dir():
            raise NotFoundError(f"cannot log artifacts from {source}: not a folder")
        prefix = self._check_artifact_path(artifact_path) + "/" if artifact_path else ""
        full = self.store.get_run(run_id).id
        tree = self._blobs().put_tree(source)
        found = [
            Artifact(prefix + e.path, str(e.digest), e.size)
            for e in tree.manifest.values()
            if e.kind == "file"
        ]
        self.store.add_artifacts(full, found)
        return found

    def log_bytes(self, run_id: str, data: bytes, name: str) -> Artifact:
        """Store ``data`` as the artifact ``name``."""
        dest = self._check_artifact_path(name)
        full = self.store.get_run(run_id).id
        blobs = self._blobs()
        digest = blobs.put_bytes(data)
        blobs.flush()
        artifact = Artifact(dest, str(digest), len(data))
        self.store.add_artifacts(full, [artifact])
        return artifact

    def list_artifacts(self, run_id: str, path: str = "") -> list[Artifact]:
        return self.store.list_artifacts(run_id, path.strip("/"))

    def read_artifact(self, run_id: str, path: str) -> bytes:
        found = [a for a in self.store.list_artifacts(run_id, path) if a.path == path.strip("/")]
        if not found:
            raise NotFoundError(
                f"run {run_id} has no artifact {path!r}; `syllabus runs artifacts {run_id}` "
                "lists them"
            )
        from syllabus.blobs.digest import Digest

        return self._blobs().read_bytes(Digest(found[0].digest))

    def download_artifacts(self, run_id: str, path: str = "", dest: str | Path = ".") -> Path:
        """Write the artifact ``path`` (a file, a folder, or "" for all) under ``dest``;
        returns the local path of what was asked for."""
        from syllabus.blobs.digest import Digest

        path = path.strip("/")
        found = self.store.list_artifacts(run_id, path)
        if not found:
            raise NotFoundError(
                f"run {run_id} has no artifact {path or '(none at all)'!r}; "
                f"`syllabus runs artifacts {run_id}` lists them"
            )
        root = Path(dest)
        root.mkdir(parents=True, exist_ok=True)
        real_root = root.resolve()
        blobs = self._blobs()
        for artifact in found:
            target = root / check_relpath(artifact.path)
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.parent.resolve().is_relative_to(real_root):
                raise PathEscapeError(f"artifact {artifact.path!r} would leave {root}")
            blobs.get_file(Digest(artifact.digest), target, fsync=False)
        return root / path if path else root

    # -- lineage and retention -------------------------------------------------------------

    def log_inputs(self, run_id: str, inputs: Sequence[RunInput]) -> None:
        for item in inputs:
            _check_text("input kind", item.kind, 32)
            _check_text("input target id", item.target_id, 64)
            _check_text("input role", item.role, 64)
        self.store.log_inputs(run_id, inputs)

    def list_inputs(self, run_id: str) -> list[RunInput]:
        return self.store.list_inputs(run_id)

    def runs_with_input(self, kind: str, target_id: str) -> list[RunInput]:
        return self.store.runs_with_input(kind, target_id)

    def purge_deleted(self, older_than_seconds: float) -> int:
        """Remove runs soft-deleted (or in experiments deleted) more than
        ``older_than_seconds`` ago, with their rows and blob references; returns how many."""
        if older_than_seconds < 0 or math.isnan(older_than_seconds):
            raise InvalidArgumentError("older_than_seconds must be zero or more")
        return self.store.purge_deleted(_now_ms() - int(older_than_seconds * 1000))

    def close(self) -> None:
        """Stop samplers and flush (runs stay running: the process may still use them)."""
        with self._lock:
            samplers = list(self._samplers)
        for run_id in samplers:
            self.stop_system_metrics(run_id)
        self.buffer.close()

    def active_runs(self) -> list[str]:
        with self._lock:
            return sorted(self._active)
