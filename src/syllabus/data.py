"""``syllabus.data``: dataset versions from Python, over a default :class:`~syllabus.Client`.

::

    import syllabus.data

    v = syllabus.data.add("churn", "data/", message="March export")
    df = syllabus.data.get("churn@3").to_pandas()

The default client uses the nearest workspace (or ``SYLLABUS_URI``), created on first use
like ``start_run()`` does. Pass ``client=`` to use another.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from syllabus.types import ProgressCallback, null_progress

if TYPE_CHECKING:
    from syllabus.client import Client
    from syllabus.client.datasets import DataVersion
    from syllabus.tracking.models import RunInput

__all__ = ["add", "default_client", "get", "lineage", "log_input"]


def default_client() -> Client:
    """The client these functions use: the fluent API's (``syllabus.fluent.set_client``)."""
    from syllabus.fluent import get_client

    return get_client()


def add(
    name: str,
    path: str | Path,
    *,
    message: str = "",
    tags: Sequence[str] = (),
    profile: bool = True,
    progress: ProgressCallback = null_progress,
    client: Client | None = None,
) -> DataVersion:
    """Add a version of dataset ``name`` from a file or folder and return it (the latest
    version itself when the content did not change)."""
    c = client or default_client()
    result = c.add_dataset(
        name, path, message=message, tags=tags, profile=profile, progress=progress
    )
    return c.dataset(result.version.ref)


def get(ref: str, *, client: Client | None = None) -> DataVersion:
    """The version ``ref`` names (``churn``, ``churn@3``, ``churn@gold``)."""
    return (client or default_client()).dataset(ref)


def log_input(
    version: DataVersion | str,
    *,
    role: str = "input",
    run_id: str | None = None,
    client: Client | None = None,
) -> None:
    """Record that a run (the active one by default) used a dataset version as ``role``."""
    c = client or default_client()
    if run_id is None:
        from syllabus.fluent import active_run

        run = active_run()
        if run is None:
            from syllabus.errors import InvalidArgumentError

            raise InvalidArgumentError("no active run; start one with syllabus.start_run()")
        run_id = run.id
    c.log_dataset_input(run_id, version if isinstance(version, str) else version.ref, role=role)


def lineage(ref: str, *, client: Client | None = None) -> list[RunInput]:
    """The runs that used the version ``ref`` names (with the role each gave it)."""
    return (client or default_client()).dataset_lineage(ref)
