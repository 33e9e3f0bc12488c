"""Routes generated from a store Protocol: one ``POST /w/{workspace}/<component>/<method>``
per method, with the method's arguments as the JSON body and its result as the answer.

Argument and result models come from :func:`syllabus.client.remote.call_spec`, the same
specifications the remote client uses, so both ends agree by construction and the OpenAPI
document describes every body exactly.
"""

# No ``from __future__ import annotations``: FastAPI reads the endpoint signatures at runtime.

import dataclasses
import inspect
from collections.abc import Callable, Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Request
from fastapi.responses import Response

from syllabus.client.remote import CallSpec, call_spec, protocol_methods
from syllabus.errors import InvalidArgumentError
from syllabus.registry.store import Audit
from syllabus.server.models import Principal, Role
from syllabus.server.state import ServerState, Workspace

__all__ = ["ERROR_RESPONSES", "WORKSPACE_PATH", "Handler", "RoleRule", "store_router"]

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

RoleRule = Role | Callable[[Mapping[str, Any]], Role]
Handler = Callable[[Workspace, Principal | None, dict[str, Any]], Any]


def default_role(method: str) -> Role:
    return Role.VIEWER if method.startswith(READS) else Role.EDITOR


def stamp(args: dict[str, Any], principal: Principal | None) -> dict[str, Any]:
    """Record the authenticated user as the actor of a change (audit, run user)."""
    if principal is None:
        return args
    audit = args.get("audit")
    if isinstance(audit, Audit):
        args["audit"] = dataclasses.replace(audit, actor=principal.name)
    for name in ("actor", "user"):
        if isinstance(args.get(name), str):
            args[name] = principal.name
    return args


def check_page(args: Mapping[str, Any], max_page: int) -> None:
    for name in _PAGE_ARGS:
        value = args.get(name)
        if isinstance(value, int) and not 0 < value <= max_page:
            raise InvalidArgumentError(f"{name} must be between 1 and {max_page}, not {value}")


def json_response(spec: CallSpec, value: Any) -> Response:
    body = spec.result.model_construct(value).model_dump_json(warnings=False)
    return Response(body, media_type="application/json")


def _endpoint(
    state: ServerState,
    spec: CallSpec,
    store_of: Callable[[Workspace], Any],
    role: RoleRule,
    handler: Handler | None,
) -> Callable[..., Response]:
    fields = tuple(spec.args.model_fields)
    what = f"{spec.component}.{spec.method}"

    def endpoint(request: Request, workspace: str, body: Any = None) -> Response:
        args = {name: getattr(body, name) for name in fields} if body is not None else {}
        needed = role if isinstance(role, Role) else role(args)
        principal = state.auth.require(request, workspace, needed, what)
        ws = state.workspace(workspace)
        check_page(args, state.config.limits.max_page)
        args = stamp(args, principal)
        if handler is not None:
            value = handler(ws, principal, args)
        else:
            value = getattr(store_of(ws), spec.method)(**args)
        return json_response(spec, value)

    body_type: Any = Annotated[spec.args, Body()]
    body_default: Any = inspect.Parameter.empty
    if not fields:
        body_type = Annotated[spec.args | None, Body()]
        body_default = None
    param = inspect.Parameter
    kind = param.POSITIONAL_OR_KEYWORD
    endpoint.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            param("request", kind, annotation=Request),
            param("workspace", kind, annotation=WORKSPACE_PATH),
            param("body", kind, annotation=body_type, default=body_default),
        ]
    )
    endpoint.__name__ = what
    return endpoint


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
    router = APIRouter(prefix="/w/{workspace}", tags=[component])
    for method in protocol_methods(component):
        if method in hidden:
            continue
        spec = call_spec(component, method)
        role = (roles or {}).get(method, default_role(method))
        label = role.label if isinstance(role, Role) else "depends on the arguments"
        router.add_api_route(
            spec.path,
            _endpoint(state, spec, store_of, role, (handlers or {}).get(method)),
            methods=["POST"],
            response_model=spec.result,
            summary=spec.doc.splitlines()[0] if spec.doc else method,
            description=f"{spec.doc}\n\nRole needed: {label}.",
            operation_id=f"{component}_{method}",
            responses=ERROR_RESPONSES,
        )
    return router
