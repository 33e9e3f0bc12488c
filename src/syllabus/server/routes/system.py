"""Health, metrics, the caller's identity and the server's users and tokens (admins)."""

# No ``from __future__ import annotations``: FastAPI reads the endpoint signatures at runtime.

from typing import Any

from fastapi import APIRouter, Body, Request
from fastapi.responses import PlainTextResponse, Response
from pydantic import BaseModel, Field

from syllabus import __version__
from syllabus.server.models import ROLE_NAMES, Role
from syllabus.server.routes._rpc import ERROR_RESPONSES, WORKSPACE_PATH
from syllabus.server.state import ServerState

__all__ = ["router"]


class Health(BaseModel):
    status: str
    version: str
    auth: bool
    workspaces: list[str]


class Identity(BaseModel):
    name: str | None = Field(description="None when auth is disabled (anonymous)")
    admin: bool
    roles: dict[str, str]
    token_workspace: str | None = None


class UserOut(BaseModel):
    id: str
    name: str
    admin: bool
    created_at: int
    disabled_at: int | None = None
    roles: dict[str, str]


class NewUser(BaseModel, extra="forbid"):
    name: str = Field(min_length=1, max_length=128)
    admin: bool = False


class Grant(BaseModel, extra="forbid"):
    user: str = Field(min_length=1, max_length=128)
    workspace: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    role: str = Field(
        description=f"one of {', '.join(ROLE_NAMES)}", pattern="^(viewer|editor|maintainer|admin)$"
    )


class TokenOut(BaseModel):
    id: str
    user: str
    name: str
    prefix: str
    workspace: str | None
    created_at: int
    expires_at: int | None
    revoked_at: int | None
    last_used_at: int | None = None
    secret: str | None = Field(None, description="only when the token is created")


class NewToken(BaseModel, extra="forbid"):
    user: str = Field(min_length=1, max_length=128)
    name: str = Field("", max_length=128)
    workspace: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    expires_in: float | None = Field(None, gt=0, le=10 * 365 * 86400, description="seconds")


class RevokeToken(BaseModel, extra="forbid"):
    token: str = Field(
        min_length=6, max_length=64, description="token id, id prefix or shown prefix"
    )


def router(state: ServerState) -> APIRouter:
    r = APIRouter(responses=ERROR_RESPONSES)

    @r.get("/health", response_model=Health, tags=["server"])
    def health() -> Any:
        """Whether the server is up (no token needed)."""
        return Health(
            status="ok",
            version=__version__,
            auth=state.auth.enabled,
            workspaces=sorted(state.workspaces),
        )

    @r.get("/whoami", response_model=Identity, tags=["server"])
    def whoami(request: Request) -> Any:
        """The caller: name, server admin or not, role in each workspace."""
        p = state.auth.principal(request)
        if p is None:
            return Identity(name=None, admin=True, roles=dict.fromkeys(state.workspaces, "admin"))
        return Identity(
            name=p.name,
            admin=p.admin,
            roles={w: r.label for w, r in p.roles.items()},
            token_workspace=p.token_workspace,
        )

    @r.get(
        "/w/{workspace}/info",
        tags=["server"],
        response_class=Response,
        responses={200: {"description": "What `syllabus info` shows", "content": {
            "application/json": {"schema": {"type": "object"}}}}},
    )  # fmt: skip
    def workspace_info(request: Request, workspace: WORKSPACE_PATH) -> Response:
        """A workspace: versions, database (URL without secrets), schema revision, row
        counts and sizes, blob store usage (viewers)."""
        from syllabus.client.client import Info
        from syllabus.client.remote import info_answer
        from syllabus.meta import info as db_info

        state.auth.require(request, workspace, Role.VIEWER, "workspace info")
        ws = state.workspace(workspace)
        usage = ws.backend.blobs.du()
        info = Info(
            version=__version__,
            workspace=ws.name,
            database=db_info(ws.backend.engine),
            blobs_url=ws.backend.blobs.url,
            blobs_backend=type(ws.backend.blobs.backend).__name__,
            blob_objects=usage.total.count,
            blob_stored_bytes=usage.total.stored_bytes,
            blob_logical_bytes=usage.total.logical_bytes,
        )
        body = info_answer().model_construct(info).model_dump_json(warnings=False)  # type: ignore[arg-type]
        return Response(body, media_type="application/json")

    @r.get("/admin/users", response_model=list[UserOut], tags=["admin"])
    def list_users(request: Request) -> Any:
        """Every user with their roles (server admins)."""
        state.auth.require_admin(request, "listing users")
        return [UserOut(**_fields(u)) for u in state.auth_store.list_users()]

    @r.post("/admin/users", response_model=UserOut, tags=["admin"])
    def add_user(request: Request, body: NewUser = Body()) -> Any:  # noqa: B008
        """Add a user (server admins)."""
        state.auth.require_admin(request, "adding users")
        return UserOut(**_fields(state.auth_store.add_user(body.name, admin=body.admin)))

    @r.post("/admin/roles", response_model=UserOut, tags=["admin"])
    def grant(request: Request, body: Grant = Body()) -> Any:  # noqa: B008
        """Give a user a role in a workspace (server admins)."""
        state.auth.require_admin(request, "granting roles")
        return UserOut(**_fields(state.auth_store.grant(body.user, body.workspace, body.role)))

    @r.get("/admin/tokens", response_model=list[TokenOut], tags=["admin"])
    def list_tokens(request: Request) -> Any:
        """Every token (never a secret; server admins)."""
        state.auth.require_admin(request, "listing tokens")
        return [TokenOut(**_fields(t)) for t in state.auth_store.list_tokens()]

    @r.post("/admin/tokens", response_model=TokenOut, tags=["admin"])
    def create_token(request: Request, body: NewToken = Body()) -> Any:  # noqa: B008
        """Make a token for a user; the answer is the only place its secret appears."""
        state.auth.require_admin(request, "making tokens")
        token = state.auth_store.create_token(
            body.user, name=body.name, workspace=body.workspace, expires_in=body.expires_in
        )
        return TokenOut(**_fields(token))

    @r.post("/admin/tokens/revoke", response_model=TokenOut, tags=["admin"])
    def revoke_token(request: Request, body: RevokeToken = Body()) -> Any:  # noqa: B008
        """Revoke a token at once (server admins)."""
        state.auth.require_admin(request, "revoking tokens")
        return TokenOut(**_fields(state.auth_store.revoke_token(body.token)))

    return r


def metrics_response(state: ServerState) -> Response:
    return PlainTextResponse(state.metrics.render(), media_type="text/plain; version=0.0.4")


def _fields(obj: Any) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in obj.__slots__}
