"""Blob records over REST, streamed both ways; only missing records travel.

- ``missing``: which of these content ids the server lacks (clients ask before sending).
- ``records``: a stream of frames (see :func:`syllabus.client.remote.encode_frame`), each
  record checked against its content id and stored as it arrives, made durable before the
  answer; an interrupted upload leaves complete records only, never a partial one, and the
  client resumes by asking ``missing`` again.
- ``read``: the records of these content ids, streamed. A client that asks with
  ``direct: true`` gets, for each record of at least 1 MiB stored on S3, a *redirect frame*
  instead of its bytes: a presigned GET (with the byte range inside a pack when the record
  is packed); it downloads the record straight from the bucket and checks its content id.
  Smaller records, and every record of a server whose blobs are not on S3, stream through
  the server.
- ``info``: size and flags of records.
- ``presign``: presigned PUT URLs for large records the store lacks, or presigned GETs of
  large stored records, when the server's blobs are on S3 (none otherwise: the client then
  streams them through the server).
"""

# No ``from __future__ import annotations``: FastAPI reads the endpoint signatures at runtime.

from collections.abc import Iterator
from typing import Any, Literal

from fastapi import APIRouter, Body, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from syllabus.blobs.backend import Flags, Record
from syllabus.blobs.digest import Digest
from syllabus.client.remote import (
    PRESIGN_MIN,
    FrameDecoder,
    encode_frame,
    encode_redirect,
)
from syllabus.errors import (
    BlobCorruptError,
    BlobNotFoundError,
    InvalidArgumentError,
    SyllabusError,
)
from syllabus.server.models import Role
from syllabus.server.routes._rpc import ERROR_RESPONSES, WORKSPACE_PATH
from syllabus.server.state import ServerState, Workspace

__all__ = ["router"]

HEX64 = r"^[0-9a-f]{64}$"
_WRITE_BATCH = 8 * 1024 * 1024


class Digests(BaseModel, extra="forbid"):
    digests: list[str] = Field(max_length=10_000, json_schema_extra={"items": {"pattern": HEX64}})


class ReadRequest(Digests, extra="forbid"):
    direct: bool = Field(
        False,
        description="answer records of 1 MiB or more stored on S3 with redirect frames "
        "(presigned GETs) instead of their bytes",
    )


class Missing(BaseModel):
    missing: list[str]


class Stored(BaseModel):
    records: int
    bytes: int


class Info(BaseModel):
    digest: str
    flags: int
    size: int
    stored_size: int
    mtime: float


class Infos(BaseModel):
    objects: list[Info]


class PresignRequest(BaseModel, extra="forbid"):
    digests: list[str] = Field(max_length=1000)
    op: Literal["put", "get"]


class Presigned(BaseModel):
    urls: dict[str, dict[str, Any]]


def _digests(values: list[str]) -> list[Digest]:
    try:
        return [Digest(v) for v in values]
    except ValueError as exc:
        raise InvalidArgumentError(f"invalid content id: {exc}") from None


def check_record(record: Record) -> None:
    """Refuse a record whose bytes do not stand for its content id (chunk lists: well
    formed and adding up to the size; their chunks are checked as records themselves)."""
    from syllabus.blobs.records import decode_chunklist, logical_bytes, verified_bytes

    try:
        if record.flags & Flags.CHUNKLIST:
            chunks = decode_chunklist(logical_bytes(record), digest=record.digest)
            total = sum(n for _, n in chunks)
        else:
            total = len(verified_bytes(record))
    except BlobCorruptError as exc:
        raise InvalidArgumentError(f"upload refused: {exc}") from None
    if total != record.size:
        raise InvalidArgumentError(f"upload refused: object {record.digest}: sizes do not add up")


def _s3(backend: object) -> Any:
    """The S3 backend behind a workspace's blob store, or None."""
    try:
        from syllabus.blobs.s3 import S3Backend
    except ImportError:  # boto3 not installed: no S3 store either
        return None
    return backend if isinstance(backend, S3Backend) else None


_GET_EXPIRES = 900


