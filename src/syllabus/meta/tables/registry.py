"""Tables of the model registry (``syllabus.registry``).

``registered_models``
    one row per model name, with its description and the rollback pointer (the version
    the last promotion to production archived).
``model_versions``
    versions 1, 2, 3 ... of a model: the model folder's tree digest (also in
    ``blob_refs``, kind ``model``, until retirement), flavor, the content id of the model
    file (the record unsafe files are checked against when loaded), signature, source run
    and stage. ``production_slot`` holds the model id while a version is its one
    production version, so the unique constraint on it makes two concurrent promotions
    leave exactly one (policies that allow several leave it NULL).
``model_tags``, ``model_aliases``
    key/value tags on a model (``target_id`` = model id) or a version (version id), and
    aliases such as ``champion`` pointing at one version.
``model_policies``
    versioned YAML policies, per model name or ``default``; the newest version applies.
``model_requests``, ``model_approvals``
    requests to move a version to a stage, and the approvals or rejections they got.
``model_events``
    the audit log: every registry event, never deleted (also not by retirement).
``model_webhooks``
    URLs that receive events as signed JSON POSTs.
"""

from __future__ import annotations

from typing import Final

import sqlalchemy as sa

from syllabus.meta.schema import BigIntId, metadata

__all__ = [
    "model_aliases",
    "model_approvals",
    "model_events",
    "model_policies",
    "model_requests",
    "model_tags",
    "model_versions",
    "model_webhooks",
    "registered_models",
]

registered_models: Final = sa.Table(
    "registered_models",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("description", sa.Text(), nullable=True),
    sa.Column("created_at", sa.BigInteger(), nullable=False),  # Unix milliseconds
    sa.Column("created_by", sa.String(128), nullable=False),
    sa.Column("updated_at", sa.BigInteger(), nullable=False),
    sa.Column("rollback_version_id", sa.String(32), nullable=True),
    sa.UniqueConstraint("name"),
)

model_versions: Final = sa.Table(
    "model_versions",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column(
        "model_id",
        sa.String(32),
        sa.ForeignKey("registered_models.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("stage", sa.String(16), nullable=False),
    sa.Column("production_slot", sa.String(32), nullable=True),
    sa.Column("tree", sa.String(64), nullable=False),  # manifest of the model folder
    sa.Column("size", sa.BigInteger(), nullable=False),
    sa.Column("flavor", sa.String(32), nullable=False),
    sa.Column("serialization", sa.String(32), nullable=False),
    sa.Column("unsafe", sa.Boolean(), nullable=False),
    sa.Column("model_path", sa.String(1024), nullable=False),  # tree-relative model file
    sa.Column("model_digest", sa.String(64), nullable=False),  # its content id
    sa.Column("signature", sa.Text(), nullable=True),  # JSON
    sa.Column("source", sa.Text(), nullable=False),  # "run:<id>/<path>" or a local path
    sa.Column("run_id", sa.String(32), nullable=True),
    sa.Column("description", sa.Text(), nullable=True),
    sa.Column("created_at", sa.BigInteger(), nullable=False),
    sa.Column("created_by", sa.String(128), nullable=False),
    sa.Column("stage_changed_at", sa.BigInteger(), nullable=False),
    sa.Column("retired_at", sa.BigInteger(), nullable=True),
    sa.UniqueConstraint("model_id", "version"),
    sa.UniqueConstraint("production_slot"),
    sa.Index(None, "run_id"),
    sa.Index(None, "model_digest"),
)

model_tags: Final = sa.Table(
    "model_tags",
    metadata,
    sa.Column("target_id", sa.String(32), primary_key=True),  # model or version id
    sa.Column("key", sa.String(250), primary_key=True),
    sa.Column(
        "model_id",
        sa.String(32),
        sa.ForeignKey("registered_models.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("value", sa.Text(), nullable=False),
    sa.Index(None, "model_id"),
)

model_aliases: Final = sa.Table(
    "model_aliases",
    metadata,
    sa.Column(
        "model_id",
        sa.String(32),
        sa.ForeignKey("registered_models.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("alias", sa.String(64), primary_key=True),
    sa.Column(
        "version_id",
        sa.String(32),
        sa.ForeignKey("model_versions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("updated_at", sa.BigInteger(), nullable=False),
    sa.Index(None, "version_id"),
)

model_policies: Final = sa.Table(
    "model_policies",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(128), nullable=False),  # a model name or "default"
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("text", sa.Text(), nullable=False),  # the YAML as applied
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("created_at", sa.BigInteger(), nullable=False),
    sa.Column("created_by", sa.String(128), nullable=False),
    sa.UniqueConstraint("name", "version"),
)

model_requests: Final = sa.Table(
    "model_requests",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column(
        "version_id",
        sa.String(32),
        sa.ForeignKey("model_versions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("to_stage", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # pending, done, rejected, cancelled
    sa.Column("comment", sa.Text(), nullable=True),
    sa.Column("requested_by", sa.String(128), nullable=False),
    sa.Column("created_at", sa.BigInteger(), nullable=False),
    sa.Column("resolved_at", sa.BigInteger(), nullable=True),
    sa.Index(None, "version_id"),
)

model_approvals: Final = sa.Table(
    "model_approvals",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column(
        "request_id",
        sa.String(32),
        sa.ForeignKey("model_requests.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("decision", sa.String(8), nullable=False),  # approve or reject
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("role", sa.String(64), nullable=True),
    sa.Column("comment", sa.Text(), nullable=True),
    sa.Column("created_at", sa.BigInteger(), nullable=False),
    sa.UniqueConstraint("request_id", "actor"),
)

model_events: Final = sa.Table(
    "model_events",
    metadata,
    sa.Column("pk", BigIntId, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(32), nullable=False),
    sa.Column("model_id", sa.String(32), nullable=True),
    sa.Column("model_name", sa.String(128), nullable=True),
    sa.Column("version", sa.Integer(), nullable=True),
    sa.Column("event", sa.String(32), nullable=False),
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("at", sa.BigInteger(), nullable=False),
    sa.Column("from_stage", sa.String(16), nullable=True),
    sa.Column("to_stage", sa.String(16), nullable=True),
    sa.Column("comment", sa.Text(), nullable=True),
    sa.Column("policy_name", sa.String(128), nullable=True),
    sa.Column("policy_version", sa.Integer(), nullable=True),
    sa.Column("details", sa.Text(), nullable=True),  # JSON: gate results, alias, tag ...
    sa.UniqueConstraint("id"),
    sa.Index(None, "model_id", "pk"),
)

model_webhooks: Final = sa.Table(
    "model_webhooks",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("url", sa.Text(), nullable=False),
    sa.Column("secret", sa.Text(), nullable=False),
    sa.Column("events", sa.Text(), nullable=False),  # JSON list of event names, [] for all
    sa.Column("model_name", sa.String(128), nullable=True),  # None: every model
    sa.Column("created_at", sa.BigInteger(), nullable=False),
    sa.Column("created_by", sa.String(128), nullable=False),
)
