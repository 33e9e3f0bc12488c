"""The inference server: a plain ASGI application (no framework on the hot path).

Endpoints: the Open Inference Protocol v2 REST API (``/v2/health/live``,
``/v2/health/ready``, ``/v2/models/{name}[/versions/{v}]``, ``.../ready``, ``.../infer``,
``.../feedback``), ``POST /predict`` (JSON records, JSON columns or CSV), ``POST /feedback``
and ``GET /metrics`` (Prometheus text). Every answer carries ``x-request-id`` and, once a
model is loaded, ``x-model-version``; errors are RFC 9457 problem JSON.

Models load on a background thread when the server starts: until then (or for good, when
loading failed) the server is live but not ready, and inference answers 503 with the
reason. Predictions are logged to the prediction log off the response path (a buffer
append); the shadow model scores copies on its own thread.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import queue
import random
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

import numpy as np

from syllabus import __version__
from syllabus._utils.ids import new_id
from syllabus.deploy.predlog import LogRoot, PredictionLogWriter
from syllabus.deploy.serving.codec import (
    MAX_ROWS,
    Batch,
    RequestError,
    datatype_of,
    decode_csv,
    decode_json_payload,
    decode_v2,
    schema_metadata,
    to_json_values,
)
from syllabus.deploy.serving.config import ServingConfig
from syllabus.deploy.serving.metrics import Metrics
from syllabus.deploy.serving.runtime import ModelLoader, Prediction, ServedModel
from syllabus.errors import ConfigError

__all__ = ["ServingApp"]

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_REQUEST_ID: Final = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_JSON: Final = b"application/json"
_PROBLEM: Final = b"application/problem+json"
_TEXT: Final = b"text/plain; version=0.0.4; charset=utf-8"
_SHADOW_QUEUE: Final = 1000
_KNOWN_REQUESTS: Final = 100_000
_V2_MODEL: Final = re.compile(
    r"/v2/models/(?P<name>[^/]+)(?:/versions/(?P<version>[^/]+))?(?P<action>/ready|/infer|/feedback)?"
)


class _HttpError(Exception):
    """An HTTP error answered as problem JSON."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        *,
        code: str,
        field: str | None = None,
        close: bool = False,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.code = code
        self.field = field
        self.close = close


def _bad_request(exc: RequestError) -> _HttpError:
    if exc.status == 413:
        return _HttpError(
            413, "Payload Too Large", exc.detail, code="payload_too_large", field=exc.field
        )
    if exc.status >= 500:
        return _HttpError(500, "Internal Server Error", exc.detail, code="model_error")
    return _HttpError(400, "Bad Request", exc.detail, code="invalid_input", field=exc.field)


def _dumps(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":"), allow_nan=False).encode()


@dataclass(frozen=True, slots=True)
class _Request:
    method: str
    path: str
    request_id: str
    id_given: bool
    content_type: str
    content_length: int | None
    started: float  # perf_counter
    ts: float  # wall clock, seconds


@dataclass(frozen=True, slots=True)
class _ShadowCopy:
    kind: str  # "json" | "csv" | "v2"
    doc: Any
    batch: Batch
    schema_key: Any
    request_id: str
    ts: float


