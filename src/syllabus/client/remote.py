"""The remote backend: every component's store Protocol over HTTP, against ``syllabus server``.

``SYLLABUS_URI=http(s)://host:port`` (optionally ``.../w/<workspace>``) with
``SYLLABUS_TOKEN`` makes a :class:`~syllabus.Client` talk to a team server instead of a
database: the services (validation, buffering, packaging, hashing) run here as they do
locally; only their store calls and blob records travel.

The wire format is derived from the Protocols themselves: a store method ``m`` of component
``c`` is ``POST /api/v1/w/<workspace>/<c>/<m>`` with its keyword arguments as a JSON object,
answered by the method's return value as JSON (the same models the library returns; floats
may be ``NaN``/``Infinity``). The server builds its routes from the same specifications, so
client and server cannot drift apart. Errors come back as RFC 9457 problem JSON carrying the
error's stable ``code``; the client raises the same :class:`~syllabus.errors.SyllabusError`
subclass the server raised.

Blob records travel in a small binary framing (see :func:`encode_frame`), streamed both ways;
only records the server lacks are sent. When the server's blobs are on S3 it may hand out
presigned URLs for large records, which then go straight to and from the bucket.
"""

from __future__ import annotations

import inspect
import logging
import struct
import threading
import time
import typing
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from functools import cache, cached_property
from typing import TYPE_CHECKING, Any, Final, cast
from urllib.parse import urlsplit, urlunsplit

from syllabus.blobs.backend import Flags, ObjectInfo, Record
from syllabus.blobs.digest import Digest
from syllabus.client.uris import Location, register_scheme
from syllabus.config import Settings
from syllabus.errors import (
    ConfigError,
    InvalidArgumentError,
    StorageError,
    error_class_for_code,
)

if TYPE_CHECKING:
    import httpx
    from pydantic import BaseModel

    from syllabus.blobs.store import BlobStore
    from syllabus.client.client import Info
    from syllabus.client.local import LocalBackend
    from syllabus.code.store import CodeStore
    from syllabus.datasets.store import DatasetStore
    from syllabus.deploy.store import DeployStore
    from syllabus.evaluation.store import EvaluationStore
    from syllabus.monitoring.models import RunResult
    from syllabus.monitoring.service import MonitorStatus
    from syllabus.monitoring.store import MonitoringStore
    from syllabus.pipelines.store import PipelineStore
    from syllabus.registry.sql import SqlRegistryStore
    from syllabus.tracking.service import TrackingService
    from syllabus.tracking.store import PointBatch, RunEnd, TrackingStore

__all__ = [
    "API_PREFIX",
    "COMPONENTS",
    "REDIRECT",
    "CallSpec",
    "FrameDecoder",
    "Http",
    "Redirect",
    "RemoteBackend",
    "RemoteMonitoring",
    "RemoteObjectBackend",
    "call_spec",
    "decode_frames",
    "encode_frame",
    "encode_redirect",
    "monitoring_answers",
    "protocol_docs",
    "protocol_methods",
    "split_uri",
    "verify_record",
    "wire_model",
]

log = logging.getLogger(__name__)

API_PREFIX: Final = "/api/v1"
DEFAULT_WORKSPACE: Final = "default"
PROBLEM_JSON: Final = "application/problem+json"
FRAME: Final = struct.Struct(">32sBQQ")
"""A blob frame header: raw digest, flags, logical size, payload length; the payload follows."""

PRESIGN_MIN: Final = 1024 * 1024
"""Records at least this large go straight to S3 when the server hands out presigned URLs."""
REDIRECT: Final = 0x80
"""Frame flag of a redirect frame: its payload is JSON naming where to download the record
(a presigned GET, with a byte range for a record inside a pack) instead of its bytes."""
_RETRY_STATUS = frozenset({502, 503, 504})
_ATTEMPTS = 5


