"""Integrations with ML libraries (thin: each maps a library's events onto fluent calls).

Reach them as ``syllabus.sklearn`` (lazily imported).
"""

from __future__ import annotations

__all__: list[str] = []
