"""The inference server: OIP v2 and ``/predict`` over a registered model, Prometheus
metrics, prediction logging, canary and shadow.

:class:`ServingConfig` says what to serve; :class:`ServingApp` is the ASGI application;
:func:`~syllabus.deploy.serving.server.run` runs it under uvicorn.
"""

from __future__ import annotations

from syllabus.deploy.serving.app import ServingApp
from syllabus.deploy.serving.config import (
    CanarySpec,
    LogSpec,
    ModelsSpec,
    ServingConfig,
    ShadowSpec,
)
from syllabus.deploy.serving.runtime import ModelLoader, ResolvedModel, ServedModel

__all__ = [
    "CanarySpec",
    "LogSpec",
    "ModelLoader",
    "ModelsSpec",
    "ResolvedModel",
    "ServedModel",
    "ServingApp",
    "ServingConfig",
    "ShadowSpec",
]
