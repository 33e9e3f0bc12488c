"""Tables of deployments and their revisions (syllabus.deploy).

(None yet: the component's tables are defined here and created by migration 0007.)
"""

from __future__ import annotations

__all__: list[str] = []