_PROTOCOLS: Final = {
    "tracking": ("syllabus.tracking.store", ("TrackingStore",)),
    "datasets": ("syllabus.datasets.store", ("DatasetStore",)),
    "code": ("syllabus.code.store", ("CodeStore",)),
    "registry": ("syllabus.registry.store", ("RegistryStore", "GovernanceStore")),
    "evaluation": ("syllabus.evaluation.store", ("EvaluationStore",)),
    "deploy": ("syllabus.deploy.store", ("DeployStore",)),
    "monitoring": ("syllabus.monitoring.store", ("MonitoringStore",)),
    "pipelines": ("syllabus.pipelines.store", ("PipelineStore",)),
}


def _protocols(component: str) -> tuple[type, ...]:
    """The store Protocol(s) of ``component``, importing that component's module only (a
    server builds one component's routes without importing every other component)."""
    import importlib

    try:
        module_name, names = _PROTOCOLS[component]
    except KeyError:
        raise InvalidArgumentError(f"no component {component!r} on the wire") from None
    module = importlib.import_module(module_name)
    return tuple(getattr(module, name) for name in names)


COMPONENTS: Final = (
    "tracking",
    "datasets",
    "code",
    "registry",
    "evaluation",
    "deploy",
    "monitoring",
    "pipelines",
)
"""Components whose store Protocol the REST API exposes method by method."""


# -- wire specifications -------------------------------------------------------------------


@dataclass(frozen=True)
class MetricSeries:
    """The points of one metric of one run: ``[[step, timestamp ms, value], ...]``."""

    run_id: str
    key: str
    points: list[tuple[int, int, float]]


@dataclass(frozen=True)
class CallSpec:
    """One store method on the wire: its arguments and result as pydantic models."""

    component: str
    method: str
    doc: str
    signature: inspect.Signature
    args: type[BaseModel]
    result: type[BaseModel]
    wire: Mapping[str, Any] = field(default_factory=dict)

    @property
    def path(self) -> str:
        return f"/{self.component}/{self.method}"


def protocol_methods(component: str) -> list[str]:
    """The public methods of a component's store Protocol(s), in definition order."""
    names: list[str] = []
    for proto in _protocols(component):
        names.extend(n for n, v in vars(proto).items() if not n.startswith("_") and callable(v))
    return names


def protocol_docs(component: str) -> dict[str, str]:
    """``{method: docstring}`` of a component's store Protocol(s), without building models."""
    docs: dict[str, str] = {}
    for proto in _protocols(component):
        for name, value in vars(proto).items():
            if not name.startswith("_") and callable(value):
                docs[name] = inspect.getdoc(value) or name.replace("_", " ")
    return docs


def _method(component: str, method: str) -> tuple[Callable[..., Any], dict[str, Any]]:
    import sys

    for proto in _protocols(component):
        fn = vars(proto).get(method)
        if fn is not None and not method.startswith("_"):
            return fn, vars(sys.modules[proto.__module__])
    raise InvalidArgumentError(f"{component} has no store method {method!r}")


_WIRE_OVERRIDES: dict[tuple[str, str], dict[str, Any]] = {
    # Tuple keys are not JSON: metric points travel as a list of series, with a batch id.
    ("tracking", "log_metrics"): {"points": list[MetricSeries], "batch_id": str | None},
}


def _eager(hint: Any) -> Any:
    """``hint`` with ``Iterable[X]``/``Iterator[X]`` as ``list[X]``: pydantic validates
    iterables lazily, inside the store call, where a bad item would be a crash rather than
    an invalid request."""
    import collections.abc
    import types

    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (collections.abc.Iterable, collections.abc.Iterator) and args:
        return list[_eager(args[0])]  # type: ignore[misc]
    if origin in (typing.Union, types.UnionType):
        return typing.Union[tuple(_eager(a) for a in args)]  # noqa: UP007
    return hint


def wire_model(title: str, hint: Any) -> type[BaseModel]:
    """A pydantic root model of ``hint`` for answers (floats may be NaN or infinite)."""
    from pydantic import ConfigDict, RootModel

    return cast(
        "type[BaseModel]",
        type(
            title,
            (RootModel[hint],),
            {"model_config": ConfigDict(ser_json_inf_nan="constants"), "__module__": __name__},
        ),
    )


