"""Pipelines: pipelines, pipeline and step runs, step cache, triggers, leases (syllabus.pipelines).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27 15:30:00.000000
"""

from __future__ import annotations

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the pipelines tables (none yet)."""


def downgrade() -> None:
    """Drop the pipelines tables (none yet)."""
