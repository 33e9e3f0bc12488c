"""The REST API, one module per component, each with ``router(state) -> APIRouter``.

A component's store Protocol is exposed method by method (see :mod:`._rpc`); a module
declares which role each method needs and any method handled specially. Components
that land later (deploy, monitoring, pipelines) plug in the same way: a module here and
a line in :data:`COMPONENT_ROUTES`.
"""

from __future__ import annotations

from typing import Final

__all__ = ["COMPONENT_ROUTES"]

COMPONENT_ROUTES: Final = (
    "tracking",
    "datasets",
    "code",
    "registry",
    "evaluation",
    "blobs",
    "deploy",
    "monitoring",
    "pipelines",
)
"""Route modules in mounting order; a module that does not exist (yet) is skipped."""
