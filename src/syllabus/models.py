"""Module-level model functions over the default client: ``log_model``, ``load_model``,
``register_model`` (re-exported lazily from :mod:`syllabus`)."""

from __future__ import annotations

__all__: list[str] = []