@cache
def call_spec(component: str, method: str) -> CallSpec:
    """The wire specification of ``component``'s store method ``method``."""
    from pydantic import ConfigDict, create_model

    fn, globalns = _method(component, method)
    hints = typing.get_type_hints(fn, globalns)
    sig = inspect.signature(fn)
    overrides = _WIRE_OVERRIDES.get((component, method), {})
    fields: dict[str, Any] = {}
    for name, param in sig.parameters.items():
        if name == "self":
            continue
        hint = overrides.get(name, _eager(hints[name]))
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[name] = (hint, default)
    for name, hint in overrides.items():
        fields.setdefault(name, (hint, None))
    title = "".join(p.capitalize() for p in f"{component}_{method}".split("_"))
    config = ConfigDict(extra="forbid", ser_json_inf_nan="constants")
    args = create_model(f"{title}Args", __config__=config, **fields)
    result = wire_model(f"{title}Result", hints.get("return", type(None)))
    doc = inspect.getdoc(fn) or method.replace("_", " ")
    return CallSpec(component, method, doc, sig, args, result, overrides)


# -- HTTP ----------------------------------------------------------------------------------


def split_uri(uri: str) -> tuple[str, str]:
    """``(server base URL, workspace)`` of ``http(s)://host[:port][/prefix][/w/<workspace>]``."""
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{uri!r} is not an http(s):// server URL")
    path = parts.path.rstrip("/")
    workspace = DEFAULT_WORKSPACE
    head, sep, tail = path.rpartition("/w/")
    if sep and tail and "/" not in tail:
        path, workspace = head, tail
    return urlunsplit((parts.scheme, parts.netloc, path, "", "")), workspace


def raise_problem(response: httpx.Response) -> None:
    """Raise the SyllabusError an error response carries (a StorageError when it is no
    problem JSON, e.g. from a proxy)."""
    if response.status_code < 400:
        return
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("code"), str):
        cls = error_class_for_code(body["code"])
        detail = str(body.get("detail") or body.get("title") or cls.__name__)
        raise cls(detail)
    raise StorageError(
        f"server answered {response.status_code} {response.reason_phrase} "
        f"for {response.request.method} {response.request.url.path}"
    )


class Http:
    """One server and workspace: an httpx client with the token, retries and error mapping."""

    def __init__(self, uri: str, *, token: str | None = None, timeout: float = 60.0) -> None:
        try:
            import httpx
        except ImportError:  # pragma: no cover - depends on the install
            raise ConfigError(
                "talking to a Syllabus server needs httpx and pydantic: "
                "pip install 'syllabus[remote]'"
            ) from None
        self.base, self.workspace = split_uri(uri)
        self.api = f"{self.base}{API_PREFIX}/w/{self.workspace}"
        headers = {"User-Agent": "syllabus-client"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._httpx = httpx
        self.client = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=10.0),
            transport=httpx.HTTPTransport(retries=2),  # connection failures: nothing was sent
            # Idle connections are dropped well before the server's keep-alive timeout (30 s),
            # so a request never goes out on a connection the server is closing.
            limits=httpx.Limits(
                max_connections=32, max_keepalive_connections=16, keepalive_expiry=10.0
            ),
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        content: bytes | Iterator[bytes] | None = None,
        params: Mapping[str, str] | None = None,
        retry: bool = False,
    ) -> httpx.Response:
        """Send one request; with ``retry`` (idempotent calls only) retry transport errors
        and 502/503/504 with backoff. Raises the SyllabusError of an error answer."""
        url = path if path.startswith("http") else f"{self.api}{path}"
        attempts = _ATTEMPTS if retry else 1
        delay = 0.1
        for attempt in range(1, attempts + 1):
            try:
                response = self.client.request(
                    method,
                    url,
                    content=content,
                    params=params,
                    headers={"Content-Type": "application/json"} if content is not None else None,
                )
            except self._httpx.TransportError as exc:
                if attempt == attempts:
                    why = str(exc) or type(exc).__name__
                    raise StorageError(
                        f"cannot reach the Syllabus server at {self.base}: {why}"
                    ) from exc
                log.info("retrying %s %s after %s", method, path, type(exc).__name__)
            else:
                if response.status_code not in _RETRY_STATUS or attempt == attempts:
                    raise_problem(response)
                    return response
                log.info("retrying %s %s after status %d", method, path, response.status_code)
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        self.client.close()


