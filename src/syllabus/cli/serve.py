"""``syllabus serve``: the inference server for a registered model (or a serving config)."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import click

from syllabus.cli.output import note

__all__ = ["build_app", "serve_command", "worker_app"]


def _log_root(config: Any, client: Any) -> Any:
    from syllabus.deploy.predlog import log_root, predictions_root

    if not config.log.enabled:
        return None
    return log_root(config.log.path) if config.log.path else predictions_root(client.settings)


def build_app(config: Any, port: int, server_pid: int) -> Any:
    """The serving app for ``config``, loading models through the registry of the
    configured (or nearest) workspace."""
    from syllabus.client import Client
    from syllabus.deploy.serving import ResolvedModel, ServingApp

    client = Client(uri=config.uri, blobs=config.blobs, create=False)

    def load(ref: str) -> ResolvedModel:
        version = client.get_model_version(ref)  # pin the version the reference names now
        return ResolvedModel(version.name, version.version, client.load_model(version.ref))

    return ServingApp(
        config,
        load,
        log_root=_log_root(config, client),
        log_s3_endpoint_url=client.settings.s3_endpoint_url,
        port=port,
        server_pid=server_pid,
    )


def worker_app() -> Any:
    """One worker's app (``--workers N``): the config comes from the supervisor."""
    from syllabus.deploy.serving.server import worker_settings

    return build_app(*worker_settings())


@click.command("serve")
@click.argument("ref", required=False)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="A serving config (JSON) instead of REF: service, canary, shadow, log, ...",
)
@click.option("--host", help="Interface to listen on.  [default: 127.0.0.1]")
@click.option("--port", type=click.IntRange(0, 65535), help="0 picks a free port.  [default: 8080]")
@click.option("--workers", type=click.IntRange(1, 256), help="Worker processes.  [default: 1]")
@click.option(
    "--reuse-port",
    is_flag=True,
    default=None,
    help="Bind with SO_REUSEPORT (a new revision can start before the old one stops).",
)
@click.option(
    "--ready-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write {pid, host, port, revision} JSON here once the models are loaded.",
)
@click.option("--no-log", is_flag=True, help="Do not write the prediction log.")
@click.option("--service", help="Service name (prediction log folder).  [default: the model]")
def serve_command(
    *,
    ref: str | None,
    config_file: Path | None,
    host: str | None,
    port: int | None,
    workers: int | None,
    reuse_port: bool | None,
    ready_file: Path | None,
    no_log: bool,
    service: str | None,
) -> None:
    """Serve a model over HTTP: Open Inference Protocol v2, /predict, /feedback, /metrics.

    REF is a registered version (churn@3, churn@production, churn@champion); the version it
    names at start-up is served. --config FILE takes a serving config (JSON) with canary
    and shadow models instead. Every prediction is logged (Parquet segments under the
    workspace's predictions/ folder, or SYLLABUS_PREDICTIONS) unless --no-log. SIGTERM or
    Ctrl+C stops gracefully: in-flight requests finish and the log is flushed.

    Example:

        syllabus serve churn@2 --port 0 --ready-file ready.json
    """
    from dataclasses import replace

    from syllabus.deploy.serving.config import LogSpec, ServingConfig
    from syllabus.deploy.serving.server import bind_socket, run

    if (ref is None) == (config_file is None):
        raise click.UsageError("give a model REF or --config FILE (one of them)")
    if config_file is not None:
        config = ServingConfig.read(config_file)
    else:
        assert ref is not None
        config = ServingConfig.for_model(ref, service=service)
    changes: dict[str, Any] = {
        k: v
        for k, v in {
            "host": host,
            "port": port,
            "workers": workers,
            "reuse_port": reuse_port,
            "ready_file": None if ready_file is None else str(ready_file.resolve()),
            "service": service if config_file is not None else None,
        }.items()
        if v is not None
    }
    if no_log:
        changes["log"] = LogSpec(**{**config.log.to_dict(), "enabled": False})
    config = replace(config, **changes)
    from syllabus.client import Client

    _log_root(config, Client(uri=config.uri, blobs=config.blobs, create=False))  # fail fast
    sock = bind_socket(config.host, config.port, reuse_port=config.reuse_port)
    bound = sock.getsockname()[1]
    models = config.models
    extra = ""
    if models.canary is not None:
        extra += f", canary {models.canary.model} ({models.canary.percent:g}%)"
    if models.shadow is not None:
        extra += f", shadow {models.shadow.model}"
    note(
        f"serving {models.primary}{extra} as {config.service} on http://{config.host}:{bound} "
        f"({config.workers} worker{'s' if config.workers > 1 else ''}; Ctrl+C stops)"
    )
    # uvicorn re-raises the SIGTERM it handled once shut down: by then the stop was graceful.
    signal.signal(signal.SIGTERM, lambda *_: None)
    run(config, build_app, worker_factory="syllabus.cli.serve:worker_app", sock=sock)
