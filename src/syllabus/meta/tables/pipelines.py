"""Tables of pipelines, pipeline and step runs, the step cache, triggers and leases.

(None yet: the component's tables are defined here and created by migration 0009.)
"""

from __future__ import annotations

__all__: list[str] = []
