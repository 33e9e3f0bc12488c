"""Tables of pipelines (``syllabus.pipelines``).

``pipelines``
    one row per named pipeline: where its definition comes from (``source``: a Python
    ``module:attribute`` or a YAML file relative to the workspace's project root), the
    definition as JSON (steps, edges, params, triggers) and its digest.
``pipeline_runs``
    one row per run of a pipeline; ``run_id`` is the tracked run (the parent of the step
    runs). ``params`` is the JSON of the resolved params; ``resumes`` the pipeline run it
    continues; ``firing_id`` the trigger firing that started it.
``step_runs``
    one row per step of a pipeline run: its status (``pending``, ``running``,
    ``succeeded``, ``cached``, ``failed``, ``skipped``), its tracked run, the cache key
    and, when cached, the step run whose result it reused; ``outputs`` describes what the
    step produced (JSON).
``step_cache``
    the result of a step by cache key (a BLAKE3 digest of the step's code, params and
    inputs' content): the content id of the serialized output in the blob store (also in
    ``blob_refs``, kind ``pipeline``) and its format (``json`` or ``pickle``).
``triggers``
    what starts a pipeline by itself: ``kind`` ``cron``, ``dataset`` or ``alert`` with its
    ``spec`` (JSON), the trigger's cursor (``state``: the last occurrence it fired for) and
    a lease (``lease_owner`` until ``lease_expires_at``) so one agent at a time evaluates it.
``trigger_firings``
    one row per occurrence a trigger fired for; unique per trigger and occurrence, so no
    occurrence fires twice, whatever the number of agents. An agent that runs the pipeline
    holds the firing's lease; a firing whose lease expired while running is resumed (not
    fired again) by the next agent.
"""

from __future__ import annotations

from typing import Final

import sqlalchemy as sa

from syllabus.meta.schema import metadata

__all__ = [
    "pipeline_runs",
    "pipelines",
    "step_cache",
    "step_runs",
    "trigger_firings",
    "triggers",
]

pipelines: Final = sa.Table(
    "pipelines",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(255), nullable=False, unique=True),
    sa.Column("source", sa.Text(), nullable=False),
    sa.Column("definition", sa.Text(), nullable=False),  # JSON
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("created_at", sa.BigInteger(), nullable=False),  # Unix milliseconds
    sa.Column("updated_at", sa.BigInteger(), nullable=False),
)

pipeline_runs: Final = sa.Table(
    "pipeline_runs",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column(
        "pipeline_id",
        sa.String(32),
        sa.ForeignKey("pipelines.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("run_id", sa.String(32), nullable=True),  # the tracked (parent) run
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("params", sa.Text(), nullable=False),  # JSON
    sa.Column("digest", sa.String(64), nullable=False),  # the definition it ran
    sa.Column("executor", sa.String(32), nullable=False),
    sa.Column("forced", sa.Text(), nullable=False),  # JSON list of step names
    sa.Column("resumes", sa.String(32), nullable=True),
    sa.Column("firing_id", sa.String(32), nullable=True),
    sa.Column("created_by", sa.String(128), nullable=False),
    sa.Column("started_at", sa.BigInteger(), nullable=False),
    sa.Column("ended_at", sa.BigInteger(), nullable=True),
    sa.Column("error", sa.Text(), nullable=True),
    sa.Index(None, "pipeline_id", "started_at"),
    sa.Index(None, "firing_id"),
)

step_runs: Final = sa.Table(
    "step_runs",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column(
        "pipeline_run_id",
        sa.String(32),
        sa.ForeignKey("pipeline_runs.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("step", sa.String(255), nullable=False),
    sa.Column("run_id", sa.String(32), nullable=True),  # the tracked step run
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("cache_key", sa.String(64), nullable=True),
    sa.Column("cached_from", sa.String(32), nullable=True),  # a step_runs.id
    sa.Column("reason", sa.Text(), nullable=True),  # why it ran, was skipped or reused
    sa.Column("outputs", sa.Text(), nullable=True),  # JSON
    sa.Column("started_at", sa.BigInteger(), nullable=True),
    sa.Column("ended_at", sa.BigInteger(), nullable=True),
    sa.Column("error", sa.Text(), nullable=True),
    sa.UniqueConstraint("pipeline_run_id", "step"),
)

step_cache: Final = sa.Table(
    "step_cache",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("step", sa.String(255), nullable=False),
    sa.Column("digest", sa.String(64), nullable=False),  # content id of the output
    sa.Column("format", sa.String(16), nullable=False),  # json | pickle
    sa.Column("outputs", sa.Text(), nullable=False),  # JSON description
    sa.Column("step_run_id", sa.String(32), nullable=False),
    sa.Column("created_at", sa.BigInteger(), nullable=False),
)

triggers: Final = sa.Table(
    "triggers",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column(
        "pipeline_id",
        sa.String(32),
        sa.ForeignKey("pipelines.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # cron | dataset | alert
    sa.Column("spec", sa.Text(), nullable=False),  # JSON
    sa.Column("enabled", sa.Boolean(), nullable=False),
    sa.Column("state", sa.Text(), nullable=True),  # the last occurrence fired for
    sa.Column("last_fired_at", sa.BigInteger(), nullable=True),
    sa.Column("checked_at", sa.BigInteger(), nullable=True),
    sa.Column("lease_owner", sa.String(64), nullable=True),
    sa.Column("lease_expires_at", sa.BigInteger(), nullable=True),
    sa.Column("created_at", sa.BigInteger(), nullable=False),
    sa.UniqueConstraint("pipeline_id", "name"),
)

trigger_firings: Final = sa.Table(
    "trigger_firings",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column(
        "trigger_id",
        sa.String(32),
        sa.ForeignKey("triggers.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("occurrence", sa.String(255), nullable=False),
    sa.Column("detail", sa.Text(), nullable=True),  # JSON: what fired it
    sa.Column("status", sa.String(16), nullable=False),  # running | succeeded | failed
    sa.Column("agent", sa.String(64), nullable=False),
    sa.Column("pipeline_run_id", sa.String(32), nullable=True),
    sa.Column("lease_owner", sa.String(64), nullable=True),
    sa.Column("lease_expires_at", sa.BigInteger(), nullable=True),
    sa.Column("fired_at", sa.BigInteger(), nullable=False),
    sa.Column("ended_at", sa.BigInteger(), nullable=True),
    sa.UniqueConstraint("trigger_id", "occurrence"),
    sa.Index(None, "status"),
)
