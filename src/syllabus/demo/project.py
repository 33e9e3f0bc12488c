"""The demo's project: its data (scikit-learn's bundled breast-cancer measurements) and the
files a data scientist would have written: a training script, a promotion policy, a
deployment spec, the steps and the pipeline of the retraining loop."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "DEPLOY_YAML",
    "FEATURES",
    "PIPELINE_PY",
    "POLICY_YAML",
    "TARGET",
    "TRAINING_PY",
    "TRAIN_PY",
    "scans",
    "write_csv",
]

SEED = 20261127
TARGET = "malignant"
# Six of the thirty measurements, renamed to identifiers.
FEATURES = (
    "mean_radius",
    "mean_texture",
    "mean_smoothness",
    "mean_concavity",
    "worst_area",
    "worst_concave_points",
)
# What the new scanner does to the measurements (the drift): bigger areas, more texture,
# sharper concave points. The diagnoses do not change: the old model's thresholds do.
SCANNER_SHIFT: Mapping[str, tuple[float, float]] = {  # feature: (scale, shift in stds)
    "worst_area": (1.45, 0.0),
    "mean_texture": (1.0, 1.0),
    "worst_concave_points": (1.0, 0.6),
}


def scans(rows: int, part: int, *, new_scanner: bool = False) -> dict[str, np.ndarray[Any, Any]]:
    """``rows`` scans drawn from the 569 of ``sklearn.datasets.load_breast_cancer`` (with
    replacement, each measurement jittered by 5% of its spread so no two rows are equal),
    seeded by ``part``; ``new_scanner`` measures them with the drift above."""
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer()
    names = [n.replace(" ", "_") for n in bunch.feature_names]
    x = bunch.data[:, [names.index(f) for f in FEATURES]]
    spread = x.std(axis=0)
    rng = np.random.default_rng([SEED, part])
    pick = rng.integers(0, len(x), rows)
    values = x[pick] + rng.normal(0.0, 0.05, (rows, len(FEATURES))) * spread
    values = np.maximum(values, 0.0)
    if new_scanner:
        for name, (scale, shift) in SCANNER_SHIFT.items():
            j = FEATURES.index(name)
            values[:, j] = values[:, j] * scale + shift * spread[j]
    out = {name: np.round(values[:, j], 5) for j, name in enumerate(FEATURES)}
    out[TARGET] = (bunch.target[pick] == 0).astype(np.int64)  # 0 is malignant in sklearn
    return out


def write_csv(path: Path, columns: Mapping[str, np.ndarray[Any, Any]]) -> None:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    path.parent.mkdir(parents=True, exist_ok=True)
    pacsv.write_csv(pa.table(dict(columns)), path)


TRAIN_PY = '''\
"""Train a tumour classifier on a version of the scans dataset, as a tracked run.

    python train.py scans@1 --name gbm --model gbm --depth 3
"""

import argparse

import numpy as np
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import syllabus
import syllabus.data

FEATURES = "mean_radius,mean_texture,mean_smoothness,mean_concavity,worst_area,worst_concave_points"


def train(ref, *, name, model, features, depth=3, trees=60, client=None):
    """Fit on 75% of the rows; log val_auc (at every boosting stage for gbm)."""
    data = syllabus.data.get(ref, client=client)
    table = data.to_arrow()
    x = np.column_stack([table.column(c).to_numpy() for c in features]).astype(float)
    y = table.column("malignant").to_numpy()
    val = np.random.default_rng(0).random(len(y)) < 0.25
    params = {"model": model, "data": data.ref, "features": ",".join(features)}
    if model == "gbm":
        params.update(depth=depth, trees=trees)
        estimator = GradientBoostingClassifier(
            n_estimators=trees, max_depth=depth, learning_rate=0.1, random_state=0
        )
    else:
        estimator = make_pipeline(StandardScaler(), LogisticRegression())
    with syllabus.start_run(experiment="scans", name=name, params=params, client=client) as run:
        run.log_input(data, role="train")
        estimator.fit(x[~val], y[~val])
        if model == "gbm":
            for step, proba in enumerate(estimator.staged_predict_proba(x[val])):
                syllabus.log_metric("val_auc", float(roc_auc_score(y[val], proba[:, 1])), step=step)
        else:
            proba = estimator.predict_proba(x[val])[:, 1]
            syllabus.log_metric("val_auc", float(roc_auc_score(y[val], proba)))
        example = {c: table.column(c).to_numpy()[:5] for c in features}
        _, version = run.client.log_model(
            run.id, estimator, input_example=example, registered_name="tumour"
        )
    return run.id, version


def main(argv=None, client=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", default="scans@latest", help="dataset version")
    parser.add_argument("--name", default="manual", help="run name")
    parser.add_argument("--model", default="gbm", choices=["gbm", "logistic"])
    parser.add_argument("--features", default=FEATURES, help="comma-separated columns")
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--trees", type=int, default=60)
    args = parser.parse_args(argv)
    return train(args.data, name=args.name, model=args.model,
                 features=tuple(args.features.split(",")), depth=args.depth,
                 trees=args.trees, client=client)


if __name__ == "__main__":
    run_id, version = main()
    print(f"run {run_id} registered {version.ref}")
'''

TRAINING_PY = '''\
"""What the retraining pipeline fits (its `train` step calls `fit`)."""

from sklearn.ensemble import GradientBoostingClassifier


def fit(frame, target, depth=3, trees=60):
    x, y = frame.drop(columns=[target]), frame[target]
    return GradientBoostingClassifier(
        n_estimators=trees, max_depth=depth, learning_rate=0.1, random_state=0
    ).fit(x, y)
'''

PIPELINE_PY = '''\
"""The continuous-improvement loop: when the monitor of the production service raises an
alert, retrain on the newest scans, evaluate the challenger against the champion on the
newest labelled holdout, promote it through the policy's gates, and deploy it as a
canary, then in full."""

from syllabus import pipeline
from syllabus.pipelines import builtin, dataset, on_alert


@pipeline(name="retrain",
          triggers=[on_alert("tumour-production:drift_share > 0.3", name="drift")])
def retrain(depth: int = 3):
    model = builtin.train(dataset("scans@latest"), fit="training:fit", target="malignant",
                          depth=depth)
    version = builtin.register(model, name="tumour")
    verdict = builtin.evaluate(version, dataset("holdout@latest"), target="malignant",
                               resamples=200)
    promoted = builtin.promote(version, evaluation=verdict, stages=["staging", "production"])
    builtin.deploy(promoted, spec="deploy.yaml", env="production", canary_percent=20)
'''

POLICY_YAML = """\
policy: tumour
stages:
  staging:
    gates:
      - signature: required
      - smoke_test: true
  production:
    from: [staging]
    gates:
      - smoke_test: true
      - beats:                     # significantly better than the version in production
          champion: production
          metric: [roc_auc, accuracy]
          data: holdout@latest
          target: malignant
          confidence: 0.95
retention:
  archived: 30d
"""

DEPLOY_YAML = """\
service: tumour
model: tumour@production
target: local
workers: 1
readiness_timeout: 90s
log: {enabled: true, flush_rows: 100, flush_seconds: 0.5}
monitoring:
  window: "400 rows"
  target: malignant
  alerts:
    - drift_share > 0.3
    - accuracy < 0.85
environments:
  production: {}
"""

GITIGNORE = "/.syllabus/\n/data/\n/__pycache__/\n"
