"""Monitoring on the :class:`~syllabus.client.Client` (a mixin): drift between data sets,
monitors over prediction logs (attached to deployments automatically), alert rules,
alerts and reports.

The reference of a monitor is found through lineage when none is given: the model
version's training run, and that run's dataset input with the role ``train``.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

    from syllabus.client.datasets import DataVersion
    from syllabus.client.local import LocalBackend
    from syllabus.client.remote import RemoteMonitoring
    from syllabus.config import Settings
    from syllabus.datasets import DatasetVersion
    from syllabus.monitoring.models import Alert, AlertEvent, AlertRule, Monitor, RunResult, Window
    from syllabus.monitoring.profile import DriftReport, Profile
    from syllabus.monitoring.service import MonitoringService, MonitorStatus
    from syllabus.registry.models import ModelVersion
    from syllabus.registry.service import RegistryService
    from syllabus.tracking.models import RunInput

__all__ = ["MonitoringAPI"]

log = logging.getLogger(__name__)

TRAIN_ROLES = ("train", "training")


def _is_file(ref: str) -> bool:
    p = Path(ref).expanduser()
    return p.suffix.lower() in (".parquet", ".csv", ".pq") or p.is_file()


def _file_key(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return "file:" + h.hexdigest()


def _read_file(path: Path) -> pa.Table:
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    from syllabus.errors import InvalidArgumentError, NotFoundError

    if not path.is_file():
        raise NotFoundError(f"no such file: {path}")
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return pq.read_table(path)
    if suffix == ".csv":
        return pcsv.read_csv(path)
    raise InvalidArgumentError(f"{path.name}: give a Parquet or CSV file (or a dataset@version)")


def _file_batches(path: Path) -> Iterator[pa.RecordBatch]:
    import pyarrow.parquet as pq

    from syllabus.monitoring.windows import BATCH_ROWS

    if path.suffix.lower() in (".parquet", ".pq") and path.is_file():
        with pq.ParquetFile(path) as f:
            yield from f.iter_batches(batch_size=BATCH_ROWS)
    else:
        yield from _read_file(path).to_batches(max_chunksize=BATCH_ROWS)


def _signature_columns(signature: Mapping[str, Any] | None, part: str) -> list[str]:
    if not signature or not isinstance(signature.get(part), Mapping):
        return []
    return [str(c["name"]) for c in signature[part].get("columns", ()) if "name" in c]


class _AlertSource:
    """:class:`syllabus.pipelines.triggers.AlertSource` over this client's alerts."""

    def __init__(self, client: MonitoringAPI) -> None:
        self._client = client

    def alerts_after(self, after: str | None, rule: str) -> list[Any]:
        from syllabus.pipelines.triggers import AlertEvent as TriggerEvent

        svc = self._client._monitoring()
        found = svc.store.list_alerts(after=after or "", limit=10_000)
        out = []
        for a in found:
            if rule not in ("*", a.monitor, a.rule, f"{a.monitor}:{a.rule}"):
                continue
            detail = {"monitor": a.monitor, "expr": a.rule, "value": a.value,
                      "window_start": a.window_start, "state": a.state}  # fmt: skip
            out.append(TriggerEvent(a.id, a.rule, detail))
        return out


