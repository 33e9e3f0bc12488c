"""Metadata storage: engines, tables, migrations, transactions and blob references.

The only package (with components' ``sql.py``) that speaks SQL. It never imports
:mod:`syllabus.blobs`, and ``blobs`` never imports it.
"""

from __future__ import annotations

from syllabus.meta.engine import create_engine, redact
from syllabus.meta.info import DbInfo, info
from syllabus.meta.migrate import (
    Revision,
    UpgradeResult,
    current_revision,
    ensure_schema,
    head_revision,
    history,
    upgrade,
)
from syllabus.meta.refs import BlobRef, BlobRefs
from syllabus.meta.schema import metadata
from syllabus.meta.tx import transaction

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
