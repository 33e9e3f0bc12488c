"""Tables of users, API tokens and workspace roles of the team server (syllabus.server).

(None yet: the component's tables are defined here and created by migration 0010.)
"""

from __future__ import annotations

__all__: list[str] = []
