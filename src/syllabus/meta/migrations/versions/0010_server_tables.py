"""Server: users, API tokens and workspace roles of the team server (syllabus.server).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-27 15:30:00.000000
"""

from __future__ import annotations

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the server tables (none yet)."""


def downgrade() -> None:
    """Drop the server tables (none yet)."""
