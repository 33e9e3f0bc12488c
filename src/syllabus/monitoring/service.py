"""Monitoring behaviour: monitors, incremental runs over the prediction log, alerts.

``run`` reads only the log segments the monitor has not processed (recorded in the
database in the same transaction as the windows they changed), one record batch at a time;
merges each window's new counts into its stored state (so a window spanning several runs
or segments is exact), recomputes its summary against the stored reference profile (never
re-reading the reference), joins new feedback to predictions by ``request_id`` and ``row``
with duckdb and scores each window with the evaluation metrics, then evaluates the alert
rules on the closed windows. Runs of one monitor are exclusive (a lock row with a lease);
a segment recorded twice rolls the second run back.
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import io
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from syllabus._utils.ids import new_id
from syllabus.blobs.digest import Digest
from syllabus.blobs.store import BlobStore
from syllabus.deploy.predlog import (
    FEEDBACK,
    PREDICTIONS,
    LogRoot,
    SegmentFolder,
    log_root,
    open_segments,
)
from syllabus.errors import (
    ConflictError,
    InvalidArgumentError,
    NotFoundError,
    SchemaMismatchError,
)
from syllabus.monitoring.alerts import Notifier
from syllabus.monitoring.models import (
    Alert,
    AlertEvent,
    AlertRule,
    Monitor,
    ProfileRecord,
    RunResult,
    Window,
    WindowUpdate,
)
from syllabus.monitoring.profile import DataState, DriftReport, Profile, compare, profile_table
from syllabus.monitoring.rules import parse_rule
from syllabus.monitoring.stats import Thresholds, column_kind
from syllabus.monitoring.store import MonitoringStore
from syllabus.monitoring.windows import (
    BATCH_ROWS,
    parse_window,
    service_folder,
    split_by_window,
    time_keys,
)

__all__ = ["MonitorStatus", "MonitoringService", "WindowState", "performance"]

log = logging.getLogger(__name__)

LOCK_MS: Final = 15 * 60_000
FEEDBACK_GRACE_MS: Final = 86_400_000
_LAT_EDGES: Final = np.logspace(-3, 7, 401)  # ms; about 6% per bin


@dataclass
class WindowState:
    """A window's mergeable state: data cells, a latency histogram, rows per variant."""

    data: DataState
    latency: np.ndarray[Any, Any] = field(default_factory=lambda: np.zeros(402, np.int64))
    variants: dict[str, int] = field(default_factory=dict)

    def add_batch(self, profile: Profile, batch: pa.RecordBatch, names: Mapping[str, str]) -> None:
        self.data.add(profile, batch, names)
        schema = batch.schema.names
        if "latency_ms" in schema:
            lat = batch.column("latency_ms")
            if "row" in schema:  # one latency per request: its first row's
                lat = pc.filter(lat, pc.equal(batch.column("row"), 0))
            values = np.asarray(lat.to_numpy(zero_copy_only=False), np.float64)
            values = values[np.isfinite(values)]
            self.latency += np.bincount(
                np.searchsorted(_LAT_EDGES, values), minlength=self.latency.size
            )[: self.latency.size]
        if "variant" in schema:
            vc = pc.value_counts(batch.column("variant"))
            for v, n in zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist(),
                            strict=True):  # fmt: skip
                self.variants[str(v)] = self.variants.get(str(v), 0) + int(n)

    def merge(self, other: WindowState) -> None:
        self.data.merge(other.data)
        self.latency += other.latency
        for k, n in other.variants.items():
            self.variants[k] = self.variants.get(k, 0) + n

    def latency_quantile(self, q: float) -> float | None:
        total = int(self.latency.sum())
        if total == 0:
            return None
        k = int(np.searchsorted(np.cumsum(self.latency), q * total, side="left"))
        k = min(max(k, 1), _LAT_EDGES.size - 1)
        return float(np.sqrt(_LAT_EDGES[k - 1] * _LAT_EDGES[k]))

    def to_json(self) -> bytes:
        import json

        doc = {"data": json.loads(self.data.to_json()), "latency": self.latency.tolist(),
               "variants": self.variants}  # fmt: skip
        return json.dumps(doc, separators=(",", ":")).encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes) -> WindowState:
        import json

        doc = json.loads(data)
        state = DataState.from_json(json.dumps(doc["data"]).encode("utf-8"))
        return cls(state, np.asarray(doc["latency"], np.int64), dict(doc["variants"]))


