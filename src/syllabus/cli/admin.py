"""``syllabus admin``: users, roles and API tokens of the team server.

These commands work on the server's database directly (``--db``, or this workspace's), so
the first admin can be made before the server runs; admins can also manage users over
the REST API (``/api/v1/admin/...``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from syllabus.cli.output import Format, emit_json, emit_rows, format_option, note

if TYPE_CHECKING:
    from syllabus.server.sql import SqlAuthStore

__all__ = ["admin"]

_DB = click.option("--db", metavar="URL", help="The server's database (default: this workspace's).")


def _store(db: str | None) -> SqlAuthStore:
    from syllabus.meta import create_engine, ensure_schema
    from syllabus.server.sql import SqlAuthStore

    if db is None:
        from syllabus.client import Client

        db = Client(create=False).location.db_url
        if "://" in db and db.split("://", 1)[0] in ("http", "https"):
            from syllabus.errors import ConfigError

            raise ConfigError("give --db: admin commands work on the server's database")
    engine = create_engine(db)
    ensure_schema(engine)
    return SqlAuthStore(engine)


def _when(ms: int | None) -> str:
    if ms is None:
        return "-"
    import datetime as dt

    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M")


@click.group("admin")
def admin() -> None:
    """Users, roles and API tokens of the team server."""


@admin.group("users")
def users() -> None:
    """Users and their role in each workspace."""


@users.command("add")
@click.argument("name")
@click.option("--admin", "is_admin", is_flag=True, help="A server admin (every role everywhere).")
@click.option(
    "--role",
    type=click.Choice(["viewer", "editor", "maintainer", "admin"]),
    help="Also give this role in --workspace.",
)
@click.option("--workspace", default="default", show_default=True)
@_DB
def users_add(name: str, is_admin: bool, role: str | None, workspace: str, db: str | None) -> None:
    """Add user NAME.

    \b
    Example:
      syllabus admin users add alice --role editor
    """
    store = _store(db)
    store.add_user(name, admin=is_admin)
    if role:
        store.grant(name, workspace, role)
    note(f"added user {name!r}" + (f" ({role} in {workspace})" if role else ""))


@users.command("list")
@format_option()
@_DB
def users_list(fmt: Format, db: str | None) -> None:
    """List users with their roles.

    \b
    Example:
      syllabus admin users list
    """
    rows = [
        {
            "name": u.name,
            "admin": u.admin,
            "roles": ", ".join(f"{w}:{r}" for w, r in sorted(u.roles.items())),
            "created": _when(u.created_at),
            "disabled": _when(u.disabled_at),
        }
        for u in _store(db).list_users()
    ]
    emit_rows(rows, ["name", "admin", "roles", "created", "disabled"], fmt, empty="no users")


@users.command("grant")
@click.argument("name")
@click.argument("role", type=click.Choice(["viewer", "editor", "maintainer", "admin"]))
@click.option("--workspace", default="default", show_default=True)
@_DB
def users_grant(name: str, role: str, workspace: str, db: str | None) -> None:
    """Give user NAME the role ROLE in a workspace (replacing their role there).

    \b
    Example:
      syllabus admin users grant bob maintainer --workspace default
    """
    _store(db).grant(name, workspace, role)
    note(f"{name} is {role} in {workspace}")


@users.command("revoke")
@click.argument("name")
@click.option("--workspace", default="default", show_default=True)
@_DB
def users_revoke(name: str, workspace: str, db: str | None) -> None:
    """Take away user NAME's role in a workspace.

    \b
    Example:
      syllabus admin users revoke bob --workspace default
    """
    removed = _store(db).revoke_role(name, workspace)
    note(f"{name} has no role in {workspace}" + ("" if removed else " (had none)"))


@users.command("disable")
@click.argument("name")
@click.option("--enable", is_flag=True, help="Enable the user again.")
@_DB
def users_disable(name: str, enable: bool, db: str | None) -> None:
    """Refuse every token of user NAME (or accept them again with --enable).

    \b
    Example:
      syllabus admin users disable bob
    """
    _store(db).set_user(name, disabled=not enable)
    note(f"user {name!r} {'enabled' if enable else 'disabled'}")


@users.command("remove")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do it (without: say what would go).")
@_DB
def users_remove(name: str, yes: bool, db: str | None) -> None:
    """Delete user NAME with their roles and tokens (audit records keep their name).

    \b
    Example:
      syllabus admin users remove bob --yes
    """
    store = _store(db)
    if not yes:
        tokens = len(store.list_tokens(name))
        store.get_user(name)
        note(f"would remove user {name!r} and {tokens} token(s); add --yes to do it")
        return
    store.remove_user(name)
    note(f"removed user {name!r}")


@admin.group("tokens")
def tokens() -> None:
    """API tokens (stored hashed; the secret is shown once)."""


@tokens.command("create")
@click.argument("user")
@click.option("--name", default="", help="What the token is for.")
@click.option("--workspace", help="Only valid in this workspace.")
@click.option(
    "--expires", default="90d", show_default=True, help="Lifetime (e.g. 12h, 30d; 'never')."
)
@format_option(csv_ok=False)
@_DB
def tokens_create(  # noqa: PLR0917 - click passes every option positionally
    user: str, name: str, workspace: str | None, expires: str, fmt: Format, db: str | None
) -> None:
    """Make an API token for USER and print its secret (the only time it is shown).

    \b
    Example:
      syllabus admin tokens create alice --name laptop --expires 30d
    """
    from syllabus.config import parse_duration

    lifetime = None if expires.strip().lower() == "never" else parse_duration(expires)
    token = _store(db).create_token(user, name=name, workspace=workspace, expires_in=lifetime)
    if fmt == "json":
        emit_json(token)
        return
    click.echo(token.secret)
    note(
        f"token {token.id[:12]} for {user}"
        + (f" in workspace {workspace}" if workspace else "")
        + f", expires {_when(token.expires_at)}; set it as SYLLABUS_TOKEN"
    )


@tokens.command("list")
@click.option("--user", help="Only this user's tokens.")
@format_option()
@_DB
def tokens_list(user: str | None, fmt: Format, db: str | None) -> None:
    """List tokens (never their secrets).

    \b
    Example:
      syllabus admin tokens list
    """
    rows = [
        {
            "id": t.id[:12],
            "user": t.user,
            "name": t.name,
            "prefix": t.prefix,
            "workspace": t.workspace or "*",
            "expires": _when(t.expires_at),
            "revoked": _when(t.revoked_at),
            "last_used": _when(t.last_used_at),
        }
        for t in _store(db).list_tokens(user)
    ]
    columns = ["id", "user", "name", "prefix", "workspace", "expires", "revoked", "last_used"]
    emit_rows(rows, columns, fmt, empty="no tokens")


@tokens.command("revoke")
@click.argument("token")
@_DB
def tokens_revoke(token: str, db: str | None) -> None:
    """Revoke TOKEN (its id, an id prefix of 6+ characters, or its shown prefix) at once.

    \b
    Example:
      syllabus admin tokens revoke syl_Ab12Cd
    """
    revoked = _store(db).revoke_token(token)
    note(f"revoked token {revoked.id[:12]} of {revoked.user}")
