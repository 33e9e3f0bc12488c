"""Routes generated from a store Protocol: one ``POST /w/{workspace}/<component>/<method>``
per method, with the method's arguments as the JSON body and its result as the answer.

Argument and result models come from :func:`syllabus.client.remote.call_spec`, the same
specifications the remote client uses, so both ends agree by construction and the OpenAPI
document describes every body exactly.
"""

# No ``from __future__ import annotations``: FastAPI reads the endpoint signatures at runtime.

import dataclasses
import logging
from collections.abc import Awaitable, Callable, Mapping
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from syllabus.errors import ConflictError, InvalidArgumentError, NotFoundError
from syllabus.server.models import Principal, Role
from syllabus.server.state import ServerState, Workspace

if TYPE_CHECKING:
    from syllabus.client.remote import CallSpec

__all__ = [
    "ERROR_RESPONSES",
    "WORKSPACE_PATH",
    "Handler",
    "RoleRule",
    "document",
    "stamp",
    "stamp_actor",
    "store_router",
]

log = logging.getLogger("syllabus.server")

READS = ("get", "list", "search", "latest", "version_for", "resolve", "find", "runs_with")
WORKSPACE_PATH = Annotated[
    str, Path(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$", description="Workspace name")
]
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {
        "description": "Problem (RFC 9457) with the error's stable code",
        "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        },
    },
    "5XX": {
        "description": "Problem (RFC 9457)",
        "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        },
    },
}
_PAGE_ARGS = ("max_results", "limit")
ACTOR_ARGS = ("actor", "user")

RoleRule = Role | Callable[[Mapping[str, Any]], Role]
Handler = Callable[[Workspace, Principal | None, dict[str, Any]], Any]


def default_role(method: str) -> Role:
    return Role.VIEWER if method.startswith(READS) else Role.EDITOR


def stamp(args: dict[str, Any], principal: Principal | None) -> dict[str, Any]:
    """Record the authenticated user as the actor of a change (audit, run user)."""
    if principal is None:
        return args
    return stamp_actor(args, principal.name)


def stamp_actor(args: dict[str, Any], user: str) -> dict[str, Any]:
    """``args`` of a store call with ``user`` as the actor of the change (the web UI stamps
    the signed-in user's calls with it too)."""
    from syllabus.registry.store import Audit

    audit = args.get("audit")
    if isinstance(audit, Audit):
        args["audit"] = dataclasses.replace(audit, actor=user)
    for name in ACTOR_ARGS:
        if isinstance(args.get(name), str):
            args[name] = user
    return args


def check_page(args: Mapping[str, Any], max_page: int) -> None:
    for name in _PAGE_ARGS:
        value = args.get(name)
        if isinstance(value, int) and not 0 < value <= max_page:
            raise InvalidArgumentError(f"{name} must be between 1 and {max_page}, not {value}")


def json_response(spec: "CallSpec", value: Any) -> Response:
    body = spec.result.model_construct(value).model_dump_json(warnings=False)
    return Response(body, media_type="application/json")


def _endpoint(  # noqa: PLR0917 - private, called once
    state: ServerState,
    component: str,
    method: str,
    store_of: Callable[[Workspace], Any],
    role: RoleRule,
    handler: Handler | None,
) -> Callable[..., Awaitable[Response]]:
    what = f"{component}.{method}"

    def call(request: Request, workspace: str, raw: bytes) -> Response:
        from pydantic import ValidationError

        from syllabus.client.remote import call_spec

        spec = call_spec(component, method)  # built on first use: the server starts fast
        try:
            body = spec.args.model_validate_json(raw or b"{}")
        except ValidationError as exc:
            raise InvalidArgumentError(_invalid(exc)) from None
        args = {name: getattr(body, name) for name in spec.args.model_fields}
        needed = role if isinstance(role, Role) else role(args)
        principal = state.auth.require(request, workspace, needed, what)
        ws = state.workspace(workspace)
        check_page(args, state.config.limits.max_page)
        args = stamp(args, principal)
        try:
            if handler is not None:
                value = handler(ws, principal, args)
            else:
                value = getattr(store_of(ws), method)(**args)
        except _db_errors() as exc:
            raise _translate(exc, what) from exc
        return json_response(spec, value)

    async def endpoint(request: Request, workspace: WORKSPACE_PATH) -> Response:
        raw = await request.body()
        return await run_in_threadpool(call, request, workspace, raw)

    endpoint.__name__ = what
    return endpoint


