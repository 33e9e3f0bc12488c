"""Request hardening as one ASGI middleware: strict paths, body size limits, metrics.

- Paths must be normal: no ``.``/``..`` segments, no empty segments, no backslashes, NUL
  or percent-encoded separators or dots. Anything else is refused with 400, before routing.
- Request bodies are limited to ``max_body`` bytes (by ``Content-Length`` up front and by
  counting a chunked stream); the blob upload stream is limited per record instead.
- Every answer is counted and timed for ``/metrics`` by its route name (never the raw path).
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any, Final

from syllabus.server.errors import problem_bytes
from syllabus.server.metrics import Metrics

__all__ = ["Guard", "Limits"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_BAD_RAW: Final = re.compile(rb"%(2[eEfF]|5[cC]|00)|\\|\x00")
STREAM_SUFFIX: Final = "/blobs/records"


@dataclass(frozen=True)
class Limits:
    """Bounds on what one request may ask of the server."""

    max_body: int = 16 * 1024 * 1024
    max_page: int = 10_000
    max_record: int = 512 * 1024 * 1024


def bad_path(path: str, raw: bytes) -> str | None:
    """Why ``path`` is not a normal path (None when it is)."""
    if not path.startswith("/"):
        return "path must start with /"
    if _BAD_RAW.search(raw):
        return "encoded separators, dots, backslashes and NUL are not allowed in paths"
    segments = path.split("/")[1:]
    if any(s in (".", "..") for s in segments):
        return "'.' and '..' segments are not allowed in paths"
    if any(s == "" for s in segments[:-1]):
        return "empty path segments are not allowed"
    return None


class Guard:
    """The hardening middleware (outermost, so its answers are problem JSON too)."""

    def __init__(self, app: ASGIApp, *, limits: Limits, metrics: Metrics) -> None:
        self.app = app
        self.limits = limits
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        why = bad_path(path, scope.get("raw_path") or path.encode())
        if why is not None:
            await _answer(send, 400, "invalid_argument", f"invalid path: {why}")
            return
        limit = None if path.endswith(STREAM_SUFFIX) else self.limits.max_body
        if limit is not None:
            for name, value in scope.get("headers", ()):
                if name == b"content-length":
                    try:
                        size = int(value)
                    except ValueError:
                        await _answer(send, 400, "invalid_argument", "invalid Content-Length")
                        return
                    if size > limit:
                        await _answer(
                            send, 413, "request_too_large", f"request body over {limit} bytes"
                        )
                        return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if limit is not None and message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    from starlette.exceptions import HTTPException

                    raise HTTPException(413, f"request body over {limit} bytes")
            return message

        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        t0 = time.perf_counter()
        self.metrics.in_flight += 1
        try:
            await self.app(scope, counted, sending)
        finally:
            self.metrics.in_flight -= 1
            endpoint = scope.get("endpoint")
            route = getattr(endpoint, "__name__", None) or "unmatched"
            self.metrics.observe(scope.get("method", "?"), route, status, time.perf_counter() - t0)


async def _answer(send: Send, status: int, code: str, detail: str) -> None:
    body = problem_bytes(status, code, detail)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
