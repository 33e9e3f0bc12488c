"""Deploy: deployments and their revisions (syllabus.deploy).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 15:30:00.000000
"""

from __future__ import annotations

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the deploy tables (none yet)."""


def downgrade() -> None:
    """Drop the deploy tables (none yet)."""
