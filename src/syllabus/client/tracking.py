"""Experiment tracking on the :class:`~syllabus.client.Client`: MLflow-like calls with
explicit run ids, for programs that manage many runs (sweeps, workers).

Run and experiment arguments accept a full id or a unique prefix of at least 6 characters;
experiment arguments also accept a name. Metric logging is buffered: ``log_metric`` returns
at once and a background thread writes points in bulk; ``flush()``, ``end_run()``,
``close()`` and interpreter exit make them durable, and reads (``get_run``, ``search_runs``,
``get_metric_history``) flush first.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from syllabus.client.local import LocalBackend
    from syllabus.tracking.compare import RunComparison
    from syllabus.tracking.models import (
        Artifact,
        Experiment,
        Metric,
        Run,
        RunInput,
        RunPage,
        RunStatus,
    )
    from syllabus.tracking.service import TrackingService
    from syllabus.tracking.store import DeletedFilter

__all__ = ["TrackingAPI"]


class TrackingAPI:
    """The tracking methods of :class:`~syllabus.client.Client` (a mixin)."""

    if TYPE_CHECKING:

        def _open(self, *, write: bool) -> LocalBackend: ...

    def _tracking(self, *, write: bool = True) -> TrackingService:
        return self._open(write=write).tracking

    # -- experiments -----------------------------------------------------------------------

    def create_experiment(self, name: str, *, description: str | None = None) -> Experiment:
        """A new experiment; AlreadyExistsError when one with this name is live."""
        return self._tracking().create_experiment(name, description)

    def get_experiment(self, ref: str) -> Experiment:
        """An experiment by id, unique id prefix or name."""
        return self._tracking(write=False).get_experiment(ref)

    def get_experiment_by_name(self, name: str) -> Experiment:
        return self._tracking(write=False).get_experiment_by_name(name)

    def search_experiments(
        self, *, name_like: str | None = None, deleted: DeletedFilter = "active"
    ) -> list[Experiment]:
        """Experiments by creation time; ``name_like`` is a LIKE pattern (``%``, ``_``)."""
        return self._tracking(write=False).search_experiments(name_like=name_like, deleted=deleted)

    def rename_experiment(self, ref: str, new_name: str) -> Experiment:
        return self._tracking().rename_experiment(ref, new_name)

    def delete_experiment(self, ref: str) -> Experiment:
        """Soft-delete an experiment and hide its runs; its name is free again at once."""
        return self._tracking().delete_experiment(ref)

    def restore_experiment(self, ref: str) -> Experiment:
        return self._tracking().restore_experiment(ref)

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
        """Start a run in ``experiment`` (id, prefix or name; a new name creates it;
        ``Default`` when None). This client sends its heartbeat until ``end_run``."""
        return self._tracking().create_run(
            experiment,
            name=name,
            tags=tags,
            params=params,
            parent=parent,
            start_time=start_time,
            system_metrics=system_metrics,
        )

    def get_run(self, run_id: str) -> Run:
        """A run with its params, tags and the latest value of each metric."""
        return self._tracking(write=False).get_run(run_id)

    def compare_runs(self, run_ids: Sequence[str], *, all_params: bool = False) -> RunComparison:
        """Runs side by side: params that differ (all with ``all_params``) and metrics."""
        from syllabus.tracking.compare import compare_runs

        return compare_runs([self.get_run(r) for r in run_ids], all_params=all_params)

    def end_run(
        self,
        run_id: str,
        status: str | RunStatus = "finished",
        *,
        error: str | None = None,
        end_time: int | None = None,
    ) -> None:
        """Flush and mark the run finished, failed or killed."""
        self._tracking().end_run(run_id, status, error=error, end_time=end_time)

    set_terminated = end_run

    def delete_run(self, run_id: str) -> None:
        """Soft-delete a run (``restore_run`` undoes it; ``store gc`` purges it later)."""
        self._tracking().delete_run(run_id)

    def restore_run(self, run_id: str) -> None:
        self._tracking().restore_run(run_id)

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
        """Runs matching ``filter`` (see docs/tracking.md), ``max_results`` at a time;
        ``page.next_page_token`` fetches the next page. ``parent`` restricts to its children."""
        return self._tracking(write=False).search_runs(
            experiments,
            filter=filter,
            order_by=order_by,
            max_results=max_results,
            page_token=page_token,
            parent=parent,
            deleted=deleted,
        )

    # -- params, tags, metrics -------------------------------------------------------------

    def log_param(self, run_id: str, key: str, value: object) -> None:
        """Params are immutable: a different value for a logged key is a ConflictError."""
        self._tracking().log_params(run_id, {key: value})

    def log_params(self, run_id: str, params: Mapping[str, object]) -> None:
        self._tracking().log_params(run_id, params)

    def set_tag(self, run_id: str, key: str, value: object) -> None:
        self._tracking().set_tags(run_id, {key: value})

    def set_tags(self, run_id: str, tags: Mapping[str, object]) -> None:
        self._tracking().set_tags(run_id, tags)

    def log_metric(
        self,
        run_id: str,
        key: str,
        value: float,
        step: int | None = None,
        timestamp: int | None = None,
    ) -> None:
        """Queue one point (step 0 and now when omitted); returns without waiting."""
        self._tracking().log_metric(run_id, key, value, step, timestamp)

    def log_metrics(
        self,
        run_id: str,
        metrics: Mapping[str, float] | Iterable[Metric | tuple[str, float, int, int]],
        step: int | None = None,
        timestamp: int | None = None,
    ) -> None:
        """Queue ``{key: value}`` at one step, or Metric points (or ``(key, value, step,
        timestamp)`` tuples, the fastest form)."""
        self._tracking().log_metrics(run_id, metrics, step, timestamp)

    def log_batch(
        self,
        run_id: str,
        *,
        metrics: Iterable[Metric | tuple[str, float, int, int]] = (),
        params: Mapping[str, object] | None = None,
        tags: Mapping[str, object] | None = None,
        synchronous: bool = False,
    ) -> None:
        """Params and tags at once, metrics queued (durable on return when ``synchronous``)."""
        self._tracking().log_batch(
            run_id, metrics=metrics, params=params, tags=tags, synchronous=synchronous
        )

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Every point of a metric, by step then timestamp."""
        return self._tracking(write=False).get_metric_history(run_id, key)

    def flush(self) -> None:
        """Make every queued metric point durable."""
        if getattr(self, "_backend", None) is not None:
            self._tracking().flush()

    # -- artifacts -------------------------------------------------------------------------

    def log_artifact(self, run_id: str, path: str | Path, name: str | None = None) -> Artifact:
        """Store a file as artifact ``name`` (a run-relative path; default: its file name)."""
        return self._tracking().log_artifact(run_id, path, name)

    def log_artifacts(
        self, run_id: str, folder: str | Path, artifact_path: str | None = None
    ) -> list[Artifact]:
        """Store every file under ``folder``, optionally below ``artifact_path``."""
        return self._tracking().log_artifacts(run_id, folder, artifact_path)

    def log_text(self, run_id: str, text: str, name: str) -> Artifact:
        """Store ``text`` (UTF-8) as the artifact ``name``."""
        return self._tracking().log_bytes(run_id, text.encode("utf-8"), name)

    def log_dict(self, run_id: str, data: Mapping[str, Any], name: str) -> Artifact:
        """Store ``data`` as JSON (or YAML when ``name`` ends in .yaml/.yml and PyYAML is
        installed) as the artifact ``name``."""
        if name.endswith((".yaml", ".yml")):
            try:
                import yaml  # type: ignore[import-untyped,unused-ignore]

                text = yaml.safe_dump(dict(data), sort_keys=False)
            except ImportError:
                text = json.dumps(data, indent=2, default=str)
        else:
            text = json.dumps(data, indent=2, default=str)
        return self.log_text(run_id, text, name)

    def log_figure(self, run_id: str, figure: Any, name: str) -> Artifact:
        """Store a matplotlib figure (any format it can save, by ``name``'s suffix) or a
        plotly figure (``.html``, or an image format when kaleido is installed)."""
        import io

        if hasattr(figure, "savefig"):
            buf = io.BytesIO()
            suffix = Path(name).suffix.lstrip(".") or "png"
            figure.savefig(buf, format=suffix)
            return self._tracking().log_bytes(run_id, buf.getvalue(), name)
        if hasattr(figure, "to_html"):
            if name.endswith(".html"):
                html = figure.to_html(include_plotlyjs="cdn")
                return self.log_text(run_id, html, name)
            return self._tracking().log_bytes(
                run_id, figure.to_image(format=Path(name).suffix[1:]), name
            )
        from syllabus.errors import InvalidArgumentError

        raise InvalidArgumentError(
            f"log_figure takes a matplotlib or plotly figure, not {type(figure).__name__}"
        )

    def list_artifacts(self, run_id: str, path: str = "") -> list[Artifact]:
        """A run's artifacts under ``path`` ("" for all), by path."""
        return self._tracking(write=False).list_artifacts(run_id, path)

    def read_artifact(self, run_id: str, path: str) -> bytes:
        """The bytes of one artifact, verified against its content id."""
        return self._tracking(write=False).read_artifact(run_id, path)

    def download_artifacts(self, run_id: str, path: str = "", dest: str | Path = ".") -> Path:
        """Write artifact ``path`` (a file, a folder or "" for all) under ``dest``."""
        return self._tracking(write=False).download_artifacts(run_id, path, dest)

    # -- lineage and retention -------------------------------------------------------------

    def log_inputs(self, run_id: str, inputs: Sequence[RunInput]) -> None:
        """Record what a run consumed (datasets, models ...)."""
        self._tracking().log_inputs(run_id, inputs)

    def list_inputs(self, run_id: str) -> list[RunInput]:
        return self._tracking(write=False).list_inputs(run_id)

    def runs_with_input(self, kind: str, target_id: str) -> list[RunInput]:
        """Every run that consumed ``target_id`` of ``kind``."""
        return self._tracking(write=False).runs_with_input(kind, target_id)

    def purge_deleted_runs(self, older_than_seconds: float) -> int:
        """Remove runs soft-deleted longer ago than this, with their blob references."""
        return self._tracking().purge_deleted(older_than_seconds)
