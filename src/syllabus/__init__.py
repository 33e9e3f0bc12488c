"""Syllabus: one ledger for the whole lifecycle of machine-learning models."""

from __future__ import annotations

from syllabus.errors import (
    AlreadyExistsError,
    ConflictError,
    InvalidArgumentError,
    InvalidReferenceError,
    NotFoundError,
    SyllabusError,
)

__version__ = "0.1.0.dev0"

__all__ = [
    "AlreadyExistsError",
    "ConflictError",
    "InvalidArgumentError",
    "InvalidReferenceError",
    "NotFoundError",
    "SyllabusError",
    "__version__",
]
