"""Metadata storage: engines, tables, migrations, transactions and blob references.

The only package (with components' ``sql.py``) that speaks SQL. It never imports
:mod:`syllabus.blobs`, and ``blobs`` never imports it. Alembic is imported only when a
migration, a revision lookup or ``info`` needs it (see :mod:`syllabus.meta.check`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from syllabus.meta.check import ensure_schema
from syllabus.meta.engine import create_engine, redact
from syllabus.meta.refs import BlobRef, BlobRefs
from syllabus.meta.schema import metadata
from syllabus.meta.tx import transaction

if TYPE_CHECKING:
    from syllabus.meta.info import DbInfo, info
    from syllabus.meta.migrate import (
        Revision,
        UpgradeResult,
        current_revision,
        head_revision,
        history,
        upgrade,
    )

__all__ = [
    "BlobRef",
    "BlobRefs",
    "DbInfo",
    "Revision",
    "UpgradeResult",
    "create_engine",
    "current_revision",
    "ensure_schema",
    "head_revision",
    "history",
    "info",
    "metadata",
    "redact",
    "transaction",
    "upgrade",
]

_LAZY = {
    "DbInfo": "syllabus.meta.info",
    "info": "syllabus.meta.info",
    "Revision": "syllabus.meta.migrate",
    "UpgradeResult": "syllabus.meta.migrate",
    "current_revision": "syllabus.meta.migrate",
    "head_revision": "syllabus.meta.migrate",
    "history": "syllabus.meta.migrate",
    "upgrade": "syllabus.meta.migrate",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'syllabus.meta' has no attribute {name!r}")
