"""The entrypoint of images the docker target builds: serve the baked model folders.

``python -m syllabus.deploy.targets.container /app/serving.json`` reads the serving config
and ``models.json`` next to it (each pinned reference's folder, model file and content id)
and serves them with the same server as ``syllabus serve``. No registry is needed: each
model file is loaded only if its content id equals the one the registry recorded when the
image was built (the pickle guard, without the database).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Final

__all__ = ["baked_loader", "build_app", "main", "worker_app"]

MODELS_ENV: Final = "SYLLABUS_BAKED_MODELS"


def baked_loader(models_file: Path) -> Any:
    """A ModelLoader over the folders ``models_file`` lists."""
    from syllabus.deploy.serving import ResolvedModel
    from syllabus.errors import NotFoundError
    from syllabus.registry.packaging.model import load_model_folder

    doc = json.loads(models_file.read_text(encoding="utf-8"))
    base = models_file.parent

    def load(ref: str) -> ResolvedModel:
        entry = doc.get(ref)
        if entry is None:
            raise NotFoundError(f"model {ref} is not in this image ({', '.join(doc)})")
        path, digest = entry["model_path"], entry["model_digest"]
        model = load_model_folder(
            base / entry["folder"], trusted=lambda rel, d: rel == path and d == digest
        )
        return ResolvedModel(entry["name"], int(entry["version"]), model)

    return load


def build_app(config: Any, port: int, server_pid: int) -> Any:
    from syllabus.deploy.predlog import log_root as log_root_of
    from syllabus.deploy.serving import ServingApp

    models = Path(os.environ.get(MODELS_ENV) or "/app/models.json")
    log_root = log_root_of(config.log.path) if config.log.enabled and config.log.path else None
    return ServingApp(
        config, baked_loader(models), log_root=log_root, port=port, server_pid=server_pid
    )


def worker_app() -> Any:
    from syllabus.deploy.serving.server import worker_settings

    return build_app(*worker_settings())


def main(argv: list[str]) -> None:
    from syllabus.deploy.serving.config import ServingConfig
    from syllabus.deploy.serving.server import run

    config_file = Path(argv[0] if argv else "/app/serving.json")
    os.environ.setdefault(MODELS_ENV, str(config_file.parent / "models.json"))
    config = ServingConfig.read(config_file)
    run(config, build_app, worker_factory="syllabus.deploy.targets.container:worker_app")


if __name__ == "__main__":
    main(sys.argv[1:])
