"""``syllabus agent``: check pipeline triggers and run what they fire, as a long-lived process."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

import click

from syllabus.cli.output import Format, emit_json, emit_rows, format_option, note

__all__ = ["agent_command"]


def _rows(events: list[Any]) -> list[dict[str, Any]]:
    return [
        {
            "pipeline": e.pipeline,
            "trigger": e.trigger,
            "occurrence": e.occurrence,
            "status": e.status + (" (resumed)" if e.resumed else ""),
            "pipeline run": (e.pipeline_run_id or "")[:12],
            "error": e.error or "",
        }
        for e in events
    ]


@click.command("agent")
@click.option("--once", is_flag=True, help="One pass over the triggers, then exit.")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=60.0,
    show_default=True,
    help="Seconds between passes.",
)
@click.option(
    "--executor",
    type=click.Choice(["local", "ray", "inline"]),
    default=None,
    help="Where fired pipelines' steps run (default: local).",
)
@click.option(
    "--lease",
    type=click.FloatRange(min=1.0),
    default=60.0,
    show_default=True,
    help="Seconds a lease lasts without renewal (a dead agent's work is taken over after).",
)
@format_option(csv_ok=False)
def agent_command(
    once: bool, interval: float, executor: str | None, lease: float, fmt: Format
) -> None:
    """Check pipeline triggers and run the pipelines they fire.

    Triggers are declared with their pipeline: a schedule (cron), a new version of a
    dataset, or a monitoring alert. Any number of agents may run against one store:
    leases in the database make each occurrence fire once, and a firing left by an agent
    that died is finished by another, never fired again. Stop with Ctrl-C.

    Example:
        syllabus agent --once --executor inline
    """
    from syllabus import Client

    if once:
        with Client() as client:
            events = client.run_agent(once=True, executor=executor, lease_seconds=lease)
        if fmt == "json":
            emit_json([e.to_dict() for e in events])
        else:
            emit_rows(_rows(events), ["pipeline", "trigger", "occurrence", "status",
                                      "pipeline run", "error"], "table",
                      empty="no trigger fired")  # fmt: skip
        return
    logging.getLogger("syllabus.pipelines").setLevel(logging.INFO)
    if not logging.getLogger().handlers:
        logging.basicConfig(format="%(asctime)s %(message)s", level=logging.WARNING)
    stop = threading.Event()

    def handle(signum: int, frame: object) -> None:
        note("agent: stopping after this pass")
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    note(f"agent: checking triggers every {interval:g}s (Ctrl-C stops)")
    with Client() as client:
        client.run_agent(interval=interval, executor=executor, lease_seconds=lease, stop=stop)