# -- stores --------------------------------------------------------------------------------

_READS = ("get", "list", "search", "latest", "version_for", "resolve", "find", "runs_with")


class RemoteStore:
    """A component's store Protocol, each method one POST built from its :class:`CallSpec`."""

    def __init__(self, http: Http, component: str) -> None:
        self._http = http
        self._component = component
        self._methods = frozenset(protocol_methods(component))

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("_") or name not in self._methods:
            raise AttributeError(name)
        spec = call_spec(self._component, name)
        params = [p for p in spec.signature.parameters if p != "self"]
        retry = name.startswith(_READS)

        def call(*args: Any, **kwargs: Any) -> Any:
            bound = spec.signature.bind(None, *args, **kwargs)
            arguments = {k: v for k, v in bound.arguments.items() if k in params}
            body = spec.args.model_validate(arguments).model_dump_json(warnings=False)
            response = self._http.request("POST", spec.path, content=body.encode(), retry=retry)
            return spec.result.model_validate_json(response.content).root  # type: ignore[attr-defined]

        call.__name__ = name
        call.__doc__ = spec.doc
        self.__dict__[name] = call
        return call

    def __repr__(self) -> str:
        return f"Remote{self._component.capitalize()}Store({self._http.api!r})"


class RemoteTrackingStore(RemoteStore):
    """Tracking over HTTP; metric batches carry a client-made id so a retry never duplicates
    points (the server answers a batch it already applied without applying it again)."""

    def __init__(self, http: Http) -> None:
        super().__init__(http, "tracking")

    def log_metrics(self, points: PointBatch, *, end: RunEnd | None = None) -> None:
        spec = call_spec("tracking", "log_metrics")
        series = [
            MetricSeries(run_id, key, [(int(s), int(t), float(v)) for s, t, v in pts])
            for (run_id, key), pts in points.items()
            if pts
        ]
        if not series and end is None:
            return
        body = spec.args.model_validate(
            {"points": series, "end": end, "batch_id": uuid.uuid4().hex}
        ).model_dump_json(warnings=False)
        self._http.request("POST", spec.path, content=body.encode(), retry=True)


@cache
def monitoring_answers() -> tuple[type[BaseModel], type[BaseModel]]:
    """Answer models of the server-side monitoring operations: ``run_monitors`` (a list of
    :class:`~syllabus.monitoring.models.RunResult`) and ``monitor_status``."""
    from syllabus.monitoring.models import RunResult
    from syllabus.monitoring.service import MonitorStatus

    return (
        wire_model("MonitoringRunMonitorsResult", list[RunResult]),
        wire_model("MonitoringMonitorStatusResult", MonitorStatus),
    )


@cache
def info_answer() -> type[BaseModel]:
    """The answer model of ``GET /w/<workspace>/info`` (what ``syllabus info`` shows)."""
    from syllabus.client.client import Info
    from syllabus.meta import DbInfo

    model = wire_model("WorkspaceInfo", Info)
    model.model_rebuild(_types_namespace={"DbInfo": DbInfo})  # Info names it for type checks
    return model


class RemoteMonitoring:
    """What monitoring does on the server itself, where the prediction log is: runs over
    the log and a monitor's status (its count of unprocessed segments)."""

    def __init__(self, http: Http) -> None:
        self._http = http

    def _post(self, path: str, payload: Mapping[str, Any], *, retry: bool) -> bytes:
        import json

        body = json.dumps(payload).encode()
        return self._http.request("POST", path, content=body, retry=retry).content

    def run(self, name: str | None = None) -> list[RunResult]:
        """Run one monitor (or every monitor, after attaching monitors to deployments)."""
        model = monitoring_answers()[0]
        raw = self._post("/monitoring/run_monitors", {"name": name}, retry=False)
        return cast("list[RunResult]", model.model_validate_json(raw).root)  # type: ignore[attr-defined]

    def status(self, name: str) -> MonitorStatus:
        model = monitoring_answers()[1]
        raw = self._post("/monitoring/monitor_status", {"name": name}, retry=True)
        return cast("MonitorStatus", model.model_validate_json(raw).root)  # type: ignore[attr-defined]


