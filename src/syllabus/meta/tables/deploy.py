"""Tables of deployments and their revisions (``syllabus.deploy``).

``deployments``
    one row per (``name``, ``env``): a service deployed to one environment. ``live_revision``
    is the revision serving now (None when stopped or never live); ``latest_revision`` the
    newest one applied.
``deployment_revisions``
    numbered revisions of a deployment (1, 2, ... per deployment). Each records the spec
    text as applied, the effective configuration for its environment (JSON), the target,
    the resolved model versions (``model_version_id`` primary, ``canary_version_id`` and
    ``shadow_version_id`` when the traffic block names them; foreign keys, so a model
    version's deployments can be listed), the raw ``monitoring`` block (JSON, read by
    monitoring), who applied it and when, its status (``pending``, ``live``, ``failed``,
    ``stopped``, ``superseded``, ``rolled-back``, ``rendered``), why (``reason``), how it
    came to be (``action``: apply, rollback, promote-canary; ``based_on`` the revision it
    copies) and what the target started (``runtime`` JSON: pid, port, url, folder).
"""

from __future__ import annotations

from typing import Final

import sqlalchemy as sa

from syllabus.meta.schema import metadata

__all__ = ["deployment_revisions", "deployments"]

deployments: Final = sa.Table(
    "deployments",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("env", sa.String(64), nullable=False),
    sa.Column("live_revision", sa.Integer(), nullable=True),
    sa.Column("latest_revision", sa.Integer(), nullable=False),
    sa.Column("created_at", sa.BigInteger(), nullable=False),  # Unix milliseconds
    sa.Column("created_by", sa.String(128), nullable=False),
    sa.Column("updated_at", sa.BigInteger(), nullable=False),
    sa.UniqueConstraint("name", "env"),
)

deployment_revisions: Final = sa.Table(
    "deployment_revisions",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column(
        "deployment_id",
        sa.String(32),
        sa.ForeignKey("deployments.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("revision", sa.Integer(), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("based_on", sa.Integer(), nullable=True),
    sa.Column("target", sa.String(16), nullable=False),
    sa.Column(
        "model_version_id", sa.String(32), sa.ForeignKey("model_versions.id"), nullable=False
    ),
    sa.Column("model_ref", sa.String(160), nullable=False),
    sa.Column(
        "canary_version_id", sa.String(32), sa.ForeignKey("model_versions.id"), nullable=True
    ),
    sa.Column("canary_ref", sa.String(160), nullable=True),
    sa.Column("canary_percent", sa.Float(), nullable=True),
    sa.Column(
        "shadow_version_id", sa.String(32), sa.ForeignKey("model_versions.id"), nullable=True
    ),
    sa.Column("shadow_ref", sa.String(160), nullable=True),
    sa.Column("spec", sa.Text(), nullable=False),  # the YAML as applied
    sa.Column("config", sa.Text(), nullable=False),  # JSON: the effective configuration
    sa.Column("monitoring", sa.Text(), nullable=True),  # JSON: the raw monitoring block
    sa.Column("runtime", sa.Text(), nullable=True),  # JSON: what the target started
    sa.Column("reason", sa.Text(), nullable=True),
    sa.Column("created_at", sa.BigInteger(), nullable=False),
    sa.Column("created_by", sa.String(128), nullable=False),
    sa.Column("updated_at", sa.BigInteger(), nullable=False),
    sa.UniqueConstraint("deployment_id", "revision"),
    sa.Index(None, "model_version_id"),
    sa.Index(None, "canary_version_id"),
    sa.Index(None, "shadow_version_id"),
)
