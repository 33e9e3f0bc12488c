"""The end-to-end demo behind ``make demo`` and ``syllabus demo``.

On an embedded workspace in a folder of its own, with no network beyond 127.0.0.1, it
walks the whole lifecycle on scikit-learn's bundled breast-cancer measurements and reports
each step as a :class:`DemoStep` (the CLI prints them):

1. data versioning: scans from the old scanner become ``scans@1`` and a labelled
   ``holdout@1``;
2. tracking with code and environment captured: three training runs of ``train.py``
   (committed to a git repository in the folder when ``git`` is installed), each model
   registered as ``tumour``; one run reproduced from its snapshot;
3. the registry: a policy with gates; the best version passes them to production, a
   weaker one is refused (it does not beat the champion);
4. deployment: the production version served locally (``syllabus serve`` under the local
   target), traffic sent, its prediction log monitored with alert rules;
5. drift: a new scanner measures differently; ``scans@2`` and ``holdout@2`` arrive, the
   served model's accuracy falls, the monitor's window drifts and an alert fires;
6. continuous improvement: the agent runs the ``retrain`` pipeline the alert triggers:
   train on the new data, evaluate against the champion (significantly better), promote
   through the gates, deploy as a canary, then in full;
7. ``syllabus maturity`` reports level 3; search, compare and store checks close it.

Every server it started is stopped before it returns, also on failure.
"""

from __future__ import annotations

from syllabus.demo.story import DemoStep, run_demo

__all__ = ["DemoStep", "run_demo"]
