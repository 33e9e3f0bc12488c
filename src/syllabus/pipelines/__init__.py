"""Pipelines: cached steps composed into pipelines, executors (local, Ray), triggers and the
agent that runs them; the continuous-improvement loop.

Define steps with :func:`step`, compose them with :func:`pipeline` (or write YAML), run
them with ``Client.run_pipeline`` or ``syllabus pipeline run``; see ``docs/pipelines.md``.
"""

from __future__ import annotations

from syllabus.pipelines.definition import Pipeline, dataset, model, pipeline, step
from syllabus.pipelines.models import (
    PipelineInfo,
    PipelineResult,
    PipelineRun,
    StepResult,
    StepRun,
    StepStatus,
    Trigger,
)
from syllabus.pipelines.triggers import cron, on_alert, on_dataset
from syllabus.pipelines.worker import StepContext

__all__ = [
    "Pipeline",
    "PipelineInfo",
    "PipelineResult",
    "PipelineRun",
    "StepContext",
    "StepResult",
    "StepRun",
    "StepStatus",
    "Trigger",
    "cron",
    "dataset",
    "model",
    "on_alert",
    "on_dataset",
    "pipeline",
    "step",
]