def performance(labels: pa.Table, task: str | None = None) -> dict[str, Any]:
    """Evaluation metrics of labelled predictions (columns ``prediction``, ``label``)."""
    from syllabus.evaluation.metrics import (
        bootstrap,
        infer_task,
        score_classification,
        score_regression,
    )

    labels = labels.filter(pc.and_(pc.is_valid(labels["label"]), pc.is_valid(labels["prediction"])))
    n = labels.num_rows
    if n == 0:
        return {}
    y_true = np.asarray(labels["label"].to_numpy(zero_copy_only=False))
    y_pred = np.asarray(labels["prediction"].to_numpy(zero_copy_only=False))
    kind = task or infer_task(y_true)
    if kind == "classification":
        if y_true.dtype.kind != y_pred.dtype.kind:
            y_true, y_pred = y_true.astype(str), y_pred.astype(str)
        classes = sorted(set(np.unique(y_true).tolist()) | set(np.unique(y_pred).tolist()))
        scored = score_classification(y_true, y_pred, None, classes, curves=False)
    else:
        scored = score_regression(
            y_true.astype(np.float64), y_pred.astype(np.float64), curves=False
        )
    out: dict[str, Any] = {"task": kind}
    points = bootstrap([scored], n, count=0, seed=0, confidence=0.95)[0]
    for metric in scored.metrics:
        if metric.per_class:
            continue
        value = float(np.asarray(points[metric.name].value, np.float64).reshape(-1)[0])
        out[metric.name] = value if np.isfinite(value) else None
    return out


@dataclass(frozen=True)
class MonitorStatus:
    """A monitor, its latest window, and its firing alerts."""

    monitor: Monitor
    latest: Window | None
    windows: int
    firing: tuple[Alert, ...]
    pending_segments: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "monitor": self.monitor.to_dict(),
            "latest": None if self.latest is None else self.latest.to_dict(),
            "windows": self.windows,
            "firing": [a.to_dict() for a in self.firing],
            "pending_segments": self.pending_segments,
        }