# -- blobs ---------------------------------------------------------------------------------


def encode_frame(record: Record) -> bytes:
    """A record's frame header (the payload is sent right after it)."""
    return FRAME.pack(record.digest.to_bytes(), int(record.flags), record.size, len(record.payload))


def encode_redirect(digest: Digest, target: Mapping[str, Any]) -> tuple[bytes, bytes]:
    """A redirect frame's header and payload: ``target`` is ``{"url", "range", "flags",
    "size"}`` (see :func:`syllabus.server.routes.blobs.direct_gets`)."""
    import json

    payload = json.dumps(dict(target)).encode()
    return FRAME.pack(digest.to_bytes(), REDIRECT, 0, len(payload)), payload


@dataclass(frozen=True)
class Redirect:
    """A record to download from where the server's blobs are (a redirect frame)."""

    digest: Digest
    url: str
    range: tuple[int, int] | None
    flags: Flags | None
    size: int | None

    @classmethod
    def from_json(cls, digest: Digest, doc: Mapping[str, Any]) -> Redirect:
        """A redirect from its JSON form (a redirect frame's payload, an answer of
        ``blobs/presign`` with ``op: get``)."""
        try:
            span = doc.get("range")
            return cls(
                digest,
                str(doc["url"]),
                (int(span[0]), int(span[1])) if span else None,
                None if doc.get("flags") is None else Flags(int(doc["flags"])),
                None if doc.get("size") is None else int(doc["size"]),
            )
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise StorageError(f"malformed redirect for {digest}: {exc}") from None


class FrameDecoder:
    """Records out of a stream of frames fed in pieces: one record in memory at a time."""

    def __init__(self, *, max_payload: int, redirects: bool = False) -> None:
        self.max_payload = max_payload
        self.redirects = redirects
        self._buf = bytearray()
        self._head: tuple[Digest, int, int, int] | None = None

    def feed(self, chunk: bytes) -> list[Record]:
        """The records completed by ``chunk``."""
        return cast("list[Record]", self.feed_any(chunk))

    def feed_any(self, chunk: bytes) -> list[Record | Redirect]:
        """The records and (when accepted) redirects completed by ``chunk``."""
        buf = self._buf
        buf += chunk
        out: list[Record | Redirect] = []
        known = int(Flags.ZSTD | Flags.CHUNKLIST) | (REDIRECT if self.redirects else 0)
        while True:
            if self._head is None:
                if len(buf) < FRAME.size:
                    break
                raw, flags, size, length = FRAME.unpack_from(buf)
                if length > self.max_payload:
                    raise InvalidArgumentError(
                        f"blob record of {length} bytes is over the limit of {self.max_payload}"
                    )
                if flags & ~known:
                    raise InvalidArgumentError(f"blob frame with unknown flags {flags:#x}")
                self._head = (Digest.from_bytes(raw), flags, size, length)
                del buf[: FRAME.size]
            digest, flags, size, length = self._head
            if len(buf) < length:
                break
            payload = bytes(buf[:length])
            del buf[:length]
            self._head = None
            if flags & REDIRECT:
                import json

                try:
                    doc = json.loads(payload)
                except ValueError:
                    raise StorageError(f"malformed redirect for {digest}") from None
                out.append(Redirect.from_json(digest, doc))
            else:
                out.append(Record(digest, Flags(flags), size, payload))
        return out

    def close(self) -> None:
        """InvalidArgumentError when the stream stopped inside a frame."""
        if self._buf or self._head is not None:
            raise InvalidArgumentError("blob stream ended inside a record (upload interrupted?)")


