"""Syllabus: one ledger for the whole lifecycle of machine-learning models.

The public API is what ``__all__`` names; everything else may change without notice.
Heavy parts (the client and its database and storage layers) are imported on first use,
so ``import syllabus`` and ``syllabus --help`` stay fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from syllabus.errors import (
    AlreadyExistsError,
    BlobCorruptError,
    BlobNotFoundError,
    ConfigError,
    ConflictError,
    DatabaseError,
    InvalidArgumentError,
    InvalidReferenceError,
    NotFoundError,
    PathEscapeError,
    PromotionRefusedError,
    SchemaOutdatedError,
    StorageError,
    SyllabusError,
    UnsafeLoadError,
    WorkspaceNotFoundError,
)

if TYPE_CHECKING:
    from syllabus.client import Client, init_workspace
    from syllabus.fluent import (
        active_run,
        end_run,
        flush,
        log_artifact,
        log_artifacts,
        log_dict,
        log_figure,
        log_metric,
        log_metrics,
        log_param,
        log_params,
        log_text,
        set_tag,
        set_tags,
        start_run,
    )
    from syllabus.models import evaluate, load_model, log_model, register_model
    from syllabus.pipelines import pipeline, step

__version__ = "0.1.0.dev0"

__all__ = [
    "AlreadyExistsError",
    "BlobCorruptError",
    "BlobNotFoundError",
    "Client",
    "ConfigError",
    "ConflictError",
    "DatabaseError",
    "InvalidArgumentError",
    "InvalidReferenceError",
    "NotFoundError",
    "PathEscapeError",
    "PromotionRefusedError",
    "SchemaOutdatedError",
    "StorageError",
    "SyllabusError",
    "UnsafeLoadError",
    "WorkspaceNotFoundError",
    "__version__",
    "active_run",
    "end_run",
    "evaluate",
    "flush",
    "init_workspace",
    "load_model",
    "log_artifact",
    "log_artifacts",
    "log_dict",
    "log_figure",
    "log_metric",
    "log_metrics",
    "log_model",
    "log_param",
    "log_params",
    "log_text",
    "pipeline",
    "register_model",
    "set_tag",
    "set_tags",
    "start_run",
    "step",
]

_LAZY = {
    "Client": "syllabus.client",
    "init_workspace": "syllabus.client",
    **dict.fromkeys(
        (
            "active_run",
            "end_run",
            "flush",
            "log_artifact",
            "log_artifacts",
            "log_dict",
            "log_figure",
            "log_metric",
            "log_metrics",
            "log_param",
            "log_params",
            "log_text",
            "set_tag",
            "set_tags",
            "start_run",
        ),
        "syllabus.fluent",
    ),
}
_LAZY.update(
    dict.fromkeys(("evaluate", "load_model", "log_model", "register_model"), "syllabus.models")
)
_LAZY.update(dict.fromkeys(("pipeline", "step"), "syllabus.pipelines"))
_LAZY.update(  # `%load_ext syllabus` (IPython looks these up on the module)
    dict.fromkeys(
        ("load_ipython_extension", "unload_ipython_extension"), "syllabus.integrations.notebook"
    )
)
_LAZY_MODULES = {"sklearn": "syllabus.integrations.sklearn"}


def __getattr__(name: str) -> Any:
    if name in _LAZY_MODULES:
        import importlib

        module = importlib.import_module(_LAZY_MODULES[name])
        globals()[name] = module
        return module
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'syllabus' has no attribute {name!r}")
