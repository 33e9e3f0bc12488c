"""Packaging: model folders (manifest, files, signature, requirements) and flavors."""

from __future__ import annotations

from syllabus.registry.packaging.model import (
    FORMAT_VERSION,
    MANIFEST_FILE,
    LoadedModel,
    ModelInfo,
    load_model_folder,
    read_info,
    save_model,
)
from syllabus.registry.packaging.signature import (
    ColSpec,
    Schema,
    Signature,
    TensorSpec,
    enforce,
    infer_signature,
)

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST_FILE",
    "ColSpec",
    "LoadedModel",
    "ModelInfo",
    "Schema",
    "Signature",
    "TensorSpec",
    "enforce",
    "infer_signature",
    "load_model_folder",
    "read_info",
    "save_model",
]