def direct_gets(backend: object, digests: list[Digest], *, enabled: bool) -> dict[Digest, Any]:
    """Presigned GETs of the records among ``digests`` stored on S3 with at least
    :data:`PRESIGN_MIN` bytes: ``{"url", "range" (end exclusive, or None: the whole loose
    object), "flags", "size"}`` for the client to fetch them from the bucket itself."""
    s3 = _s3(backend)
    if s3 is None or not enabled or not digests:
        return {}
    from syllabus.blobs.pack import RECORD_HEADER

    out: dict[Digest, Any] = {}
    unknown: list[Digest] = []
    s3._ensure_loaded()
    with s3._lock:
        for digest in dict.fromkeys(digests):
            loc = s3._index.get(digest)
            if loc is None:
                if digest not in s3._pending and digest not in s3._sealing:
                    unknown.append(digest)
                continue
            pid, entry = loc
            if entry.stored_len >= PRESIGN_MIN:
                out[digest] = (
                    s3._pack_key(pid),
                    [entry.offset, entry.offset + entry.stored_len],
                    int(entry.flags),
                    entry.size,
                )
    for digest, size in s3._loose_sizes(unknown).items():
        if size - RECORD_HEADER.size >= PRESIGN_MIN:
            out[digest] = (s3._loose_key(digest), None, None, None)
    client = s3._io.client
    return {
        digest: {
            "url": client.generate_presigned_url(
                "get_object", Params={"Bucket": s3._io.bucket, "Key": key}, ExpiresIn=_GET_EXPIRES
            ),
            "range": span,
            "flags": flags,
            "size": size,
        }
        for digest, (key, span, flags, size) in out.items()
    }