class ServingApp:
    """The ASGI application serving one :class:`ServingConfig`.

    ``loader`` resolves and loads model references (wired to the registry by the caller);
    ``log_root`` is the prediction log root, a folder or an ``s3://`` URL (None with
    ``config.log.enabled`` false); ``log_s3_endpoint_url`` the S3 endpoint for the latter.
    ``port`` is the port actually bound (for the ready file, when the config says 0).
    """

    def __init__(
        self,
        config: ServingConfig,
        loader: ModelLoader,
        *,
        log_root: LogRoot | None = None,
        log_s3_endpoint_url: str | None = None,
        port: int | None = None,
        server_pid: int | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.loader = loader
        self.port = config.port if port is None else port
        self.server_pid = server_pid or os.getpid()
        self.metrics = Metrics(config.service)
        self.state = "loading"
        self.reason = "models are loading"
        self.primary: ServedModel | None = None
        self.canary: ServedModel | None = None
        self.shadow: ServedModel | None = None
        self._canary_share = (
            0.0 if config.models.canary is None else config.models.canary.percent / 100
        )
        self._random = (rng or random.Random()).random  # noqa: S311 - a traffic split, not a secret
        self.writer: PredictionLogWriter | None = None
        if config.log.enabled:
            if log_root is None:
                raise ConfigError(
                    f"service {config.service}: the prediction log needs a folder (log.path "
                    "in the serving config, or the predictions setting); or turn it off"
                )
            self.writer = PredictionLogWriter(
                log_root,
                config.service,
                flush_rows=config.log.flush_rows,
                flush_seconds=config.log.flush_seconds,
                s3_endpoint_url=log_s3_endpoint_url,
            )
            writer = self.writer
            self.metrics.gauges["syllabus_prediction_log_rows_written"] = lambda: float(
                writer.rows_written
            )
            self.metrics.gauges["syllabus_prediction_log_errors"] = lambda: float(writer.errors)
        self._shadow_queue: queue.Queue[_ShadowCopy | None] = queue.Queue(_SHADOW_QUEUE)
        self._shadow_thread: threading.Thread | None = None
        self._loader_thread: threading.Thread | None = None
        self._known: OrderedDict[str, int] = OrderedDict()
        self._closed = False
        self._routes: dict[str, Callable[[_Request, Receive], Awaitable[_Answer]]] = {
            "/predict": self._predict,
            "/feedback": self._feedback,
            "/metrics": self._metrics,
            "/v2/health/live": self._live,
            "/v2/health/ready": self._ready,
            "/v2": self._server_metadata,
            "/": self._server_metadata,
        }

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self.state == "ready"

    def start(self) -> None:
        """Load the models on a background thread (the server answers meanwhile)."""
        if self._loader_thread is None:
            self._loader_thread = threading.Thread(
                target=self.load, name="serving-loader", daemon=True
            )
            self._loader_thread.start()

    def wait_loaded(self, timeout: float | None = None) -> bool:
        """Wait for loading to end; True when the server is ready."""
        if self._loader_thread is not None:
            self._loader_thread.join(timeout)
        return self.ready

    def load(self) -> None:
        """Load every model of the config (primary, canary, shadow) now."""
        models = self.config.models
        wanted = [("primary", models.primary)]
        if models.canary is not None:
            wanted.append(("canary", models.canary.model))
        if models.shadow is not None:
            wanted.append(("shadow", models.shadow.model))
        loaded: dict[str, ServedModel] = {}
        for variant, ref in wanted:
            try:
                loaded[variant] = ServedModel(ref, variant, self.loader(ref))
            except Exception as exc:  # noqa: BLE001 - any failure leaves the server up, unready
                self.reason = f"{variant} model {ref} failed to load: {exc}"
                self.state = "failed"
                log.warning("service %s: %s", self.config.service, self.reason)
                return
        self.primary = loaded["primary"]
        self.canary = loaded.get("canary")
        self.shadow = loaded.get("shadow")
        self.metrics.models = [(m.variant, m.name, m.version) for m in loaded.values()]
        if self.shadow is not None:
            self._shadow_thread = threading.Thread(
                target=self._shadow_loop, name="serving-shadow", daemon=True
            )
            self._shadow_thread.start()
        # Objects alive now (modules, the models) never become garbage: keep the cyclic
        # collector from walking them on every full collection (a latency spike per request).
        gc.collect()
        gc.freeze()
        self.reason = ""
        self.state = "ready"
        log.info(
            "service %s ready: %s",
            self.config.service,
            ", ".join(f"{m.variant} {m.name}@{m.version}" for m in loaded.values()),
        )
        self._write_ready_file()

    def _write_ready_file(self) -> None:
        if not self.config.ready_file:
            return
        path = Path(self.config.ready_file)
        doc = {
            "pid": self.server_pid,
            "host": self.config.host,
            "port": self.port,
            "revision": self.config.revision,
            "service": self.config.service,
            "models": {m.variant: f"{m.name}@{m.version}" for m in self._served()},
        }
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(doc) + "\n")
            tmp.replace(path)
        except OSError:
            log.exception("cannot write the ready file %s", path)

    def close(self) -> None:
        """Stop the shadow thread and flush the prediction log (graceful shutdown)."""
        if self._closed:
            return
        self._closed = True
        if self._shadow_thread is not None:
            self._shadow_queue.put(None)
            self._shadow_thread.join(30)
        if self.writer is not None:
            self.writer.close()

    def _served(self) -> list[ServedModel]:
        return [m for m in (self.primary, self.canary, self.shadow) if m is not None]

    # -- ASGI --------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        # websockets are not served: returning without accepting refuses them

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:  # noqa: PLR0912 - one place per request
        started = time.perf_counter()
        request_id = None
        content_type = ""
        content_length: int | None = None
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value.decode("latin-1").lower()
            elif name == b"content-length":
                try:
                    content_length = int(value)
                except ValueError:
                    content_length = None
            elif name == b"x-request-id":
                text = value.decode("latin-1")
                if _REQUEST_ID.fullmatch(text):
                    request_id = text
        req = _Request(
            scope["method"],
            scope["path"],
            request_id or new_id(),
            request_id is not None,
            content_type,
            content_length,
            started,
            time.time(),
        )
        metrics = self.metrics
        metrics.in_flight += 1
        endpoint = "other"
        try:
            handler = self._routes.get(req.path)
            if handler is not None:
                endpoint = req.path
                answer = await handler(req, receive)
            elif req.path.startswith("/v2/models/"):
                endpoint = "/v2/models/infer" if req.path.endswith("/infer") else "/v2/models"
                answer = await self._v2_model(req, receive)
            else:
                answer = await self._not_found(req, receive)
        except _HttpError as problem:
            answer = self._problem_answer(req, problem)
        except Exception as exc:
            log.exception("service %s: %s %s failed", self.config.service, req.method, req.path)
            answer = self._problem_answer(
                req,
                _HttpError(
                    500, "Internal Server Error", f"unexpected error: {exc}", code="internal"
                ),
            )
        finally:
            metrics.in_flight -= 1
        headers = [
            (b"content-type", answer.content_type),
            (b"content-length", str(len(answer.body)).encode()),
            (b"x-request-id", (answer.request_id or req.request_id).encode()),
        ]
        model = answer.model or self.primary
        if model is not None:
            headers.append((b"x-model-version", str(model.version).encode()))
            headers.append((b"x-model-name", model.name.encode()))
        if answer.variant:
            headers.append((b"x-model-variant", answer.variant.encode()))
        if answer.close:
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        await send({"type": "http.response.body", "body": answer.body})
        metrics.observe(endpoint, req.method, answer.status, time.perf_counter() - started)

    async def _not_found(self, req: _Request, receive: Receive) -> _Answer:
        raise _HttpError(404, "Not Found", f"no endpoint {req.path}", code="not_found")

    def _problem_answer(self, req: _Request, p: _HttpError) -> _Answer:
        doc: dict[str, Any] = {
            "type": "about:blank",
            "title": p.title,
            "status": p.status,
            "detail": p.detail,
            "code": p.code,
            "instance": req.path,
            "request_id": req.request_id,
        }
        if p.field is not None:
            doc["field"] = p.field
        if self.primary is not None:
            doc["model"] = self.primary.name
            doc["version"] = self.primary.version
        return _Answer(p.status, _dumps(doc), _PROBLEM, close=p.close)

    async def _body(self, req: _Request, receive: Receive) -> bytes:
        cap = self.config.max_body
        if req.content_length is not None and req.content_length > cap:
            raise self._too_large(cap)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _HttpError(400, "Bad Request", "client disconnected", code="disconnected")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > cap:
                raise self._too_large(cap)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    @staticmethod
    def _too_large(cap: int) -> _HttpError:
        return _HttpError(
            413,
            "Payload Too Large",
            f"the request body is larger than {cap} bytes; send fewer rows per request",
            code="payload_too_large",
            close=True,  # the rest of the body is never read
        )

    @staticmethod
    def _require(req: _Request, method: str) -> None:
        if req.method != method:
            raise _HttpError(
                405,
                "Method Not Allowed",
                f"{req.path} takes {method}, not {req.method}",
                code="method_not_allowed",
            )

    async def _json(self, req: _Request, receive: Receive) -> Any:
        # Any content type but CSV is read as JSON (curl -d sends form encoding).
        body = await self._body(req, receive)
        return self._parse_json(body)

    @staticmethod
    def _parse_json(body: bytes) -> Any:
        try:
            return json.loads(body)
        except RecursionError:
            raise _HttpError(
                400, "Bad Request", "the JSON body is nested too deeply", code="invalid_json"
            ) from None
        except ValueError as exc:
            raise _HttpError(
                400, "Bad Request", f"the body is not valid JSON: {exc}", code="invalid_json"
            ) from None

    def _check_ready(self) -> ServedModel:
        if self.primary is None or self.state != "ready":
            raise _HttpError(
                503,
                "Service Unavailable",
                f"service {self.config.service} is not ready: {self.reason}",
                code="not_ready",
            )
        return self.primary

    def _choose(self, pinned: str | None) -> ServedModel:
        primary = self._check_ready()
        if pinned is not None:
            for model in (primary, self.canary):
                if model is not None and str(model.version) == pinned:
                    return model
            served = ", ".join(str(m.version) for m in (primary, self.canary) if m is not None)
            raise _HttpError(
                404,
                "Not Found",
                f"model {primary.name} version {pinned} is not served here (served: {served})",
                code="not_found",
            )
        if self.canary is not None and self._random() < self._canary_share:
            return self.canary
        return primary

    # -- scoring -----------------------------------------------------------------------------

    def _score(self, model: ServedModel, batch: Batch) -> Prediction:
        try:
            return model.predict(batch)
        except RequestError:
            raise
        except (ValueError, TypeError) as exc:
            raise _HttpError(
                422,
                "Unprocessable Content",
                f"model {model.name}@{model.version} could not score the input: {exc}",
                code="model_rejected_input",
            ) from None

    def _after(
        self, req: _Request, model: ServedModel, batch: Batch, pred: Prediction, *,
        kind: str, doc: Any,
    ) -> None:  # fmt: skip
        """Log the answer and hand a copy to the shadow (both off the response path)."""
        rows = batch.rows
        self.metrics.count_predictions(model.variant, model.name, model.version, rows)
        known = self._known
        known[req.request_id] = rows
        if len(known) > _KNOWN_REQUESTS:
            known.popitem(last=False)
        writer = self.writer
        if writer is not None:
            outputs: dict[str, Any] = {"prediction": _loggable(pred.prediction)}
            if pred.score is not None:
                outputs["score"] = pred.score
            writer.log(
                request_id=req.request_id,
                model=model.name,
                version=model.version,
                variant=model.variant,
                latency_ms=(time.perf_counter() - req.started) * 1000,
                ts=req.ts,
                inputs=_log_inputs(batch),
                outputs=outputs,
            )
        if self.shadow is not None:
            copy = _ShadowCopy(kind, doc, batch, model.inputs, req.request_id, req.ts)
            try:
                self._shadow_queue.put_nowait(copy)
            except queue.Full:
                self.metrics.count_shadow(dropped=1)

    def _shadow_loop(self) -> None:
        shadow = self.shadow
        assert shadow is not None
        while True:
            item = self._shadow_queue.get()
            if item is None:
                return
            started = time.perf_counter()
            try:
                if item.schema_key == shadow.inputs:
                    batch = item.batch
                elif item.kind == "v2":
                    batch = decode_v2(shadow.inputs, item.doc)
                elif item.kind == "csv":
                    batch = decode_csv(shadow.inputs, item.doc)
                else:
                    batch = decode_json_payload(shadow.inputs, item.doc)
                pred = shadow.predict(batch)
            except Exception as exc:  # noqa: BLE001 - the shadow never affects the answers
                self.metrics.count_shadow(errors=1)
                log.warning("shadow model %s@%s failed: %s", shadow.name, shadow.version, exc)
                continue
            self.metrics.count_predictions("shadow", shadow.name, shadow.version, batch.rows)
            if self.writer is not None:
                outputs: dict[str, Any] = {"prediction": _loggable(pred.prediction)}
                if pred.score is not None:
                    outputs["score"] = pred.score
                try:
                    self.writer.log(
                        request_id=item.request_id,
                        model=shadow.name,
                        version=shadow.version,
                        variant="shadow",
                        latency_ms=(time.perf_counter() - started) * 1000,
                        ts=item.ts,
                        inputs=_log_inputs(batch),
                        outputs=outputs,
                    )
                except Exception:
                    log.debug("shadow answer not logged", exc_info=True)

    # -- endpoints ---------------------------------------------------------------------------

    async def _predict(self, req: _Request, receive: Receive) -> _Answer:
        self._require(req, "POST")
        model = self._choose(None)
        ctype = req.content_type
        if ctype.startswith(("text/csv", "application/csv")):
            body = await self._body(req, receive)
            kind, doc = "csv", body
            try:
                batch = decode_csv(model.inputs, body)
            except RequestError as exc:
                raise _bad_request(exc) from None
        else:
            doc = await self._json(req, receive)
            kind = "json"
            try:
                batch = decode_json_payload(model.inputs, doc)
            except RequestError as exc:
                raise _bad_request(exc) from None
        pred = self._score(model, batch)
        out: dict[str, Any] = {
            "request_id": req.request_id,
            "model": model.name,
            "version": model.version,
            "variant": model.variant,
            "predictions": to_json_values(pred.prediction),
        }
        if pred.score is not None:
            out["scores"] = to_json_values(pred.score)
        body_out = _dumps(out)
        self._after(req, model, batch, pred, kind=kind, doc=doc)
        return _Answer(200, body_out, _JSON, model=model, variant=model.variant)

    async def _v2_infer(self, req: _Request, receive: Receive, pinned: str | None) -> _Answer:
        model = self._choose(pinned)
        doc = await self._json(req, receive)
        request_id = req.request_id
        if not req.id_given and isinstance(doc, dict):
            given = doc.get("id")
            if isinstance(given, str) and _REQUEST_ID.fullmatch(given):
                request_id = given  # OIP: the response echoes the request's id
                req = replace(req, request_id=given)
        try:
            batch = decode_v2(model.inputs, doc)
        except RequestError as exc:
            raise _bad_request(exc) from None
        pred = self._score(model, batch)
        outputs = [_v2_output("prediction", pred.prediction)]
        if pred.score is not None:
            outputs.append(_v2_output("score", pred.score))
        wanted = doc.get("outputs")
        if isinstance(wanted, list) and wanted:
            names = {o.get("name") for o in wanted if isinstance(o, dict)}
            outputs = [o for o in outputs if o["name"] in names] or outputs
        out = {
            "model_name": model.name,
            "model_version": str(model.version),
            "id": request_id,
            "parameters": {"request_id": request_id, "variant": model.variant},
            "outputs": outputs,
        }
        body = _dumps(out)
        self._after(req, model, batch, pred, kind="v2", doc=doc)
        return _Answer(200, body, _JSON, model=model, variant=model.variant, request_id=request_id)

    async def _feedback(self, req: _Request, receive: Receive) -> _Answer:
        self._require(req, "POST")
        self._check_ready()
        doc = await self._json(req, receive)
        if not isinstance(doc, dict):
            raise _HttpError(400, "Bad Request", "feedback is a JSON object", code="invalid_input")
        if "labels" in doc:
            labels = doc["labels"]
        elif "label" in doc:
            labels = [doc["label"]]
        else:
            raise _HttpError(
                400, "Bad Request", "feedback needs 'labels' (a list) or 'label'",
                code="invalid_input", field="labels",
            )  # fmt: skip
        return self._record_feedback(req, doc.get("request_id"), labels, doc.get("rows"), v2=False)

    async def _v2_feedback(self, req: _Request, receive: Receive) -> _Answer:
        self._check_ready()
        doc = await self._json(req, receive)
        if not isinstance(doc, dict):
            raise _HttpError(400, "Bad Request", "feedback is a JSON object", code="invalid_input")
        params = doc.get("parameters") if isinstance(doc.get("parameters"), dict) else {}
        target = doc.get("request_id", params.get("request_id"))  # type: ignore[union-attr]
        items = doc.get("inputs")
        if not isinstance(items, list) or not items or not isinstance(items[0], dict):
            raise _HttpError(
                400, "Bad Request", "feedback needs inputs: [{name: 'label', data: [...]}]",
                code="invalid_input", field="inputs",
            )  # fmt: skip
        by_name = {i.get("name"): i for i in items if isinstance(i, dict)}
        label = by_name.get("label") or items[0]
        rows = by_name.get("row")
        return self._record_feedback(
            req,
            target,
            label.get("data"),
            None if rows is None else rows.get("data"),
            v2=True,
        )

    def _record_feedback(
        self, req: _Request, target: Any, labels: Any, rows: Any, *, v2: bool
    ) -> _Answer:
        if not isinstance(target, str) or not _REQUEST_ID.fullmatch(target):
            raise _HttpError(
                400, "Bad Request", "feedback needs the request_id of the prediction",
                code="invalid_input", field="request_id",
            )  # fmt: skip
        if not isinstance(labels, list) or not labels or len(labels) > MAX_ROWS:
            raise _HttpError(
                400, "Bad Request", "labels must be a non-empty list (one per row)",
                code="invalid_input", field="labels",
            )  # fmt: skip
        if not all(v is None or isinstance(v, str | int | float | bool) for v in labels):
            raise _HttpError(
                400, "Bad Request", "labels must be numbers, strings, booleans or null",
                code="invalid_input", field="labels",
            )  # fmt: skip
        if rows is not None and (
            not isinstance(rows, list)
            or len(rows) != len(labels)
            or not all(isinstance(r, int) and not isinstance(r, bool) and r >= 0 for r in rows)
        ):
            raise _HttpError(
                400, "Bad Request", "rows must list one row index (0, 1, ...) per label",
                code="invalid_input", field="rows",
            )  # fmt: skip
        known = self._known.get(target)
        highest = max(rows) if rows else len(labels) - 1
        if known is not None and highest >= known:
            raise _HttpError(
                400, "Bad Request",
                f"request {target} had {known} rows; feedback names row {highest}",
                code="invalid_input", field="rows" if rows else "labels",
            )  # fmt: skip
        if self.writer is not None:
            self.writer.log_feedback(target, labels, rows=rows)
        primary = self.primary
        assert primary is not None
        if v2:
            out: dict[str, Any] = {
                "model_name": primary.name,
                "model_version": str(primary.version),
                "id": req.request_id,
                "parameters": {"request_id": target, "rows": len(labels)},
            }
        else:
            out = {
                "request_id": req.request_id,
                "feedback": {"request_id": target, "rows": len(labels)},
                "logged": self.writer is not None,
            }
        return _Answer(202, _dumps(out), _JSON)

    async def _live(self, req: _Request, receive: Receive) -> _Answer:
        self._require(req, "GET")
        return _Answer(200, _dumps({"live": True, "request_id": req.request_id}), _JSON)

    async def _ready(self, req: _Request, receive: Receive) -> _Answer:
        self._require(req, "GET")
        self._check_ready()
        return _Answer(200, _dumps({"ready": True, "request_id": req.request_id}), _JSON)

    async def _server_metadata(self, req: _Request, receive: Receive) -> _Answer:
        self._require(req, "GET")
        doc = {
            "name": "syllabus",
            "version": __version__,
            "extensions": ["feedback", "prediction_log", "canary", "shadow"],
            "service": self.config.service,
            "revision": self.config.revision,
            "env": self.config.env,
            "ready": self.ready,
            "reason": self.reason or None,
            "models": {m.variant: f"{m.name}@{m.version}" for m in self._served()},
            "request_id": req.request_id,
        }
        return _Answer(200, _dumps(doc), _JSON)

    async def _metrics(self, req: _Request, receive: Receive) -> _Answer:
        self._require(req, "GET")
        return _Answer(200, self.metrics.render(ready=self.ready).encode(), _TEXT)

    async def _v2_model(self, req: _Request, receive: Receive) -> _Answer:
        m = _V2_MODEL.fullmatch(req.path)
        if m is None:
            raise _HttpError(404, "Not Found", f"no endpoint {req.path}", code="not_found")
        name, version, action = m.group("name"), m.group("version"), m.group("action")
        if name not in self._names():
            known = ", ".join(sorted(self._names()))
            raise _HttpError(
                404, "Not Found", f"no model {name!r} here (served: {known})", code="not_found"
            )
        if action == "/infer":
            self._require(req, "POST")
            return await self._v2_infer(req, receive, version)
        if action == "/feedback":
            self._require(req, "POST")
            return await self._v2_feedback(req, receive)
        self._require(req, "GET")
        model = self._choose(version) if version is not None else self._check_ready()
        if action == "/ready":
            body = {"name": name, "ready": True, "request_id": req.request_id}
            return _Answer(200, _dumps(body), _JSON, model=model)
        versions = [str(m.version) for m in (self.primary, self.canary) if m is not None]
        meta = {
            "name": name,
            "versions": versions if version is None else [version],
            "platform": f"syllabus-{model.flavor}",
            "inputs": schema_metadata(model.inputs),
            "outputs": [{"name": "prediction", "datatype": "BYTES", "shape": [-1]}]
            if model.outputs is None
            else [
                {"name": "prediction", **{k: v for k, v in o.items() if k != "name"}}
                for o in schema_metadata(model.outputs)[:1]
            ],
            "parameters": {"request_id": req.request_id, "model": model.ref},
        }
        return _Answer(200, _dumps(meta), _JSON, model=model)

    def _names(self) -> set[str]:
        names = {self.config.service}
        if self.primary is not None:
            names.add(self.primary.name)
        else:
            names.add(self.config.models.primary.partition("@")[0])
        return names


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    body: bytes
    content_type: bytes
    model: ServedModel | None = None
    variant: str | None = None
    close: bool = False
    request_id: str | None = None  # when the body named the id (OIP "id")


def _v2_output(name: str, arr: np.ndarray[Any, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "datatype": datatype_of(arr),
        "shape": list(arr.shape),
        "data": to_json_values(arr.reshape(-1)),
    }


def _loggable(arr: np.ndarray[Any, Any]) -> Any:
    return arr if arr.ndim == 1 else [row.tolist() for row in arr]


def _log_inputs(batch: Batch) -> dict[str, Any]:
    if batch.columns is not None:
        return batch.columns
    tensor = batch.tensor
    assert tensor is not None
    if tensor.ndim == 1:
        return {"0": tensor}
    if tensor.ndim == 2:
        return {str(i): tensor[:, i] for i in range(tensor.shape[1])}
    return {"tensor": [row.reshape(-1).tolist() for row in tensor]}
