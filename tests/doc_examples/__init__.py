"""Per-component preparation for the CLI examples that ``tests/test_docs.py`` runs.

Each module here prepares the workspace for one group of commands, so components add
their examples without editing ``test_docs.py``. A module defines:

``PREFIXES``
    a tuple of command paths (``"syllabus deploy"``) whose examples it prepares.
``prepare(workdir: Path, example: str) -> None``
    fills the (already initialized) workspace in ``workdir`` so that ``example`` succeeds.
``run(syllabus: Runner, workdir: Path, example: str) -> Result | None`` (optional)
    runs an example itself (a long-running server, say) and returns its result; ``None``
    lets the test run it the usual way.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

__all__ = ["modules"]


def modules() -> list[ModuleType]:
    """Every preparation module of this package, in name order."""
    return [
        importlib.import_module(f"{__name__}.{info.name}")
        for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name)
        if not info.name.startswith("_")
    ]