def router(state: ServerState) -> APIRouter:  # noqa: PLR0915 - one closure per route
    r = APIRouter(prefix="/w/{workspace}/blobs", tags=["blobs"], responses=ERROR_RESPONSES)
    max_record = state.config.limits.max_record

    def open_ws(request: Request, workspace: str, role: Role, what: str) -> Workspace:
        state.auth.require(request, workspace, role, what)
        return state.workspace(workspace)

    @r.post("/missing", response_model=Missing, operation_id="blobs_missing")
    def missing(request: Request, workspace: WORKSPACE_PATH, body: Digests = Body()) -> Any:  # noqa: B008
        """Which of these content ids the server does not have."""
        ws = open_ws(request, workspace, Role.VIEWER, "blobs.missing")
        wanted = _digests(body.digests)
        present = ws.backend.blobs.backend.contains(wanted)
        return Missing(missing=[d for d in dict.fromkeys(wanted) if d not in present])

    @r.post(
        "/records",
        response_model=Stored,
        operation_id="blobs_records",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
                },
            }
        },
    )
    async def records(request: Request, workspace: WORKSPACE_PATH) -> Any:
        """Store a stream of record frames; durable when the answer comes."""
        ws = await run_in_threadpool(open_ws, request, workspace, Role.EDITOR, "blobs.records")
        backend = await run_in_threadpool(lambda: ws.backend.blobs.backend)
        decoder = FrameDecoder(max_payload=max_record)
        batch: list[Record] = []
        size = count = 0

        def store(records: list[Record]) -> None:
            for record in records:
                check_record(record)
            backend.write(records)

        async for chunk in request.stream():
            for record in decoder.feed(chunk):
                batch.append(record)
                size += len(record.payload)
                count += 1
            if sum(len(x.payload) for x in batch) >= _WRITE_BATCH:
                await run_in_threadpool(store, batch)
                batch = []
        decoder.close()
        if batch:
            await run_in_threadpool(store, batch)
        await run_in_threadpool(backend.flush)
        state.metrics.add("blob_bytes_received_total", size)
        return Stored(records=count, bytes=size)

    @r.post(
        "/read",
        operation_id="blobs_read",
        responses={
            200: {
                "content": {
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
                }
            }
        },
        response_class=Response,
    )
    def read(request: Request, workspace: WORKSPACE_PATH, body: ReadRequest = Body()) -> Any:  # noqa: B008
        """The records of these content ids as a stream of frames, in the order asked (with
        ``direct``, large records on S3 as redirect frames to download from the bucket)."""
        ws = open_ws(request, workspace, Role.VIEWER, "blobs.read")
        backend = ws.backend.blobs.backend
        wanted = _digests(body.digests)
        absent = set(wanted) - backend.contains(wanted)
        if absent:
            raise BlobNotFoundError(
                f"content id {sorted(absent)[0]} is not in this workspace's blob store"
            )
        redirects = direct_gets(backend, wanted, enabled=body.direct and state.config.presign)
        streamed = [d for d in wanted if d not in redirects]

        def frames() -> Iterator[bytes]:
            sent = 0
            records = backend.read_many(streamed)
            for digest in wanted:
                target = redirects.get(digest)
                if target is not None:
                    head, payload = encode_redirect(digest, target)
                    yield head
                    yield payload
                    continue
                record = next(records)
                yield encode_frame(record)
                yield record.payload
                sent += len(record.payload)
            state.metrics.add("blob_bytes_sent_total", sent)
            if redirects:
                state.metrics.add("blob_records_redirected_total", len(redirects))

        return StreamingResponse(frames(), media_type="application/octet-stream")

    @r.post("/info", response_model=Infos, operation_id="blobs_info")
    def info(request: Request, workspace: WORKSPACE_PATH, body: Digests = Body()) -> Any:  # noqa: B008
        """Flags, logical and stored size and write time of records."""
        ws = open_ws(request, workspace, Role.VIEWER, "blobs.info")
        backend = ws.backend.blobs.backend
        out = []
        for d in _digests(body.digests[:1000]):
            i = backend.info(d)
            out.append(
                Info(
                    digest=i.digest,
                    flags=int(i.flags),
                    size=i.size,
                    stored_size=i.stored_size,
                    mtime=i.mtime,
                )
            )
        return Infos(objects=out)

    @r.post("/presign", response_model=Presigned, operation_id="blobs_presign")
    def presign(request: Request, workspace: WORKSPACE_PATH, body: PresignRequest = Body()) -> Any:  # noqa: B008
        """Presigned PUT URLs for records the store lacks (``op: put``) or presigned GETs
        of stored records of 1 MiB or more (``op: get``), when the store is on S3 (none
        otherwise: the client then streams them through the server). Each upload must be
        confirmed with ``commit``, which checks it against its content id."""
        role = Role.EDITOR if body.op == "put" else Role.VIEWER
        ws = open_ws(request, workspace, role, f"blobs.presign ({body.op})")
        wanted = _digests(body.digests)
        backend = ws.backend.blobs.backend
        if body.op == "get":
            gets = direct_gets(backend, wanted, enabled=state.config.presign)
            return Presigned(urls={str(d): target for d, target in gets.items()})
        s3 = _s3(backend)
        if s3 is None or not state.config.presign:
            return Presigned(urls={})
        present = backend.contains(wanted)
        missing = [d for d in wanted if d not in present]
        urls = {
            str(d): {
                "method": "PUT",
                "url": s3._io.client.generate_presigned_url(
                    "put_object",
                    Params={"Bucket": s3._io.bucket, "Key": s3._loose_key(d)},
                    ExpiresIn=900,
                ),
            }
            for d in missing
        }
        return Presigned(urls=urls)

    @r.post("/commit", response_model=Stored, operation_id="blobs_commit")
    def commit(request: Request, workspace: WORKSPACE_PATH, body: Digests = Body()) -> Any:  # noqa: B008
        """Check records uploaded with presigned URLs against their content ids (a bad one
        is deleted and refused)."""
        ws = open_ws(request, workspace, Role.EDITOR, "blobs.commit")
        backend = ws.backend.blobs.backend
        s3 = _s3(backend)
        if s3 is None:
            raise InvalidArgumentError("this server's blob store takes no presigned uploads")
        size = 0
        for digest in _digests(body.digests[:1000]):
            try:
                record = backend.read(digest)
                check_record(record)
            except BlobNotFoundError:
                raise
            except SyllabusError as exc:  # undecodable or not the bytes of its content id
                s3._io.delete_keys([s3._loose_key(digest)])
                raise InvalidArgumentError(f"presigned upload of {digest} refused: {exc}") from None
            size += len(record.payload)
        state.metrics.add("blob_bytes_presigned_total", size)
        return Stored(records=len(body.digests), bytes=size)

    return r
