"""Tables of monitors, windows, alert rules and alerts (``syllabus.monitoring``).

``monitor_profiles``
    reference profiles (per-column grids and cells, category counts) stored as JSON in the
    blob store (``digest``, also in ``blob_refs``, kind ``monitoring``); ``key`` identifies
    what was profiled (source and columns) so a profile is computed once and reused.
``monitors``
    one row per monitor (unique ``name``): the prediction log it reads (``service``, an
    optional ``log_path`` root), the deployment it was made for (``deployment``/``env``),
    the model it watches, its reference profile, its windows (``window_kind`` ``time`` in
    milliseconds or ``rows``, ``window_size``) and the rest of its settings as JSON
    (``config``: features, thresholds, target, webhooks). ``lock_owner``/``lock_until``
    make ``monitor run`` exclusive across processes; ``rows_seen`` counts log rows for
    windows by count.
``monitor_segments``
    the log segments a monitor has processed (``kind`` predictions or feedback): a run reads
    only the others.
``monitor_windows``
    the time series: one row per window (``start``/``end`` in ms or rows), its rows, whether
    it is closed, the accumulated state (``state``, blob digest, to merge later segments
    into), the summary JSON (drift per feature, quality, latency, performance) and the
    labelled pairs (``labels``, blob digest of a Parquet file) feedback has matched so far.
``monitor_rules``
    alert rules (``expr`` in the rule language; ``origin`` ``spec`` from the deployment's
    monitoring block or ``user``).
``monitor_alerts``
    alerts: one ``firing`` row per (monitor, rule) while the rule holds, ``resolved`` once it
    clears.
``monitor_events``
    what happened to alerts (``fired``, ``resolved``), numbered by ``seq`` so a pipeline
    trigger remembers the last one it saw.
"""

from __future__ import annotations

from typing import Final

import sqlalchemy as sa

from syllabus.meta.schema import BigIntId, metadata

__all__ = [
    "monitor_alerts",
    "monitor_events",
    "monitor_profiles",
    "monitor_rules",
    "monitor_segments",
    "monitor_windows",
    "monitors",
]

monitor_profiles: Final = sa.Table(
    "monitor_profiles",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("key", sa.String(64), nullable=False, unique=True),
    sa.Column("source", sa.Text(), nullable=False),
    sa.Column("rows", sa.BigInteger(), nullable=False),
    sa.Column("columns", sa.Integer(), nullable=False),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("created_at", sa.BigInteger(), nullable=False),  # Unix milliseconds
)

monitors: Final = sa.Table(
    "monitors",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    sa.Column("service", sa.String(128), nullable=False),
    sa.Column("log_path", sa.Text(), nullable=True),
    sa.Column("deployment", sa.String(128), nullable=True),
    sa.Column("env", sa.String(64), nullable=True),
    sa.Column("model_ref", sa.String(160), nullable=True),
    sa.Column("reference", sa.String(250), nullable=True),
    sa.Column("profile_id", sa.String(32), sa.ForeignKey("monitor_profiles.id"), nullable=True),
    sa.Column("window_kind", sa.String(8), nullable=False),  # time | rows
    sa.Column("window_size", sa.BigInteger(), nullable=False),
    sa.Column("config", sa.Text(), nullable=False),  # JSON
    sa.Column("rows_seen", sa.BigInteger(), nullable=False),
    sa.Column("lock_owner", sa.String(64), nullable=True),
    sa.Column("lock_until", sa.BigInteger(), nullable=True),
    sa.Column("created_at", sa.BigInteger(), nullable=False),
    sa.Column("created_by", sa.String(128), nullable=False),
    sa.Column("updated_at", sa.BigInteger(), nullable=False),
    sa.Index(None, "deployment", "env"),
)

monitor_segments: Final = sa.Table(
    "monitor_segments",
    metadata,
    sa.Column(
        "monitor_id",
        sa.String(32),
        sa.ForeignKey("monitors.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("kind", sa.String(16), primary_key=True),
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("rows", sa.BigInteger(), nullable=False),
    sa.Column("processed_at", sa.BigInteger(), nullable=False),
)

monitor_windows: Final = sa.Table(
    "monitor_windows",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column(
        "monitor_id",
        sa.String(32),
        sa.ForeignKey("monitors.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("start", sa.BigInteger(), nullable=False),
    sa.Column("end", sa.BigInteger(), nullable=False),
    sa.Column("rows", sa.BigInteger(), nullable=False),
    sa.Column("closed", sa.Boolean(), nullable=False),
    sa.Column("state", sa.String(64), nullable=False),
    sa.Column("summary", sa.Text(), nullable=False),  # JSON
    sa.Column("labels", sa.String(64), nullable=True),
    sa.Column("labelled", sa.BigInteger(), nullable=False),
    sa.Column("updated_at", sa.BigInteger(), nullable=False),
    sa.UniqueConstraint("monitor_id", "start"),
)

monitor_rules: Final = sa.Table(
    "monitor_rules",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column(
        "monitor_id",
        sa.String(32),
        sa.ForeignKey("monitors.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("expr", sa.String(500), nullable=False),
    sa.Column("origin", sa.String(16), nullable=False),  # spec | user
    sa.Column("created_at", sa.BigInteger(), nullable=False),
    sa.Column("created_by", sa.String(128), nullable=False),
    sa.UniqueConstraint("monitor_id", "expr"),
)

monitor_alerts: Final = sa.Table(
    "monitor_alerts",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column(
        "monitor_id",
        sa.String(32),
        sa.ForeignKey("monitors.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("rule_id", sa.String(32), nullable=False),
    sa.Column("rule", sa.String(500), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # firing | resolved
    sa.Column("value", sa.Float(), nullable=True),
    sa.Column("window_start", sa.BigInteger(), nullable=False),
    sa.Column("started_at", sa.BigInteger(), nullable=False),
    sa.Column("updated_at", sa.BigInteger(), nullable=False),
    sa.Column("resolved_at", sa.BigInteger(), nullable=True),
    sa.Index(None, "monitor_id", "state"),
    sa.Index(None, "rule_id"),
)

monitor_events: Final = sa.Table(
    "monitor_events",
    metadata,
    sa.Column("seq", BigIntId, primary_key=True, autoincrement=True),
    sa.Column("alert_id", sa.String(32), nullable=False),
    sa.Column(
        "monitor_id",
        sa.String(32),
        sa.ForeignKey("monitors.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("event", sa.String(16), nullable=False),  # fired | resolved
    sa.Column("rule", sa.String(500), nullable=False),
    sa.Column("value", sa.Float(), nullable=True),
    sa.Column("window_start", sa.BigInteger(), nullable=False),
    sa.Column("created_at", sa.BigInteger(), nullable=False),
    sa.Index(None, "monitor_id", "seq"),
)