@cache
def _db_errors() -> tuple[type[Exception], ...]:
    from sqlalchemy.exc import DataError, IntegrityError, NoResultFound

    return (NoResultFound, IntegrityError, DataError, OverflowError)


def _translate(exc: Exception, what: str) -> Exception:
    """A store that let a database error through on bad input: answer what it means (a
    missing object, a constraint) rather than 500; the server log keeps the details."""
    from sqlalchemy.exc import DataError, NoResultFound

    log.warning("%s: database error on bad input: %s", what, exc)
    if isinstance(exc, NoResultFound):
        return NotFoundError(f"{what}: an object the request names does not exist")
    if isinstance(exc, OverflowError | DataError):
        return InvalidArgumentError(f"{what}: a value is out of range for the database")
    return ConflictError(f"{what}: the request contradicts stored data (a constraint refused it)")


def _invalid(exc: Any) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()))
        parts.append(f"{loc or 'body'}: {err.get('msg', 'invalid')}")
    return "invalid request: " + "; ".join(parts)


def document(schema: dict[str, Any]) -> None:
    """Fill the request and answer schemas of the generated routes into an OpenAPI
    document (done when the document is first asked for, not at start-up)."""
    from pydantic.json_schema import models_json_schema

    from syllabus.client.remote import call_spec

    operations = [
        op
        for item in schema.get("paths", {}).values()
        for op in item.values()
        if isinstance(op, dict) and "x-syllabus-call" in op
    ]
    specs = [call_spec(*op["x-syllabus-call"]) for op in operations]
    models: list[tuple[Any, Any]] = []
    for spec in specs:
        models += [(spec.args, "validation"), (spec.result, "serialization")]
    refs, defs = models_json_schema(models, ref_template="#/components/schemas/{model}")
    schema.setdefault("components", {}).setdefault("schemas", {}).update(defs.get("$defs", {}))
    for op, spec in zip(operations, specs, strict=True):
        has_args = bool(spec.args.model_fields)
        op["requestBody"] = {
            "required": any(f.is_required() for f in spec.args.model_fields.values()),
            "content": {"application/json": {"schema": refs[(spec.args, "validation")]}},
        }
        if not has_args:
            op["requestBody"]["required"] = False
        op["responses"]["200"] = {
            "description": "The method's result",
            "content": {"application/json": {"schema": refs[(spec.result, "serialization")]}},
        }


def store_router(
    state: ServerState,
    component: str,
    store_of: Callable[[Workspace], Any],
    *,
    roles: Mapping[str, RoleRule] | None = None,
    handlers: Mapping[str, Handler] | None = None,
    hidden: tuple[str, ...] = (),
) -> APIRouter:
    """A router exposing every method of ``component``'s store Protocol(s)."""
    from syllabus.client.remote import protocol_docs

    router = APIRouter(prefix="/w/{workspace}", tags=[component])
    for method, doc in protocol_docs(component).items():
        if method in hidden:
            continue
        role = (roles or {}).get(method, default_role(method))
        label = role.label if isinstance(role, Role) else "depends on the arguments"
        router.add_api_route(
            f"/{component}/{method}",
            _endpoint(state, component, method, store_of, role, (handlers or {}).get(method)),
            methods=["POST"],
            summary=doc.splitlines()[0],
            description=f"{doc}\n\nRole needed: {label}.",
            operation_id=f"{component}_{method}",
            responses=ERROR_RESPONSES,
            openapi_extra={"x-syllabus-call": [component, method]},
        )
    return router
