"""The client layer: the :class:`Client` facade and the backends it composes."""

from __future__ import annotations

from syllabus.client.client import Client, Info
from syllabus.client.workspace import init_workspace

__all__ = ["Client", "Info", "init_workspace"]