def verify_record(record: Record) -> None:
    """BlobCorruptError unless ``record``'s bytes stand for its content id (a chunk list:
    well formed and adding up to its size; its chunks are records checked themselves)."""
    from syllabus.blobs.records import decode_chunklist, logical_bytes, verified_bytes
    from syllabus.errors import BlobCorruptError

    if record.flags & Flags.CHUNKLIST:
        chunks = decode_chunklist(logical_bytes(record), digest=record.digest)
        if sum(n for _, n in chunks) != record.size:
            raise BlobCorruptError(f"object {record.digest}: chunk list sizes do not add up")
    else:
        verified_bytes(record)


def decode_frames(chunks: Iterable[bytes], *, max_payload: int) -> Iterator[Record]:
    """Records from a byte stream of frames, one at a time (never the whole stream)."""
    decoder = FrameDecoder(max_payload=max_payload)
    for chunk in chunks:
        yield from decoder.feed(chunk)
    decoder.close()


class RemoteObjectBackend:
    """The :class:`~syllabus.blobs.backend.ObjectBackend` of a server's blob store.

    Records are buffered by :meth:`write` and streamed to the server by :meth:`flush` (the
    server makes them durable before answering, so a failed flush can be repeated: only
    records still missing travel). Reads stream records back in batches. Deleting and gc
    happen on the server (``syllabus store gc`` there).
    """

    BATCH_BYTES = 32 * 1024 * 1024
    MAX_PAYLOAD = 1 << 31

    def __init__(self, http: Http) -> None:
        self._http = http
        self._lock = threading.Lock()
        self._pending: dict[Digest, Record] = {}
        self._pending_bytes = 0

    @property
    def url(self) -> str:
        return f"{self._http.api}/blobs"

    def _post_json(self, path: str, payload: object) -> Any:
        import json

        response = self._http.request(
            "POST", path, content=json.dumps(payload).encode(), retry=True
        )
        return response.json()

    def contains(self, digests: Iterable[Digest]) -> set[Digest]:
        wanted = list(dict.fromkeys(digests))
        with self._lock:
            found = {d for d in wanted if d in self._pending}
        asked = [d for d in wanted if d not in found]
        for start in range(0, len(asked), 10_000):
            batch = asked[start : start + 10_000]
            missing = set(self._post_json("/blobs/missing", {"digests": batch})["missing"])
            found.update(d for d in batch if d not in missing)
        return found

    def write(self, records: Iterable[Record]) -> None:
        full = False
        with self._lock:
            for record in records:
                if record.digest not in self._pending:
                    self._pending[record.digest] = record
                    self._pending_bytes += len(record.payload)
            full = self._pending_bytes >= self.BATCH_BYTES
        if full:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            pending = list(self._pending.values())
        if not pending:
            return
        for attempt in range(_ATTEMPTS):
            missing = set(
                self._post_json("/blobs/missing", {"digests": [r.digest for r in pending]})[
                    "missing"
                ]
            )
            todo = [r for r in pending if r.digest in missing]
            if not todo:
                break
            try:
                self._upload(todo)
                break
            except StorageError:
                if attempt == _ATTEMPTS - 1:
                    raise
                log.info("blob upload interrupted; resuming with the records still missing")
                time.sleep(0.2 * (attempt + 1))
        with self._lock:
            for record in pending:
                if self._pending.pop(record.digest, None) is not None:
                    self._pending_bytes -= len(record.payload)

    def _upload(self, records: list[Record]) -> None:
        presigned = self._presign(
            [r.digest for r in records if len(r.payload) >= _presign_min()], "put"
        )
        direct = [r for r in records if r.digest in presigned]
        for record in direct:
            self._put_presigned(presigned[record.digest], record)
        if direct:
            self._post_json("/blobs/commit", {"digests": [r.digest for r in direct]})
        rest = [r for r in records if r.digest not in presigned]
        if not rest:
            return

        def frames() -> Iterator[bytes]:
            for record in rest:
                yield encode_frame(record)
                yield record.payload

        self._http.request("POST", "/blobs/records", content=frames())

    def _presign(self, digests: list[Digest], op: str) -> dict[Digest, dict[str, Any]]:
        if not digests:
            return {}
        answer = self._post_json("/blobs/presign", {"digests": digests, "op": op})
        return {Digest(d): u for d, u in answer.get("urls", {}).items()}

    def _put_presigned(self, target: Mapping[str, Any], record: Record) -> None:
        import httpx

        from syllabus.blobs.pack import encode_loose

        body = encode_loose(record)
        try:
            response = httpx.request(
                target.get("method", "PUT"),
                target["url"],
                content=body,
                headers=dict(target.get("headers", {})),
                timeout=120.0,
            )
        except httpx.TransportError as exc:
            raise StorageError(f"presigned upload of {record.digest[:12]} failed: {exc}") from exc
        if response.status_code >= 300:
            raise StorageError(
                f"presigned upload of {record.digest[:12]} answered {response.status_code}"
            )

    def read(self, digest: Digest) -> Record:
        return next(self.read_many([digest]))

    def read_many(self, digests: Iterable[Digest]) -> Iterator[Record]:
        wanted = list(digests)
        for start in range(0, len(wanted), 2000):
            batch = wanted[start : start + 2000]
            with self._lock:
                local = {d: self._pending[d] for d in batch if d in self._pending}
            got: dict[Digest, Record] = dict(local)
            remote = [d for d in dict.fromkeys(batch) if d not in got]
            if remote:
                got.update((r.digest, r) for r in self._fetch(remote))
            for d in batch:
                yield got[d]

    def _fetch(self, digests: list[Digest]) -> Iterator[Record]:
        import json

        body = json.dumps({"digests": digests, "direct": True}).encode()
        client = self._http.client
        url = f"{self._http.api}/blobs/read"
        redirects: list[Redirect] = []
        with client.stream(
            "POST", url, content=body, headers={"Content-Type": "application/json"}
        ) as response:
            if response.status_code >= 400:
                response.read()
                raise_problem(response)
            decoder = FrameDecoder(max_payload=self.MAX_PAYLOAD, redirects=True)
            for chunk in response.iter_bytes():
                for item in decoder.feed_any(chunk):
                    if isinstance(item, Redirect):
                        redirects.append(item)  # fetched once the stream is read
                    else:
                        yield item
            decoder.close()
        for redirect in redirects:
            yield self.get_direct(redirect)

    def get_direct(self, target: Redirect) -> Record:
        """A record downloaded straight from the server's bucket, checked against its
        content id: BlobCorruptError when the bytes are not the record's, BlobNotFoundError
        when the object is gone."""
        import httpx

        from syllabus.blobs.pack import decode_loose
        from syllabus.errors import BlobCorruptError, BlobNotFoundError

        digest = target.digest
        headers = (
            {}
            if target.range is None
            else {"Range": f"bytes={target.range[0]}-{target.range[1] - 1}"}
        )
        try:
            with httpx.Client(timeout=120.0) as direct:
                response = direct.get(target.url, headers=headers)
        except httpx.TransportError as exc:
            raise StorageError(
                f"download of {digest} from the server's bucket failed: {exc}"
            ) from exc
        if response.status_code == 404:
            raise BlobNotFoundError(
                f"content id {digest} is gone from the server's bucket (its download answered 404)"
            )
        if response.status_code >= 300:
            raise StorageError(
                f"download of {digest} from the server's bucket answered {response.status_code}"
            )
        data = response.content
        source = f"the download of {digest} from the server's bucket"
        if target.range is None:
            try:
                record = decode_loose(data, source=source)
            except StorageError as exc:
                raise BlobCorruptError(str(exc)) from None
            if record.digest != digest:
                raise BlobCorruptError(f"{source} holds the record of {record.digest}")
        else:
            if (
                target.flags is None
                or target.size is None
                or len(data) != target.range[1] - target.range[0]
            ):
                raise BlobCorruptError(f"{source} is truncated or incomplete")
            record = Record(digest, target.flags, target.size, data)
        try:
            verify_record(record)
        except BlobCorruptError as exc:
            raise BlobCorruptError(f"{source}: {exc}") from None
        return record

    def info(self, digest: Digest) -> ObjectInfo:
        answer = self._post_json("/blobs/info", {"digests": [digest]})["objects"][0]
        return ObjectInfo(
            Digest(answer["digest"]),
            Flags(answer["flags"]),
            answer["size"],
            answer["stored_size"],
            answer["mtime"],
        )

    def iter_info(self) -> Iterator[ObjectInfo]:
        raise StorageError(
            "listing every blob is done on the server: run `syllabus store du` there"
        )

    def delete(self, digests: Iterable[Digest]) -> int:
        raise StorageError("blobs are deleted by gc on the server: run `syllabus store gc` there")

    def gc_guard(self, *, timeout: float) -> AbstractContextManager[None]:
        raise StorageError("gc runs on the server: run `syllabus store gc` there")

    def close(self) -> None:
        self.flush()


