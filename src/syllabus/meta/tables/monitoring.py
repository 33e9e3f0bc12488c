"""Tables of monitors, windows, alert rules and alerts (syllabus.monitoring).

(None yet: the component's tables are defined here and created by migration 0008.)
"""

from __future__ import annotations

__all__: list[str] = []
