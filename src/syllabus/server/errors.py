"""Errors as RFC 9457 problem JSON: every error answer, with the error's stable ``code``.

The remote client reads ``code`` and raises the same :class:`~syllabus.errors.SyllabusError`
subclass (:func:`syllabus.errors.error_class_for_code`). Unexpected exceptions are logged
with their traceback on the server and answered with a generic 500: no stack trace ever
reaches a client.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any, Final

from syllabus.errors import InvalidArgumentError, SyllabusError

if TYPE_CHECKING:
    from fastapi import FastAPI, Request
    from starlette.responses import Response

__all__ = ["PROBLEM_SCHEMA", "install_error_handlers", "problem", "problem_response"]

log = logging.getLogger("syllabus.server")

PROBLEM_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "title": "Problem",
    "description": "RFC 9457 problem details; `code` is the error's stable code.",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string"},
        "instance": {"type": "string"},
    },
    "required": ["type", "title", "status", "detail", "code"],
}

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def problem(status: int, code: str, detail: str, instance: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": f"https://syllabus.dev/errors/{code}",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "code": code,
    }
    if instance:
        body["instance"] = instance
    return body


def problem_bytes(status: int, code: str, detail: str) -> bytes:
    return json.dumps(problem(status, code, detail)).encode()


def problem_response(status: int, code: str, detail: str, **headers: str) -> Response:
    from starlette.responses import Response

    return Response(
        problem_bytes(status, code, detail),
        status_code=status,
        media_type="application/problem+json",
        headers=headers or None,
    )


def from_exception(exc: SyllabusError) -> Response:
    extra = {"WWW-Authenticate": "Bearer"} if exc.http_status == 401 else {}
    return problem_response(exc.http_status, exc.code, exc.message, **extra)


def _validation_detail(errors: Any) -> str:
    parts = []
    for err in list(errors)[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        parts.append(f"{loc or 'body'}: {err.get('msg', 'invalid')}")
    return "invalid request: " + "; ".join(parts)


def install_error_handlers(app: FastAPI) -> None:
    """Problem JSON for library errors, bad requests, HTTP errors and crashes."""
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException

    async def on_syllabus(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SyllabusError)
        if exc.http_status >= 500:
            log.error("%s %s: %s", request.method, request.url.path, exc)
        return from_exception(exc)

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return problem_response(400, InvalidArgumentError.code, _validation_detail(exc.errors()))

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = {
            404: "not_found",
            405: "method_not_allowed",
            401: "unauthenticated",
            413: "request_too_large",
        }.get(exc.status_code, "http_error")
        return problem_response(exc.status_code, code, str(exc.detail))

    async def on_crash(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error in %s %s", request.method, request.url.path)
        return problem_response(
            500, "internal_error", "internal server error (logged on the server)"
        )

    app.add_exception_handler(SyllabusError, on_syllabus)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(HTTPException, on_http)
    app.add_exception_handler(Exception, on_crash)
