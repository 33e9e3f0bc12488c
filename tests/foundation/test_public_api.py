from __future__ import annotations

import subprocess
import sys

import syllabus


def test_all_is_pinned_and_importable() -> None:
    # The public surface changes only on purpose: update this list and the CHANGELOG together.
    assert set(syllabus.__all__) == {
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
        "init_workspace",
        "active_run",
        "end_run",
        "evaluate",
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
        "load_model",
        "pipeline",
        "step",
        "log_model",
        "register_model",
        "set_tag",
        "set_tags",
        "start_run",
    }
    for name in syllabus.__all__:
        assert getattr(syllabus, name) is not None


def test_import_is_light() -> None:
    code = "import sys, syllabus; print('sqlalchemy' in sys.modules, 'blake3' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