def _presign_min() -> int:
    return PRESIGN_MIN


# -- backend -------------------------------------------------------------------------------


class RemoteBackend:
    """What :class:`~syllabus.client.local.LocalBackend` offers the client, over HTTP."""

    def __init__(self, location: Location, settings: Settings) -> None:
        self.location = location
        self.settings = settings
        self.http = Http(location.db_url, token=settings.token)

    @property
    def raw_engine(self) -> Any:
        raise ConfigError(
            f"{self.http.base} names a Syllabus server: db and store maintenance (fsck, "
            "gc, du) run on the server itself, against its --db and --blobs"
        )

    def workspace_info(self) -> Info:
        """What ``syllabus info`` shows, as the server sees its workspace."""
        response = self.http.request("GET", "/info", retry=True)
        return cast("Info", info_answer().model_validate_json(response.content).root)  # type: ignore[attr-defined]

    engine = raw_engine

    def schema_changed(self) -> None:
        """Nothing to do: the server owns the schema."""

    @cached_property
    def blobs(self) -> BlobStore:
        from syllabus.blobs.store import BlobStore

        return BlobStore(RemoteObjectBackend(self.http))

    @cached_property
    def tracking_store(self) -> TrackingStore:
        return cast("TrackingStore", RemoteTrackingStore(self.http))

    @cached_property
    def tracking(self) -> TrackingService:
        from syllabus.tracking.service import TrackingService

        return TrackingService(
            self.tracking_store,
            lambda: self.blobs,
            system_metrics=self.settings.system_metrics,
            system_metrics_interval=self.settings.system_metrics_interval,
        )

    @cached_property
    def datasets_store(self) -> DatasetStore:
        return cast("DatasetStore", RemoteStore(self.http, "datasets"))

    @cached_property
    def code_store(self) -> CodeStore:
        return cast("CodeStore", RemoteStore(self.http, "code"))

    @cached_property
    def evaluation_store(self) -> EvaluationStore:
        return cast("EvaluationStore", RemoteStore(self.http, "evaluation"))

    @cached_property
    def deploy_store(self) -> DeployStore:
        return cast("DeployStore", RemoteStore(self.http, "deploy"))

    @cached_property
    def pipeline_store(self) -> PipelineStore:
        return cast("PipelineStore", RemoteStore(self.http, "pipelines"))

    @cached_property
    def monitoring_store(self) -> MonitoringStore:
        return cast("MonitoringStore", RemoteStore(self.http, "monitoring"))

    @cached_property
    def monitoring_runner(self) -> RemoteMonitoring:
        """Monitor runs and status, done by the server next to the prediction log."""
        return RemoteMonitoring(self.http)

    @cached_property
    def registry_store(self) -> SqlRegistryStore:
        # Registry and governance in one object, as SqlRegistryStore offers them.
        return cast("SqlRegistryStore", RemoteStore(self.http, "registry"))

    def close(self) -> None:
        if "tracking" in self.__dict__:
            self.__dict__.pop("tracking").close()
        if "blobs" in self.__dict__:
            self.__dict__.pop("blobs").close()
        self.http.close()


def _factory(location: Location, settings: Settings) -> LocalBackend:
    # The client is written against LocalBackend's attributes; RemoteBackend has each of
    # them with the Protocol types the services take.
    return cast("LocalBackend", RemoteBackend(location, settings))


register_scheme("http", _factory)
register_scheme("https", _factory)