class MonitoringService:
    """Monitors over one store and blob store; ``log_root`` is the prediction log root (a
    folder or an ``s3://`` URL, read with ``s3_endpoint_url``)."""

    def __init__(
        self,
        store: MonitoringStore,
        blobs: BlobStore,
        *,
        actor: str,
        log_root: Callable[[], LogRoot],
        notifier: Notifier | None = None,
        s3_endpoint_url: str | None = None,
    ) -> None:
        self.store = store
        self.blobs = blobs
        self.actor = actor
        self._log_root = log_root
        self._s3_endpoint_url = s3_endpoint_url
        self._notifier = notifier or Notifier()
        self._profiles: dict[str, Profile] = {}

    # -- profiles ---------------------------------------------------------------------

    def store_profile(
        self, key: str, source: str, table: pa.Table, columns: Sequence[str] | None
    ) -> ProfileRecord:
        """The stored profile of ``table`` under ``key``, computed only the first time."""
        digest_key = hashlib.sha256(
            (key + "\x00" + "\x00".join(columns or ())).encode("utf-8")
        ).hexdigest()
        found = self.store.find_profile(digest_key)
        if found is not None:
            return found
        profile = profile_table(table, columns, source=source)
        digest = self.blobs.put_bytes(profile.to_json())
        self.blobs.flush()
        record = self.store.add_profile(
            digest_key, source, profile.rows, len(profile.columns), str(digest)
        )
        self._profiles[record.id] = profile
        return record

    def profile(self, profile_id: str) -> Profile:
        if profile_id not in self._profiles:
            record = self.store.get_profile(profile_id)
            self._profiles[profile_id] = Profile.from_json(
                self.blobs.read_bytes(Digest(record.digest))
            )
        return self._profiles[profile_id]

    # -- monitors ---------------------------------------------------------------------

    def create(
        self,
        name: str,
        *,
        service: str,
        profile: ProfileRecord,
        features: Sequence[str],
        window: str | int = "1h",
        target: str | None = None,
        thresholds: Mapping[str, Any] | None = None,
        rules: Sequence[str] = (),
        webhooks: Sequence[Mapping[str, str]] = (),
        task: str | None = None,
        model_ref: str | None = None,
        reference: str | None = None,
        deployment: str | None = None,
        env: str | None = None,
        log_path: str | None = None,
        origin: str = "user",
    ) -> Monitor:
        values = self._values(
            name, service, profile, features, window, target, thresholds, webhooks, task,
            model_ref, reference, deployment, env, log_path,
        )  # fmt: skip
        parsed = [parse_rule(r).text for r in rules]
        monitor = self.store.create_monitor(values, self.actor)
        for expr in parsed:
            self.store.add_rule(monitor.id, expr, origin, self.actor)
        return monitor

    def update(
        self,
        monitor: Monitor,
        *,
        service: str,
        profile: ProfileRecord,
        features: Sequence[str],
        window: str | int,
        target: str | None,
        thresholds: Mapping[str, Any] | None,
        rules: Sequence[str],
        webhooks: Sequence[Mapping[str, str]],
        task: str | None,
        model_ref: str | None,
        reference: str | None,
        deployment: str | None,
        env: str | None,
    ) -> Monitor:
        """Apply new settings (a new deployment revision); rules from the spec are replaced."""
        values = self._values(
            monitor.name, service, profile, features, window, target, thresholds, webhooks,
            task, model_ref, reference, deployment, env, monitor.log_path,
        )  # fmt: skip
        values.pop("name")
        parsed = {parse_rule(r).text for r in rules}
        updated = self.store.update_monitor(monitor.id, values)
        for rule in self.store.list_rules(monitor.id):
            if rule.origin == "spec" and rule.expr not in parsed:
                self.store.remove_rule(rule.id)
        for expr in sorted(parsed):
            self.store.add_rule(monitor.id, expr, "spec", self.actor)
        return updated

    def _values(  # noqa: PLR0917 - every setting of a monitor, validated together
        self, name: str, service: str, profile: ProfileRecord, features: Sequence[str],
        window: str | int, target: str | None, thresholds: Mapping[str, Any] | None,
        webhooks: Sequence[Mapping[str, str]], task: str | None, model_ref: str | None,
        reference: str | None, deployment: str | None, env: str | None, log_path: str | None,
    ) -> dict[str, Any]:  # fmt: skip
        if not name or len(name) > 128 or "/" in name or name.strip() != name:
            raise InvalidArgumentError(f"invalid monitor name {name!r}")
        service_folder(Path(), service)  # validates the service name
        kind, size = parse_window(window)
        Thresholds.from_dict(thresholds)  # validates
        if task not in (None, "classification", "regression"):
            raise InvalidArgumentError(f"task must be classification or regression, not {task!r}")
        ref_profile = self.profile(profile.id)
        missing = [f for f in features if f not in ref_profile.columns]
        if missing:
            raise InvalidArgumentError(
                f"feature {missing[0]!r} is not in the reference ({profile.source}); it has "
                f"{', '.join(list(ref_profile.columns)[:20])}"
            )
        if target is not None and target not in ref_profile.columns:
            target = None  # the reference has no such column: no prediction drift
        hooks = []
        for hook in webhooks:
            url = str(hook.get("url", ""))
            if not url.startswith(("http://", "https://")):
                raise InvalidArgumentError(f"webhook URL must be http(s), not {url!r}")
            hooks.append({"url": url, "secret": str(hook.get("secret") or "")})
        config = {
            "features": list(features),
            "target": target,
            "thresholds": dict(thresholds or {}),
            "webhooks": hooks,
            "task": task,
        }
        return {
            "name": name, "service": service, "log_path": log_path, "deployment": deployment,
            "env": env, "model_ref": model_ref, "reference": reference, "profile_id": profile.id,
            "window_kind": kind, "window_size": size, "config": config,
        }  # fmt: skip

    def delete(self, name: str) -> None:
        self.store.delete_monitor(self.store.get_monitor(name).id)

    def folder(self, monitor: Monitor) -> SegmentFolder:
        """The monitor's service's log segments (in a folder or under an S3 prefix)."""
        root = log_root(monitor.log_path) if monitor.log_path else self._log_root()
        return open_segments(root, monitor.service, s3_endpoint_url=self._s3_endpoint_url)

    # -- runs -------------------------------------------------------------------------

    def run(self, name: str, *, now_ms: int | None = None) -> RunResult:
        """Process the log segments ``name`` has not seen; evaluate its alert rules."""
        monitor = self.store.get_monitor(name)
        owner = new_id()
        if not self.store.acquire(monitor.id, owner, LOCK_MS):
            raise ConflictError(
                f"monitor {name!r} is being run by another process; try again when it finishes"
            )
        try:
            return self._run(monitor, time.time_ns() // 1_000_000 if now_ms is None else now_ms)
        finally:
            self.store.release(monitor.id, owner)

    def _names(self, monitor: Monitor, profile: Profile) -> dict[str, str]:
        names = {f: f"in.{f}" for f in monitor.features}
        if monitor.target and monitor.target in profile.columns:
            names[monitor.target] = "out.prediction"
        return names

    def _check_schema(
        self, monitor: Monitor, profile: Profile, names: Mapping[str, str], schema: pa.Schema,
        segment: str,
    ) -> None:  # fmt: skip
        for feature, column in names.items():
            if column not in schema.names:
                raise SchemaMismatchError(
                    f"monitor {monitor.name!r}: log segment {segment} has no column {column!r} "
                    f"but the model {monitor.model_ref or ''} takes {feature!r} (logged inputs: "
                    f"{', '.join(n[3:] for n in schema.names if n.startswith('in.'))}); the "
                    "served model no longer matches the monitored one"
                )
            expected = profile.columns[feature].kind
            logged = column_kind(schema.field(column).type)
            if logged != expected and not (expected == "categorical" and logged == "numeric"):
                raise SchemaMismatchError(
                    f"monitor {monitor.name!r}: log segment {segment} has {column!r} as "
                    f"{schema.field(column).type}, but the model takes {feature!r} as "
                    f"{profile.columns[feature].type}"
                )

    def _run(self, monitor: Monitor, now: int) -> RunResult:  # noqa: PLR0912, PLR0915 - one pass
        assert monitor.profile_id is not None
        profile = self.profile(monitor.profile_id)
        names = self._names(monitor, profile)
        folder = self.folder(monitor)
        size, by_rows = monitor.window_size, monitor.window_kind == "rows"
        seen = self.store.processed(monitor.id, "predictions")
        new = [n for n in folder.names(PREDICTIONS) if n not in seen]
        states: dict[int, WindowState] = {}
        rows_seen = monitor.rows_seen
        processed: list[tuple[str, str, int]] = []
        rows = 0
        for name in new:  # one segment, one record batch at a time: bounded memory
            segment = pq.ParquetFile(folder.open(PREDICTIONS, name))
            schema = segment.schema_arrow
            self._check_schema(monitor, profile, names, schema, name)
            wanted = [*names.values(), *(c for c in ("ts", "latency_ms", "variant", "row")
                                          if c in schema.names)]  # fmt: skip
            file_rows = 0
            for read in segment.iter_batches(BATCH_ROWS, columns=list(dict.fromkeys(wanted))):
                batch = read
                n = batch.num_rows
                keys = np.arange(rows_seen + file_rows, rows_seen + file_rows + n) if by_rows \
                    else time_keys(batch)  # fmt: skip
                file_rows += n
                if "variant" in batch.schema.names:
                    keep = pc.not_equal(batch.column("variant"), "shadow").to_numpy(
                        zero_copy_only=False)  # fmt: skip
                    if not keep.all():
                        batch, keys = batch.filter(pa.array(keep)), keys[keep]
                for start, part in split_by_window(batch, keys, size):
                    state = states.setdefault(start, WindowState(profile.state()))
                    state.add_batch(profile, part, names)
                rows += batch.num_rows
            segment.close()
            rows_seen += file_rows
            processed.append(("predictions", name, file_rows))
        segment_rows = {**seen, **{n: r for _, n, r in processed}}
        pairs, fb_done, pending = self._feedback(monitor, folder, segment_rows, now)
        processed.extend(fb_done)
        starts = set(states) | set(pairs)
        existing = {w.start: w for w in self.store.windows(monitor.id, starts=sorted(starts))}
        for w in self.store.windows(monitor.id, closed=False):
            existing.setdefault(w.start, w)
        updates = []
        th = monitor.thresholds
        for start in sorted(set(existing) | starts):
            old = existing.get(start)
            fresh = states.get(start)
            if old is not None:
                state = WindowState.from_json(self.blobs.read_bytes(Digest(old.state)))
                if fresh is not None:
                    state.merge(fresh)
            else:
                state = fresh if fresh is not None else WindowState(profile.state())
            labels_digest = old.labels if old else None
            labelled = old.labelled if old else 0
            perf: Mapping[str, Any] = old.summary.get("performance", {}) if old else {}
            if start in pairs:
                table = pairs[start]
                if labels_digest:
                    before = pq.read_table(io.BytesIO(self.blobs.read_bytes(Digest(labels_digest))))
                    table = pa.concat_tables([before, table.cast(before.schema)])
                table = _dedupe(table)
                labels_digest = str(self.blobs.put_bytes(_parquet_bytes(table)))
                labelled = table.num_rows
                perf = performance(table, monitor.config.get("task"))
            end = start + size
            closed = rows_seen >= end if by_rows else now >= end
            changed = start in starts or (old is not None and closed != old.closed)
            if not changed:
                continue
            summary = _summary(compare(profile, state.data, th), state, perf, labelled)
            state_digest = str(self.blobs.put_bytes(state.to_json()))
            updates.append(WindowUpdate(start, end, state.data.rows, closed, state_digest,
                                        summary, labelled, labels_digest))  # fmt: skip
        self.blobs.flush()
        if processed or updates:
            self.store.commit_run(monitor.id, processed, updates,
                                  rows_seen if by_rows else None)  # fmt: skip
        events = self._evaluate(monitor)
        if events and monitor.config.get("webhooks"):
            self._notifier.send(monitor, events)
        return RunResult(
            monitor=monitor.name,
            segments=sum(1 for k, _, _ in processed if k == "predictions"),
            feedback_segments=len(fb_done),
            rows=rows,
            labelled=sum(t.num_rows for t in pairs.values()),
            windows=tuple(u.start for u in updates),
            events=tuple(events),
            pending_feedback=pending,
        )

    def _feedback(
        self, monitor: Monitor, folder: SegmentFolder, segment_rows: Mapping[str, int], now: int
    ) -> tuple[dict[int, pa.Table], list[tuple[str, str, int]], int]:
        """Labelled pairs of new feedback by window start, the feedback segments done, and
        the feedback rows still waiting for their prediction."""
        import duckdb

        seen = self.store.processed(monitor.id, "feedback")
        new = [(n, mtime) for n, mtime in folder.listing(FEEDBACK) if n not in seen]
        preds = sorted(segment_rows)
        if not new or not preds:
            return {}, [], 0
        by_rows = monitor.window_kind == "rows"
        size = monitor.window_size
        offsets, total = {}, 0
        for name in sorted(segment_rows):
            offsets[name] = total
            total += segment_rows[name]
        fb_tables, fb_rows = [], {}
        for name, _ in new:
            table = pq.read_table(folder.open(FEEDBACK, name),
                                  columns=["request_id", "row", "label", "ts"])  # fmt: skip
            fb_rows[name] = table.num_rows
            fb_tables.append(table.append_column("segment", pa.array([name] * table.num_rows,
                                                                     pa.string())))  # fmt: skip
        feedback = pa.concat_tables(fb_tables, promote_options="permissive")
        found = _labelled_predictions(folder, preds, pc.unique(feedback["request_id"]))
        matched = _join(duckdb, found, feedback)
        score = "score" in matched.column_names
        pair_cols = ["request_id", "row", "prediction", *(["score"] if score else []), "label"]
        pairs: dict[int, list[pa.Table]] = {}
        if matched.num_rows:
            if by_rows:
                base = np.asarray([offsets[f] for f in matched["file"].to_pylist()], np.int64)
                keys = base + np.asarray(matched["pos"].to_numpy(), np.int64)
            else:
                keys = np.asarray(matched["ts"].to_numpy(zero_copy_only=False), np.int64)
            starts = (keys // size) * size
            for start in np.unique(starts).tolist():
                part = matched.filter(pa.array(starts == start)).select(pair_cols)
                pairs.setdefault(int(start), []).append(part)
        counts = pc.value_counts(matched["segment"]) if matched.num_rows else None
        hits = {} if counts is None else dict(zip(counts.field("values").to_pylist(),
                                                  counts.field("counts").to_pylist(),
                                                  strict=True))  # fmt: skip
        done, pending = [], 0
        for name, mtime in new:
            count = fb_rows[name]
            got = int(hits.get(name, 0))
            age = now - int(mtime * 1000)
            if got >= count or age > FEEDBACK_GRACE_MS:
                done.append(("feedback", name, count))
                if got < count:
                    log.warning("%s: %d feedback rows of %s matched no prediction",
                                monitor.name, count - got, name)  # fmt: skip
            else:
                pending += count - got
        return {s: pa.concat_tables(t) for s, t in pairs.items()}, done, pending

    # -- alerts -----------------------------------------------------------------------

    def _evaluate(self, monitor: Monitor) -> list[AlertEvent]:
        firing = {a.rule_id: a for a in self.store.list_alerts(monitor_id=monitor.id,
                                                              state="firing")}  # fmt: skip
        fire: list[tuple[AlertRule, float | None, int]] = []
        keep: list[tuple[str, float | None, int]] = []
        resolve: list[tuple[str, float | None, int]] = []
        for rule in self.store.list_rules(monitor.id):
            parsed = parse_rule(rule.expr)
            last = self.store.windows(monitor.id, closed=True, limit=parsed.windows,
                                      newest_first=True)  # fmt: skip
            if not last:
                continue
            values = [parsed.value_in(w.summary) for w in last]
            holds = len(last) == parsed.windows and all(parsed.holds(v) for v in values)
            current = firing.get(rule.id)
            if holds:
                if current is None:
                    fire.append((rule, values[0], last[0].start))
                else:
                    keep.append((current.id, values[0], last[0].start))
            elif current is not None:
                resolve.append((current.id, values[0], last[0].start))
        return self.store.apply_alerts(monitor.id, fire, keep, resolve)

    def add_rule(self, name: str, expr: str) -> AlertRule:
        monitor = self.store.get_monitor(name)
        return self.store.add_rule(monitor.id, parse_rule(expr).text, "user", self.actor)

    def remove_rule(self, name: str, rule: str) -> AlertRule:
        monitor = self.store.get_monitor(name)
        rules = self.store.list_rules(monitor.id)
        text = rule.strip()
        with contextlib.suppress(InvalidArgumentError):
            text = parse_rule(text).text
        found = [r for r in rules if r.expr == text or (len(rule) >= 6 and r.id.startswith(rule))]
        if not found:
            raise NotFoundError(f"monitor {name!r} has no rule {rule!r}")
        if len(found) > 1:
            raise InvalidArgumentError(f"rule id prefix {rule!r} is ambiguous")
        self.store.remove_rule(found[0].id)
        return found[0]

    # -- reading ----------------------------------------------------------------------

    def status(self, name: str) -> MonitorStatus:
        monitor = self.store.get_monitor(name)
        latest = self.store.windows(monitor.id, limit=1, newest_first=True)
        seen = self.store.processed(monitor.id, "predictions")
        try:
            pending = sum(1 for n in self.folder(monitor).names(PREDICTIONS) if n not in seen)
        except InvalidArgumentError:
            pending = 0
        return MonitorStatus(
            monitor,
            latest[0] if latest else None,
            len(self.store.windows(monitor.id)),
            tuple(self.store.list_alerts(monitor_id=monitor.id, state="firing")),
            pending,
        )


def _summary(
    report: DriftReport, state: WindowState, perf: Mapping[str, Any], labelled: int
) -> dict[str, Any]:
    doc = report.to_dict()
    lat = {f"latency_p{int(q * 100)}": state.latency_quantile(q) for q in (0.5, 0.95, 0.99)}
    total = int(state.latency.sum())
    return {
        "rows": state.data.rows,
        "drift_share": doc["drift_share"],
        "dataset_drift": doc["dataset_drift"],
        "drifted": doc["drifted"],
        "features": {f["name"]: f for f in doc["features"]},
        **lat,
        "latency_requests": total,
        "variants": dict(state.variants),
        "performance": dict(perf),
        "labelled": labelled,
    }


def _dedupe(table: pa.Table) -> pa.Table:
    """One labelled pair per (request_id, row): the last one given."""
    if table.num_rows == 0:
        return table
    keys = pa.Table.from_arrays([table["request_id"], table["row"]], names=["r", "w"])
    idx = pa.array(np.arange(table.num_rows))
    grouped = keys.append_column("i", idx).group_by(["r", "w"]).aggregate([("i", "max")])
    keep = pc.sort_indices(grouped["i_max"])
    return table.take(pc.take(grouped["i_max"], keep))


def _parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


_JOIN_COLUMNS: Final = ("request_id", "row", "ts", "out.prediction", "out.score", "variant")


def _labelled_predictions(
    folder: SegmentFolder, segments: Sequence[str], request_ids: pa.Array
) -> pa.Table | None:
    """The served (not shadow) prediction rows of ``request_ids`` in ``segments``, with
    their segment (``file``) and position in it (``pos``): read a record batch at a time,
    only the columns the join needs, keeping only the matching rows.

    A row group whose ``request_id`` statistics (its minimum and maximum, in the footer the
    file's opening reads anyway) hold none of ``request_ids`` is not read: the ids the
    server gives requests are time-ordered, so feedback for recent predictions reads the
    recent segments, not the whole log (over S3, one ranged GET per skipped segment's
    footer instead of its columns)."""
    wanted = _Ids(request_ids)
    found = []
    for name in segments:
        segment = pq.ParquetFile(folder.open(PREDICTIONS, name))
        columns = [c for c in _JOIN_COLUMNS if c in segment.schema_arrow.names]
        meta = segment.metadata
        paths = [meta.schema.column(i).path for i in range(meta.num_columns)]
        at = paths.index("request_id") if "request_id" in paths else None
        start = 0
        for group in range(meta.num_row_groups):
            stats = None if at is None else meta.row_group(group).column(at).statistics
            pos = start
            start += meta.row_group(group).num_rows
            if not wanted.may_be_in(stats):
                continue
            for batch in segment.iter_batches(BATCH_ROWS, row_groups=[group], columns=columns):
                mask = pc.is_in(batch.column("request_id"), value_set=request_ids)
                if "variant" in columns:
                    mask = pc.and_(mask, pc.not_equal(batch.column("variant"), "shadow"))
                idx = np.flatnonzero(mask.fill_null(False).to_numpy(zero_copy_only=False))
                if idx.size:
                    part = pa.Table.from_batches([batch]).take(pa.array(idx))
                    part = part.append_column("file", pa.array([name] * idx.size, pa.string()))
                    found.append(part.append_column("pos", pa.array(pos + idx, pa.int64())))
                pos += batch.num_rows
        segment.close()
    if not found:
        return None
    return pa.concat_tables(found, promote_options="permissive")


class _Ids:
    """Request ids, sorted, to test a row group's minimum and maximum against."""

    def __init__(self, ids: pa.Array) -> None:
        values = {i for i in ids.to_pylist() if i is not None}
        self.usable = all(type(i) is str for i in values)  # else: every row group is read
        self.text: list[str] = sorted(values) if self.usable else []
        # UTF-8 sorts as its code points do (unpaired surrogates cannot come from JSON text)
        self.raw = [i.encode("utf-8", "surrogatepass") for i in self.text]

    def may_be_in(self, stats: Any) -> bool:
        """False only if ``stats`` (a column chunk's statistics, or None) prove that none
        of the ids is in it."""
        if not self.usable or stats is None or not stats.has_min_max:
            return True
        low, high = stats.min, stats.max
        if isinstance(low, str) and isinstance(high, str):
            ids: list[Any] = self.text
        elif isinstance(low, bytes) and isinstance(high, bytes):
            ids = self.raw
        else:
            return True
        i = bisect.bisect_left(ids, low)
        return i < len(ids) and ids[i] <= high


def _join(duckdb: Any, found: pa.Table | None, feedback: pa.Table) -> pa.Table:
    """Feedback rows joined to their predictions by ``request_id`` and ``row``."""
    if found is None:
        return pa.table({"segment": pa.array([], pa.string())})
    score = ', p."out.score" AS score' if "out.score" in found.column_names else ""
    query = f"""
        SELECT f.segment, p.request_id, p."row", epoch_ms(p.ts) AS ts,
               p."out.prediction" AS prediction{score}, f.label, p.file, p.pos
        FROM found p JOIN feedback f ON p.request_id = f.request_id AND p."row" = f."row"
    """
    con = duckdb.connect()
    try:
        con.register("found", found)
        con.register("feedback", feedback)
        table: pa.Table = con.sql(query).to_arrow_table()
    finally:
        con.close()
    return table
