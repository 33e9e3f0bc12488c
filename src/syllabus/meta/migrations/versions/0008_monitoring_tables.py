"""Monitoring: monitors, windows, alert rules and alerts (syllabus.monitoring).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27 15:30:00.000000
"""

from __future__ import annotations

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the monitoring tables (none yet)."""


def downgrade() -> None:
    """Drop the monitoring tables (none yet)."""
