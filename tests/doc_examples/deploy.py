"""Workspace preparation for the ``syllabus deploy`` examples.

Model ``churn`` versions 1 and 2 (scikit-learn regressions on column ``x``), dataset
``new`` (column ``x``), and ``deploy.yaml`` (service ``churn``, local target, staging on
churn@1 with churn@2 as a 50 % canary, production on churn@2). Examples that change a live
deployment find one running; status, history and rollback find two rendered (kubernetes)
revisions; every server an example started is stopped afterwards.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

PREFIXES = ("syllabus deploy",)

SPEC = """\
service: churn
model: churn@1
target: local
readiness_timeout: 2m
log: {enabled: false}
traffic:
  canary: {model: churn@2, percent: 50}
environments:
  staging: {}
  production:
    model: churn@2
    traffic: {}
    kubernetes: {namespace: ml}
"""


def _models(workdir: Path) -> None:
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LinearRegression

    from syllabus import Client

    x = pd.DataFrame({"x": np.arange(5, dtype=np.float64)})
    with Client(cwd=workdir) as client:
        for slope in (2.0, 3.0):
            run = client.create_run("churn")
            model = LinearRegression().fit(x, slope * x["x"])
            client.log_model(run.id, model, input_example=x.head(2), registered_name="churn")
            client.end_run(run.id)
        x.to_csv(workdir / "new.csv", index=False)
        client.add_dataset("new", workdir / "new.csv")


def prepare(workdir: Path, example: str) -> None:
    from syllabus import Client

    _models(workdir)
    (workdir / "deploy.yaml").write_text(SPEC)
    words = shlex.split(example)
    with Client(cwd=workdir) as client:
        if words[2] in ("status", "history", "rollback"):
            # rendered revisions (kubernetes): something to show and to roll back to, no
            # process to start (a local rollback's processes: tests/deploy/test_local.py
            # and the guide, tests/deploy/test_guide.py)
            k8s = SPEC.replace("target: local", "target: kubernetes")
            (workdir / "first.yaml").write_text(
                k8s.replace("  staging: {}", "  staging: {traffic: {}}")
            )
            (workdir / "k8s.yaml").write_text(k8s)
            client.apply_deployment(workdir / "first.yaml", "staging")
            client.apply_deployment(workdir / "k8s.yaml", "staging")
        elif words[2] in ("stop", "promote-canary"):
            client.apply_deployment(workdir / "deploy.yaml", "staging")


def run(syllabus: Any, workdir: Path, example: str) -> Any:
    """Run the example, then stop whatever it (or the preparation) left serving."""
    from syllabus import Client

    try:
        return syllabus(*shlex.split(example)[1:])
    finally:
        with Client(cwd=workdir) as client:
            for d in client.list_deployments():
                if d.live is not None:
                    client.stop_deployment(d.name, d.env)
