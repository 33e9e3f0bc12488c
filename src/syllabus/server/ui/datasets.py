"""Dataset pages: datasets, a dataset's versions, one version (files, schema, column
statistics with histograms, the runs that consumed it) and the diff of two versions."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from syllabus.errors import SyllabusError

if TYPE_CHECKING:
    from syllabus.datasets.profile import TableProfile
    from syllabus.server.ui.app import UI

__all__ = ["add_routes"]

MAX_FILES_SHOWN = 1000


def _histograms(profile: TableProfile) -> list[dict[str, Any]]:
    """Bar-chart data of every column that has a histogram (numbers) or top values."""
    out: list[dict[str, Any]] = []
    for column in profile.columns:
        if column.histogram:
            out.append(
                {
                    "column": column.name,
                    "x": [(lo + hi) / 2 for lo, hi, _ in column.histogram],
                    "width": [hi - lo for lo, hi, _ in column.histogram],
                    "y": [count for _, _, count in column.histogram],
                }
            )
        elif column.top:
            out.append(
                {
                    "column": column.name,
                    "x": [str(value) for value, _ in column.top],
                    "y": [count for _, count in column.top],
                }
            )
    return out


def _finite(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def add_routes(router: APIRouter, ui: UI) -> None:
    def datasets(request: Request) -> Response:
        client = ui.client(request)
        return ui.render(
            request, "datasets.html", {"datasets": client.list_datasets()}, title="Datasets"
        )

    def dataset(request: Request, name: str) -> Response:
        client = ui.client(request)
        versions = client.list_dataset_versions(name)
        return ui.render(
            request,
            "dataset.html",
            {"name": name, "versions": versions},
            title=f"Dataset {name}",
        )

    def version(request: Request, name: str, version: str, file: str = "") -> Response:
        client = ui.client(request)
        ref = f"{name}@{version}"
        found = client.get_dataset(ref)
        files = client.dataset_files(found.ref)
        profiles = client.dataset_profiles(found.ref)
        chosen = file if file in profiles else next(iter(sorted(profiles)), "")
        profile = profiles.get(chosen)
        lineage = client.dataset_lineage(found.ref)
        return ui.render(
            request,
            "dataset_version.html",
            {
                "version": found,
                "files": files[:MAX_FILES_SHOWN],
                "file_count": len(files),
                "profiles": sorted(profiles),
                "file": chosen,
                "profile": profile,
                "charts": _histograms(profile) if profile else [],
                "lineage": lineage,
                "finite": _finite,
            },
            title=f"Dataset {found.ref}",
        )

    def diff(request: Request, a: str = "", b: str = "", key: str = "") -> Response:
        client = ui.client(request)
        names = [d.name for d in client.list_datasets()]
        result = None
        error = None
        keys = [k.strip() for k in key.split(",") if k.strip()]
        if a and b:
            try:
                result = client.diff_datasets(a.strip(), b.strip(), key=keys)
            except SyllabusError as exc:
                error = str(exc)
        return ui.render(
            request,
            "dataset_diff.html",
            {"a": a, "b": b, "key": key, "diff": result, "error": error, "names": names},
            status=400 if error else 200,
            title="Dataset diff",
        )

    ui.add(router, "/datasets", datasets, "ui_datasets")
    ui.add(router, "/datasets/diff", diff, "ui_dataset_diff")
    ui.add(router, "/datasets/{name}", dataset, "ui_dataset")
    ui.add(router, "/datasets/{name}/{version}", version, "ui_dataset_version")
