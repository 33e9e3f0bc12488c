"""Evaluation: a model version against labelled data, and against the production
champion, with bootstrap intervals and paired significance tests; stored records; the
``beats`` promotion gate; HTML reports."""

from __future__ import annotations

from syllabus.evaluation.models import Comparison, Evaluation, EvaluationSpec, MetricValue

__all__ = ["Comparison", "Evaluation", "EvaluationSpec", "MetricValue"]