class MonitoringAPI:
    """Drift, monitors, alert rules and alerts (mixed into ``Client``)."""

    if TYPE_CHECKING:
        settings: Settings

        def _open(self, *, write: bool) -> LocalBackend: ...

        def _registry(self, *, write: bool = False) -> RegistryService: ...

        def get_dataset(self, ref: str) -> DatasetVersion: ...

        def dataset(self, ref: str) -> DataVersion: ...

        def get_model_version(self, ref: str) -> ModelVersion: ...

        def list_inputs(self, run_id: str) -> list[RunInput]: ...

    def _monitoring(self, *, write: bool = False) -> MonitoringService:
        from syllabus.monitoring.service import MonitoringService
        from syllabus.monitoring.sql import SqlMonitoringStore

        backend = self._open(write=write)
        store = getattr(backend, "monitoring_store", None)  # a server's, over HTTP
        return MonitoringService(
            SqlMonitoringStore(backend.engine) if store is None else store,
            backend.blobs,
            actor=self._registry(write=write).actor,
            log_root=self._predictions_root,
            s3_endpoint_url=self.settings.s3_endpoint_url,
        )

    def _predictions_root(self) -> Path | str:
        from syllabus.deploy.predlog import predictions_root

        return predictions_root(self.settings)

    # -- data ---------------------------------------------------------------------------

    def _reference(self, ref: str) -> tuple[str, str, pa.Table]:
        """(profile key, description, table) of a dataset version or a file."""
        if _is_file(ref):
            path = Path(ref).expanduser()
            table = _read_file(path)
            return _file_key(path), str(path), table
        version = self.dataset(ref)
        return "dataset:" + version.id, version.ref, version.to_arrow()

    def _lineage_reference(self, model: ModelVersion) -> str:
        from syllabus.errors import NotFoundError

        if model.run_id is None:
            raise NotFoundError(
                f"model {model.ref} has no training run, so no reference through lineage; "
                "give one with --reference DATASET@VERSION"
            )
        inputs = [i for i in self.list_inputs(model.run_id) if i.kind == "dataset"]
        train = [i for i in inputs if i.role in TRAIN_ROLES] or (inputs if len(inputs) == 1 else [])
        if not train:
            raise NotFoundError(
                f"model {model.ref}: its run {model.run_id[:8]} logged no training dataset "
                "(an input with role 'train'); give a reference with --reference DATASET@VERSION"
            )
        chosen = train[0]
        return chosen.name or self.get_dataset(chosen.target_id).ref

    def compare_data(
        self,
        reference: str,
        current: str,
        *,
        columns: Sequence[str] | None = None,
        thresholds: Mapping[str, Any] | None = None,
    ) -> DriftReport:
        """Drift and data quality of ``current`` against ``reference`` (each a dataset
        version such as ``churn-data@3`` or a Parquet/CSV file); see :meth:`compare_report`."""
        return self.compare_report(reference, current, columns=columns,
                                   thresholds=thresholds)[0]  # fmt: skip

    def compare_report(
        self,
        reference: str,
        current: str,
        *,
        columns: Sequence[str] | None = None,
        thresholds: Mapping[str, Any] | None = None,
        profile: Profile | None = None,
        html: bool = False,
    ) -> tuple[DriftReport, str | None]:
        """Drift and data quality of ``current`` against ``reference`` (each a dataset
        version such as ``churn-data@3`` or a Parquet/CSV file). The current data is read
        in record batches, so its size is not bounded by memory. Columns: ``columns``, or
        every column the two share."""
        import pyarrow.parquet as pq

        from syllabus.errors import SchemaMismatchError
        from syllabus.monitoring.profile import compare, profile_table
        from syllabus.monitoring.stats import Thresholds

        th = Thresholds.from_dict(thresholds)
        if profile is None:
            _, source, table = self._reference(reference)
            if _is_file(current) and Path(current).suffix.lower() in (".parquet", ".pq"):
                current_names = pq.read_schema(Path(current).expanduser()).names
                batches: Any = _file_batches(Path(current).expanduser())
            else:
                cur_table = self._reference(current)[2]
                current_names = cur_table.column_names
                batches = cur_table.to_batches()
            wanted = list(columns) if columns else [
                c for c in table.column_names if c in current_names]  # fmt: skip
            missing = [c for c in wanted if c not in current_names]
            if missing or not wanted:
                raise SchemaMismatchError(
                    f"the current data has no column {missing[0]!r}" if missing else
                    "the reference and the current data share no column"
                )  # fmt: skip
            profile = profile_table(table, wanted if columns else None, source=source)
            profile.columns = {k: v for k, v in profile.columns.items() if k in wanted}
        else:
            batches = (_file_batches(Path(current).expanduser()) if _is_file(current)
                       else self._reference(current)[2].to_batches())  # fmt: skip
        state = profile.state()
        for batch in batches:
            state.add(profile, batch)
        report = compare(profile, state, th)
        if not html:
            return report, None
        from syllabus.monitoring.report import render_compare

        title = f"Data drift: {current} against {reference}"
        return report, render_compare(report, profile, state.columns, title=title)

    def profile_data(self, reference: str, columns: Sequence[str] | None = None) -> Profile:
        """The reference profile of a dataset version or file (computed, not stored)."""
        from syllabus.monitoring.profile import profile_table

        _, source, table = self._reference(reference)
        return profile_table(table, columns, source=source)

    # -- monitors -----------------------------------------------------------------------

    def create_monitor(
        self,
        name: str,
        *,
        model: str | None = None,
        service: str | None = None,
        reference: str | None = None,
        window: str | int = "1h",
        features: Sequence[str] | None = None,
        target: str | None = None,
        task: str | None = None,
        thresholds: Mapping[str, Any] | None = None,
        rules: Sequence[str] = (),
        webhooks: Sequence[Mapping[str, str]] = (),
        log_path: str | Path | None = None,
        deployment: str | None = None,
        env: str | None = None,
        _existing: Monitor | None = None,
        _origin: str = "user",
    ) -> Monitor:
        """A monitor of ``service``'s prediction log (default: the model's name).

        The reference is ``reference`` (dataset version or file) or, without it, the
        training dataset of ``model`` found through lineage; features default to the
        model signature's inputs (else every reference column but ``target``). The
        reference profile is computed once and stored. ``window`` is a duration (``1h``)
        or a count (``10000 rows``).
        """
        from syllabus.errors import InvalidArgumentError

        version = self.get_model_version(model) if model else None
        if reference is None:
            if version is None:
                raise InvalidArgumentError("a monitor needs a model (for lineage) or a reference")
            reference = self._lineage_reference(version)
        signature = version.signature if version else None
        if not features:
            features = _signature_columns(signature, "inputs")
        if target is None:
            outputs = _signature_columns(signature, "outputs")
            target = outputs[0] if len(outputs) == 1 else None
        key, source, table = self._reference(reference)
        if not features:
            features = [c for c in table.column_names if c != target]
        missing = [f for f in features if f not in table.column_names]
        if missing:
            raise InvalidArgumentError(
                f"the reference {source} has no column {missing[0]!r} the model takes"
            )
        columns = [*features, *([target] if target and target in table.column_names else [])]
        svc = self._monitoring(write=True)
        record = svc.store_profile(key, source, table, columns)
        if service is None:
            if version is None:
                raise InvalidArgumentError("give the service whose prediction log to read")
            service = version.name
        args: dict[str, Any] = {
            "service": service, "profile": record, "features": list(features),
            "window": window, "target": target, "thresholds": thresholds, "rules": rules,
            "webhooks": webhooks, "task": task, "model_ref": version.ref if version else None,
            "reference": source, "deployment": deployment, "env": env,
        }  # fmt: skip
        if _existing is not None:
            return svc.update(_existing, **args)
        root = None if log_path is None else str(log_path)
        if root is not None and "://" not in root and self._monitoring_runner() is None:
            root = str(Path(root).expanduser().resolve())  # a server's path is its own
        return svc.create(name, log_path=root, origin=_origin, **args)

    def get_monitor(self, name: str) -> Monitor:
        return self._monitoring().store.get_monitor(name)

    def list_monitors(self) -> list[Monitor]:
        return self._monitoring().store.list_monitors()

    def delete_monitor(self, name: str) -> None:
        self._monitoring(write=True).delete(name)

    def sync_monitors(self) -> list[str]:
        """Attach a monitor to every deployment whose spec does not turn monitoring off
        (named ``<deployment>-<env>``), or update it when a new revision was applied.
        Returns the monitors created or updated. Deployments whose monitor cannot be made
        (no reference through lineage, say) are logged and skipped."""
        from syllabus.errors import SyllabusError

        list_deployments = getattr(self, "list_deployments", None)
        if list_deployments is None:
            return []
        deployments = list_deployments()
        if not deployments:
            return []
        svc = self._monitoring(write=True)
        existing = {m.name: m for m in svc.store.list_monitors()}
        changed = []
        for d in deployments:
            rev = d.live or d.latest
            block = rev.monitoring
            if block is False or (isinstance(block, Mapping) and block.get("enabled") is False):
                continue
            spec: Mapping[str, Any] = block if isinstance(block, Mapping) else {}
            name = f"{d.name}-{d.env}"
            current = existing.get(name)
            stamp = f"{d.id}:{rev.revision}"
            if current is not None and current.config.get("revision") == stamp:
                continue
            try:
                monitor = self._monitor_from_spec(name, d, rev, spec, current)
            except SyllabusError as exc:
                log.warning("deployment %s (%s): no monitor: %s", d.name, d.env, exc)
                continue
            svc.store.update_monitor(monitor.id, {"config": {**monitor.config,
                                                             "revision": stamp}})  # fmt: skip
            changed.append(name)
        return changed

    def _monitor_from_spec(
        self, name: str, d: Any, rev: Any, spec: Mapping[str, Any], current: Monitor | None
    ) -> Monitor:
        from syllabus.errors import InvalidArgumentError

        known = {"enabled", "window", "reference", "features", "target", "task", "drift",
                 "alerts", "webhooks"}  # fmt: skip
        unknown = sorted(set(spec) - known)
        if unknown:
            raise InvalidArgumentError(
                f"unknown monitoring setting {unknown[0]!r}; known: {', '.join(sorted(known))}"
            )
        reference = spec.get("reference")
        webhooks = [h if isinstance(h, Mapping) else {"url": str(h)}
                    for h in spec.get("webhooks", ())]  # fmt: skip
        config = rev.config if isinstance(rev.config, Mapping) else {}
        return self.create_monitor(
            name,
            model=rev.model_ref,
            service=str(config.get("service") or d.name),
            reference=None if reference in (None, "lineage") else str(reference),
            window=spec.get("window", "1h"),
            features=spec.get("features"),
            target=spec.get("target"),
            task=spec.get("task"),
            thresholds=spec.get("drift"),
            rules=[str(r) for r in spec.get("alerts", ())],
            webhooks=webhooks,
            deployment=d.name,
            env=d.env,
            _existing=current,
            _origin="spec",
        )

    def run_monitor(self, name: str | None = None) -> list[RunResult]:
        """Process the prediction log segments not seen yet (of one monitor, or of every
        monitor after attaching monitors to new deployments) and evaluate alert rules."""
        runner = self._monitoring_runner()
        if runner is not None:  # the prediction log is beside the server: it runs there
            return runner.run(name)
        svc = self._monitoring(write=True)
        if name is not None:
            return [svc.run(name)]
        self.sync_monitors()
        return [svc.run(m.name) for m in svc.store.list_monitors()]

    def monitor_status(self, name: str) -> MonitorStatus:
        """A monitor, its latest window, its firing alerts and the prediction log segments
        it has not processed yet."""
        runner = self._monitoring_runner()
        if runner is not None:
            return runner.status(name)
        return self._monitoring().status(name)

    def _monitoring_runner(self) -> RemoteMonitoring | None:
        """What runs monitors on a server (None for a local or database workspace)."""
        return getattr(self._open(write=False), "monitoring_runner", None)

    def monitor_windows(self, name: str, *, since_ms: int | None = None) -> list[Window]:
        """A monitor's windows, oldest first (those ending after ``since_ms``)."""
        svc = self._monitoring()
        monitor = svc.store.get_monitor(name)
        return svc.store.windows(monitor.id, since=since_ms)

    def monitor_report(self, name: str, *, last: str | None = None) -> str:
        """The HTML report of a monitor (``last``: a duration such as ``7d``, or a
        number of windows such as ``24``)."""
        import time

        from syllabus.monitoring.report import render_monitor
        from syllabus.monitoring.windows import parse_duration

        svc = self._monitoring()
        monitor = svc.store.get_monitor(name)
        windows = svc.store.windows(monitor.id)
        if last:
            if last.strip().isdigit():
                windows = windows[-int(last) :]
            else:
                since = time.time_ns() // 1_000_000 - parse_duration(last)
                # time windows by their end; count windows by when they last changed
                by_time = monitor.window_kind == "time"
                windows = [w for w in windows if (w.end if by_time else w.updated_at) > since]
        from syllabus.blobs.digest import Digest
        from syllabus.monitoring.service import WindowState

        assert monitor.profile_id is not None
        profile = svc.profile(monitor.profile_id)
        alerts = svc.store.list_alerts(monitor_id=monitor.id)
        state = None
        if windows:
            raw = svc.blobs.read_bytes(Digest(windows[-1].state))
            state = WindowState.from_json(raw).data.columns
        return render_monitor(monitor, profile, windows, alerts, state)

    # -- rules and alerts ---------------------------------------------------------------

    def add_alert_rule(self, monitor: str, rule: str) -> AlertRule:
        """Add a rule such as ``psi(age) > 0.2 for 2 windows`` (see the rule language)."""
        return self._monitoring(write=True).add_rule(monitor, rule)

    def list_alert_rules(self, monitor: str) -> list[AlertRule]:
        svc = self._monitoring()
        return svc.store.list_rules(svc.store.get_monitor(monitor).id)

    def remove_alert_rule(self, monitor: str, rule: str) -> AlertRule:
        """Remove a rule (by its text or id prefix); its firing alert is resolved."""
        return self._monitoring(write=True).remove_rule(monitor, rule)

    def list_alerts(self, monitor: str | None = None, *, state: str | None = None) -> list[Alert]:
        """Alerts, newest first (``state``: ``firing`` or ``resolved``)."""
        from syllabus.errors import InvalidArgumentError

        if state not in (None, "firing", "resolved"):
            raise InvalidArgumentError(f"state must be firing or resolved, not {state!r}")
        svc = self._monitoring()
        mid = svc.store.get_monitor(monitor).id if monitor else None
        return svc.store.list_alerts(monitor_id=mid, state=state)

    def alert_events(
        self, *, after: int = 0, monitor: str | None = None, limit: int = 1000
    ) -> list[AlertEvent]:
        """Alert events (fired, resolved) with ``seq`` greater than ``after``, oldest
        first: a trigger keeps the last ``seq`` it handled and asks for the next ones."""
        svc = self._monitoring()
        mid = svc.store.get_monitor(monitor).id if monitor else None
        return svc.store.events(after=after, monitor_id=mid, limit=limit)

    def pipeline_alert_source(self) -> _AlertSource:
        """Alerts for pipeline triggers: ``on_alert(X)`` fires on each new alert whose
        monitor is ``X``, whose rule is ``X`` (its text) or ``MONITOR:RULE``; ``*`` any."""
        return _AlertSource(self)

    def monitoring_metrics(self) -> str:
        """Every monitor's latest window and firing alerts as Prometheus gauges (text)."""
        from syllabus.monitoring.alerts import prometheus_text

        svc = self._monitoring()
        pairs = []
        for m in svc.store.list_monitors():
            latest = svc.store.windows(m.id, limit=1, newest_first=True)
            pairs.append((m, latest[0] if latest else None))
        return prometheus_text(pairs, svc.store.list_alerts(state="firing"))
