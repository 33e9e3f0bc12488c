"""Blob records over REST, streamed both ways; only missing records travel.

- ``missing``: which of these content ids the server lacks (clients ask before sending).
- ``records``: a stream of frames (see :func:`syllabus.client.remote.encode_frame`), each
  record checked against its content id and stored as it arrives, made durable before the
  answer; an interrupted upload leaves complete records only, never a partial one, and the
  client resumes by asking ``missing`` again.
- ``read``: the records of these content ids, streamed.
- ``info``: size and flags of records.
- ``presign``: presigned URLs for large records when the server's blobs are on S3 (none
  otherwise: the client then streams them through the server).
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
from syllabus.client.remote import FrameDecoder, encode_frame
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
    def read(request: Request, workspace: WORKSPACE_PATH, body: Digests = Body()) -> Any:  # noqa: B008
        """The records of these content ids as a stream of frames, in the order asked."""
        ws = open_ws(request, workspace, Role.VIEWER, "blobs.read")
        backend = ws.backend.blobs.backend
        wanted = _digests(body.digests)
        absent = set(wanted) - backend.contains(wanted)
        if absent:
            raise BlobNotFoundError(
                f"content id {sorted(absent)[0]} is not in this workspace's blob store"
            )

        def frames() -> Iterator[bytes]:
            sent = 0
            for record in backend.read_many(wanted):
                yield encode_frame(record)
                yield record.payload
                sent += len(record.payload)
            state.metrics.add("blob_bytes_sent_total", sent)

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
        """Presigned PUT URLs for records the store lacks, when it is on S3 (none
        otherwise: the client then streams them through the server). Each upload must be
        confirmed with ``commit``, which checks it against its content id."""
        role = Role.EDITOR if body.op == "put" else Role.VIEWER
        ws = open_ws(request, workspace, role, f"blobs.presign ({body.op})")
        wanted = _digests(body.digests)
        backend = ws.backend.blobs.backend
        s3 = _s3(backend)
        if s3 is None or body.op != "put" or not state.config.presign:
            return Presigned(urls={})
        missing = [d for d in wanted if d not in backend.contains(wanted)]
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
