"""``syllabus models``: the model registry (versions, aliases, stages, approvals, audit)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import click

from syllabus.cli.output import Format, emit_json, emit_rows, format_option, note

__all__ = ["models"]


def _client() -> Any:
    from syllabus import Client

    return Client()


def _when(ms: int | None) -> str:
    if ms is None:
        return ""
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _split(ref: str) -> tuple[str, int | None]:
    from syllabus.refs import parse_ref

    parsed = parse_ref(ref)
    if "@" not in ref:
        return parsed.name, None
    with _client() as client:
        version = client.get_model_version(ref)
    return parsed.name, version.version


def _version_row(v: Any) -> dict[str, Any]:
    return {
        "version": v.version,
        "stage": v.stage.value,
        "aliases": ",".join(v.aliases),
        "flavor": v.flavor,
        "source": v.source,
        "created": _when(v.created_at),
        "by": v.created_by,
        "retired": _when(v.retired_at),
    }


@click.group()
def models() -> None:
    """Registered models: versions, aliases, stages with gates, approvals and audit."""


@models.command("list")
@format_option()
def list_command(fmt: Format) -> None:
    """List registered models.

    Example:
        syllabus models list
    """
    with _client() as client:
        rows = [
            {
                "name": m.name,
                "latest": m.latest_version,
                "production": ",".join(map(str, m.production)),
                "aliases": ",".join(f"{a}={v}" for a, v in m.aliases.items()),
                "description": m.description,
            }
            for m in client.list_registered_models()
        ]
    emit_rows(
        rows,
        ["name", "latest", "production", "aliases", "description"],
        fmt,
        empty="no registered models",
    )


@models.command("show")
@click.argument("ref")
@format_option(csv_ok=False)
def show_command(ref: str, fmt: Format) -> None:
    """Show a model (NAME) or one version (NAME@VERSION, @stage, @alias).

    Example:
        syllabus models show churn@latest
    """
    with _client() as client:
        value = client.get_model_version(ref) if "@" in ref else client.get_registered_model(ref)
    if fmt == "json":
        emit_json(value)
        return
    from syllabus.cli.output import to_jsonable

    for key, item in to_jsonable(value).items():
        click.echo(f"{key}: {item}")


@models.command("versions")
@click.argument("name")
@click.option("--stage", help="Only versions in this stage.")
@format_option()
def versions_command(name: str, stage: str | None, fmt: Format) -> None:
    """List the versions of a model, newest first.

    Example:
        syllabus models versions churn
    """
    with _client() as client:
        rows = [_version_row(v) for v in client.list_model_versions(name, stage=stage)]
    columns = ["version", "stage", "aliases", "flavor", "source", "created", "by", "retired"]
    emit_rows(rows, columns, fmt, empty=f"model {name!r} has no versions here")


@models.command("describe")
@click.argument("ref")
@click.argument("text")
def describe_command(ref: str, text: str) -> None:
    """Set the description of a model (NAME) or a version (NAME@VERSION).

    Example:
        syllabus models describe churn "Predicts churn from usage"
    """
    name, version = _split(ref)
    with _client() as client:
        client.describe_model(name, text, version=version)


@models.command("tag")
@click.argument("ref")
@click.argument("key")
@click.argument("value", required=False)
@click.option("--delete", is_flag=True, help="Delete the tag instead.")
def tag_command(ref: str, key: str, value: str | None, delete: bool) -> None:
    """Set (or --delete) a tag of a model or of a version.

    Example:
        syllabus models tag churn@2 reviewed yes
    """
    if value is None and not delete:
        raise click.UsageError("give a VALUE, or --delete")
    name, version = _split(ref)
    with _client() as client:
        client.set_model_tag(name, key, None if delete else value, version=version)


@models.command("alias")
@click.argument("name")
@click.argument("alias")
@click.argument("version", type=int, required=False)
@click.option("--delete", is_flag=True, help="Delete the alias instead.")
def alias_command(name: str, alias: str, version: int | None, delete: bool) -> None:
    """Point an alias (NAME@ALIAS) at a version, or --delete it.

    Example:
        syllabus models alias churn champion 2
    """
    with _client() as client:
        if delete:
            client.delete_model_alias(name, alias)
        elif version is None:
            raise click.UsageError("give a VERSION, or --delete")
        else:
            client.set_model_alias(name, alias, version)


@models.command("lineage")
@click.argument("ref")
def lineage_command(ref: str) -> None:
    """Where a version came from: run, data, code, environment, evaluations, deployments.

    Example:
        syllabus models lineage churn@2
    """
    with _client() as client:
        emit_json(client.model_lineage(ref))


def _report(result: Any) -> None:
    for gate in result.gates:
        note(f"  {gate.describe()}")
    archived = ", ".join(v.ref for v in result.archived)
    click.echo(
        f"{result.version.ref} is now in {result.version.stage.value}"
        + (f" (archived {archived})" if archived else "")
    )


@models.command("promote")
@click.argument("ref")
@click.option("--to", "to", required=True, help="Target stage.")
@click.option("-m", "--message", help="Comment for the audit log.")
def promote_command(ref: str, to: str, message: str | None) -> None:
    """Move a version to a stage if its policy's gates pass (lists failures otherwise).

    Example:
        syllabus models promote churn@2 --to staging
    """
    with _client() as client:
        _report(client.transition_stage(ref, to, comment=message))


@models.command("request")
@click.argument("ref", required=False)
@click.option("--to", "to", help="Target stage.")
@click.option("-m", "--message", help="Why.")
@format_option()
def request_command(ref: str | None, to: str | None, message: str | None, fmt: Format) -> None:
    """Request a stage change for approval; without arguments, list pending requests.

    Example:
        syllabus models request churn@2 --to staging -m "ready for review"
    """
    with _client() as client:
        if ref is not None:
            if to is None:
                raise click.UsageError("--to is required with a REF")
            req = client.request_transition(ref, to, comment=message)
            click.echo(req.id)
            return
        rows = [
            {
                "id": r.id[:12],
                "model": r.ref,
                "to": r.to_stage.value,
                "by": r.requested_by,
                "approvals": len(r.approvals),
                "comment": r.comment,
            }
            for r in client.list_transition_requests()
        ]
    emit_rows(
        rows, ["id", "model", "to", "by", "approvals", "comment"], fmt, empty="no pending requests"
    )


def _request_id(client: Any, request: str) -> str:
    if "@" not in request:
        return request
    version = client.get_model_version(request)
    for req in client.list_transition_requests(version.name):
        if req.version_id == version.id:
            return str(req.id)
    raise click.UsageError(f"{request} has no pending request")


@models.command("approve")
@click.argument("request")
@click.option("--role", help="The role you approve as (e.g. ml-lead).")
@click.option("-m", "--message", help="Comment.")
def approve_command(request: str, role: str | None, message: str | None) -> None:
    """Approve a request (its id, or NAME@VERSION with one pending); the version moves
    when every gate then passes.

    Example:
        syllabus models approve churn@1 --role ml-lead
    """
    with _client() as client:
        req, result, gates = client.approve_transition(
            _request_id(client, request), role=role, comment=message
        )
        if result is not None:
            _report(result)
            return
        for gate in gates:
            note(f"  {gate.describe()}")
        click.echo(f"request {req.id[:12]} for {req.ref} is {req.status}")


@models.command("reject")
@click.argument("request")
@click.option("--role", help="The role you reject as.")
@click.option("-m", "--message", help="Why.")
def reject_command(request: str, role: str | None, message: str | None) -> None:
    """Reject a request (its id, or NAME@VERSION with one pending).

    Example:
        syllabus models reject churn@1 -m "needs a fairness review"
    """
    with _client() as client:
        req = client.reject_transition(_request_id(client, request), role=role, comment=message)
        click.echo(f"request {req.id[:12]} for {req.ref} is {req.status}")


@models.command("archive")
@click.argument("ref")
@click.option("-m", "--message", help="Comment.")
def archive_command(ref: str, message: str | None) -> None:
    """Move a version to archived.

    Example:
        syllabus models archive churn@2
    """
    with _client() as client:
        _report(client.archive_model_version(ref, comment=message))


@models.command("retire")
@click.argument("ref")
@click.option("--force", is_flag=True, help="Retire before the policy's retention period ends.")
@click.option("-m", "--message", help="Comment.")
def retire_command(ref: str, force: bool, message: str | None) -> None:
    """Retire an archived version: its files are released to `store gc`; metadata and
    audit stay.

    Example:
        syllabus models retire churn@3
    """
    with _client() as client:
        version = client.retire_model_version(ref, force=force, comment=message)
    click.echo(f"{version.ref} is retired")


@models.command("rollback")
@click.argument("name")
@click.option("-m", "--message", help="Comment.")
def rollback_command(name: str, message: str | None) -> None:
    """Put the version the last promotion archived back in production.

    Example:
        syllabus models rollback churn
    """
    with _client() as client:
        _report(client.rollback_model(name, comment=message))


@models.command("history")
@click.argument("name", required=False)
@click.option("--limit", default=1000, show_default=True, help="Most recent events.")
@format_option()
def history_command(name: str | None, limit: int, fmt: Format) -> None:
    """The audit log of a model (or of the whole registry), oldest first.

    Example:
        syllabus models history churn
    """
    with _client() as client:
        events = client.model_history(name, limit=limit)
    if fmt == "json":
        emit_json([e.to_dict() for e in events])
        return
    rows = [
        {
            "when": _when(e.at),
            "event": e.event,
            "model": e.model_name,
            "version": e.version,
            "from": e.from_stage,
            "to": e.to_stage,
            "who": e.actor,
            "policy": f"{e.policy_name} v{e.policy_version}" if e.policy_name else None,
            "comment": e.comment,
        }
        for e in events
    ]
    emit_rows(
        rows,
        ["when", "event", "model", "version", "from", "to", "who", "policy", "comment"],
        fmt,
        empty="no events",
    )


@models.group("webhooks")
def webhooks() -> None:
    """URLs that receive registry events as signed JSON POSTs."""


@webhooks.command("add")
@click.argument("url")
@click.option(
    "--secret",
    envvar="SYLLABUS_WEBHOOK_SECRET",
    required=True,
    help="Shared secret for the X-Syllabus-Signature HMAC (or SYLLABUS_WEBHOOK_SECRET).",
)
@click.option("--event", "events", multiple=True, help="Only these events (repeatable).")
@click.option("--model", help="Only events of this model.")
def webhooks_add(url: str, secret: str, events: tuple[str, ...], model: str | None) -> None:
    """Send registry events to URL, signed with a shared secret.

    \b
    Example:
      syllabus models webhooks add https://ci.example/hook --secret s3cret --model churn
    """
    with _client() as client:
        hook = client.add_webhook(url, secret, events=events, model=model)
    click.echo(hook.id)
    note(f"webhook {hook.id[:12]} -> {hook.url}")


@webhooks.command("list")
@format_option()
def webhooks_list(fmt: Format) -> None:
    """List the webhooks (secrets are never shown).

    \b
    Example:
      syllabus models webhooks list --json
    """
    with _client() as client:
        hooks = client.list_webhooks()
    rows = [
        {
            "id": h.id,
            "url": h.url,
            "events": ",".join(h.events) or "(all)",
            "model": h.model_name or "(all)",
            "created": _when(h.created_at),
            "by": h.created_by,
        }
        for h in hooks
    ]
    emit_rows(rows, ["id", "url", "events", "model", "created", "by"], fmt, empty="no webhooks")


@webhooks.command("remove")
@click.argument("webhook")
def webhooks_remove(webhook: str) -> None:
    """Remove a webhook by its URL, its id or a unique id prefix (6 characters or more).

    \b
    Example:
      syllabus models webhooks remove https://ci.example/hook
    """
    with _client() as client:
        removed = client.remove_webhook(webhook)
    note(f"removed {len(removed)} webhook(s): {', '.join(i[:12] for i in removed)}")
