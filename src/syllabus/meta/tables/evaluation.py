"""Tables of evaluations (``syllabus.evaluation``).

``evaluations``
    one row per evaluation of a model version (``model_version_id``), optionally against a
    champion version (``champion_version_id``), on a dataset version
    (``dataset_version_id``; no foreign key: a purged dataset version leaves its
    evaluations readable, with the reference as text). ``summary`` holds the metrics with
    intervals and the paired comparisons as JSON (what listings and gates read);
    ``results`` is the content id of the full results JSON (curves, per class, slices) in
    the blob store, also in ``blob_refs`` (kind ``evaluation``).
"""

from __future__ import annotations

from typing import Final

import sqlalchemy as sa

from syllabus.meta.schema import metadata

__all__ = ["evaluations"]

evaluations: Final = sa.Table(
    "evaluations",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column(
        "model_version_id",
        sa.String(32),
        sa.ForeignKey("model_versions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("model_ref", sa.String(160), nullable=False),
    sa.Column(
        "champion_version_id",
        sa.String(32),
        sa.ForeignKey("model_versions.id", ondelete="CASCADE"),
        nullable=True,
    ),
    sa.Column("champion_ref", sa.String(160), nullable=True),
    sa.Column("dataset_version_id", sa.String(32), nullable=False),
    sa.Column("dataset_ref", sa.String(160), nullable=False),
    sa.Column("target", sa.String(250), nullable=False),
    sa.Column("slice_column", sa.String(250), nullable=True),
    sa.Column("task", sa.String(32), nullable=False),
    sa.Column("rows", sa.BigInteger(), nullable=False),
    sa.Column("confidence", sa.Float(), nullable=False),
    sa.Column("resamples", sa.Integer(), nullable=False),
    sa.Column("latency_ms_per_row", sa.Float(), nullable=True),
    sa.Column("summary", sa.Text(), nullable=False),  # JSON: metrics and comparisons
    sa.Column("results", sa.String(64), nullable=False),  # content id of the results JSON
    sa.Column("created_at", sa.BigInteger(), nullable=False),  # Unix milliseconds
    sa.Column("created_by", sa.String(128), nullable=False),
    sa.Index(
        "ix_evaluations_pair", "model_version_id", "champion_version_id", "dataset_version_id"
    ),
    sa.Index(None, "champion_version_id"),
    sa.Index(None, "dataset_version_id"),
    sa.Index(None, "created_at"),
)
