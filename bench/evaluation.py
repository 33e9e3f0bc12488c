"""Evaluation benchmark: Syllabus vs ``mlflow.models.evaluate``, same data, same models.

Workload (issue 7, "Scale"): N labelled rows of a binary classification task (8 normal
features, the label drawn from a logistic model of them) and two fitted scikit-learn
logistic regressions, a weak champion (2,000 training rows, strong regularization) and a
better challenger (50,000 rows); both take the same 8 columns.

* Syllabus: ``Client.evaluate(challenger, data, "label", against=champion)`` on the data
  added as a dataset version (Parquet) and the two models as registered versions: it reads
  the table, loads and runs both models, computes every classification metric with a
  bootstrap interval (``--resamples``, 1,000 by default), each delta with its paired
  interval and test (McNemar, DeLong, paired t, paired bootstrap), and stores the record
  and its results. At this size the rows stream in batches of 100,000 and the bootstrap
  resamples 10,000 random groups of rows (see docs/evaluation.md, "How the intervals
  are computed").
* MLflow: ``mlflow.models.evaluate(model_uri, df, targets="label", model_type="classifier")``
  of each model (MLflow 3 has no baseline model any more: two calls) in one run, the
  default evaluator (point metrics, plots and their artifacts; no intervals, no test).

Custom metrics (issue 7: "custom metric functions"): every repetition also times the
Syllabus evaluation with a per-row custom metric (``cost``: a missed positive costs 5, a
false alarm 1; ``cost.per_row = True``, so its 1,000 resamples share the one matrix
product); the table prints its time and what it adds. ``--plain-custom`` times one more
evaluation with the same metric as a plain function ``f(y_true, y_pred) -> float``,
which is called on every resample's rows (1,001 calls per model).

Untimed set-up: generating and writing the data, fitting the models, registering them
(``log_model``) and adding the dataset in each tool. Every repetition runs the two tools in
a random order, each preceded by an untimed ``os.sync()``; figures are medians and the
ratio is the median of per-repetition ratios. MLflow runs in its own venv through the
worker in ``bench/_mlflow.py``; when it cannot be provisioned the benchmark says why and
prints the Syllabus column alone.

Run: ``.venv/bin/python bench/evaluation.py`` (small) or ``--size full`` (1,000,000 rows,
the issue's size). See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pickle
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

try:  # run as a script (bench/ on sys.path) or as `python -m bench.evaluation`
    import _mlflow
except ImportError:  # pragma: no cover
    from bench import _mlflow

BENCH_DIR = Path(__file__).resolve().parent
TARGET_SPEEDUP = 5.0  # issue 7: at least 5x faster than mlflow.models.evaluate
SIZES = {"small": 200_000, "full": 1_000_000}
FEATURES = 8
console = Console(highlight=False, width=120)


# --------------------------------------------------------------------------- data


def make_rows(n: int, seed: int) -> dict[str, np.ndarray]:
    """``x0..x7`` standard normal, ``label`` ~ Bernoulli(sigmoid(x . beta))."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, FEATURES))
    beta = np.linspace(1.0, 0.1, FEATURES)
    p = 1 / (1 + np.exp(-(x @ beta)))
    cols = {f"x{i}": x[:, i] for i in range(FEATURES)}
    cols["label"] = (rng.random(n) < p).astype(np.int64)
    return cols


def prepare(workdir: Path, rows: int, seed: int) -> dict[str, Any]:
    """Write the evaluation data (Parquet) and pickle the two fitted models."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq
    from sklearn.linear_model import LogisticRegression

    workdir.mkdir(parents=True, exist_ok=True)
    names = [f"x{i}" for i in range(FEATURES)]
    train = pd.DataFrame(make_rows(52_000, seed + 1))
    champion = LogisticRegression(C=0.001).fit(train[names][:2000], train["label"][:2000])
    challenger = LogisticRegression().fit(train[names][2000:], train["label"][2000:])
    data = workdir / "holdout.parquet"
    pq.write_table(pa.table(make_rows(rows, seed)), data)
    paths = []
    for name, model in (("champion", champion), ("challenger", challenger)):
        path = workdir / f"{name}.pkl"
        path.write_bytes(pickle.dumps(model))
        paths.append(path)
    return {
        "data": data,
        "models": paths,
        "objects": (champion, challenger),
        "example": train[names][:5],
    }


# --------------------------------------------------------------------------- Syllabus


class Syllabus:
    """A fresh workspace with the dataset and both models registered (untimed)."""

    def __init__(self, folder: Path, prepared: dict[str, Any]) -> None:
        from syllabus import Client
        from syllabus.client import init_workspace

        folder.mkdir(parents=True, exist_ok=True)
        init_workspace(folder)
        self.client = Client(folder)
        self.client.add_dataset("holdout", prepared["data"])
        run = self.client.create_run("bench-evaluation")
        self.refs = []
        for model in prepared["objects"]:
            _, version = self.client.log_model(
                run.id, model, input_example=prepared["example"], registered_name="churn"
            )
            assert version is not None
            self.refs.append(str(version.ref))
        self.client.end_run(run.id)

    def evaluate(self, resamples: int, metrics: dict[str, Any] | None = None) -> dict[str, Any]:
        champion, challenger = self.refs
        os.sync()
        t0 = time.perf_counter()
        ev = self.client.evaluate(
            challenger,
            "holdout@latest",
            "label",
            against=champion,
            resamples=resamples,
            metrics=metrics,
        )
        took = time.perf_counter() - t0
        auc = ev.comparison("roc_auc")
        assert auc is not None
        return {
            "seconds": took,
            "predict": (ev.latency_ms_per_row or 0.0) * ev.rows / 1000,
            "roc_auc": auc.candidate,
            "delta": auc.delta,
            "low": auc.low,
            "high": auc.high,
            "p_value": auc.p_value,
            "verdict": auc.verdict,
            "metrics": len(ev.metrics),
            "custom": {
                c.metric: c.describe() for c in ev.comparisons if metrics and c.metric in metrics
            },
        }

    def close(self) -> None:
        self.client.close()


def row_cost(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Per row: a missed positive costs 5, a false alarm 1 (a per-row custom metric)."""
    return np.where(y_true == 1, 5.0, 1.0) * (y_true != y_pred)


row_cost.per_row = True  # type: ignore[attr-defined]
row_cost.greater_is_better = False  # type: ignore[attr-defined]


def plain_cost(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """The same metric as a plain function, called once per resample."""
    return float(np.mean(np.where(y_true == 1, 5.0, 1.0) * (y_true != y_pred)))


plain_cost.greater_is_better = False  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- main


def _fmt_s(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f} s"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", choices=sorted(SIZES), default=os.environ.get("BENCH_SIZE", "small"))
    ap.add_argument("--rows", type=int, help="override the number of rows")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--resamples", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--no-mlflow", action="store_true", help="skip MLflow (no install attempt)")
    ap.add_argument("--json", type=Path, help="also write every repetition as JSON")
    ap.add_argument("--workdir", type=Path, default=BENCH_DIR / ".work")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument(
        "--plain-custom",
        action="store_true",
        help="also time one evaluation with the custom metric as a plain function (slow)",
    )
    args = ap.parse_args(argv)
    rows = args.rows or SIZES[args.size]

    console.print(
        f"[bold]evaluation benchmark[/]: {rows:,} rows, 2 models, {args.resamples:,} resamples, "
        f"{args.reps} reps; {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"load {os.getloadavg()[0]:.2f}"
    )
    args.workdir.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="evaluation-", dir=args.workdir)).resolve()
    mlflow = None
    if args.no_mlflow:
        status = "MLflow skipped (--no-mlflow)"
    else:
        mlflow, status = _mlflow.provision(log=console.print)
    console.print(status if mlflow else f"MLflow column skipped: {status}")
    worker = None
    try:
        t = time.perf_counter()
        prepared = prepare(root / "data", rows, args.seed)
        syl = Syllabus(root / "syllabus", prepared)
        console.print(f"set-up (data, models, registration): {time.perf_counter() - t:.1f} s")
        if mlflow is not None:
            try:
                worker = mlflow.worker(root / "mlflow-worker")
            except _mlflow.MlflowError as exc:
                console.print(f"MLflow column skipped: {exc}")
        reps: list[dict[str, Any]] = []
        for rep in range(args.reps):
            order = ["syllabus", "custom", "mlflow"] if worker else ["syllabus", "custom"]
            random.shuffle(order)
            out: dict[str, Any] = {}
            for tool in order:
                if tool == "syllabus":
                    out["syllabus"] = syl.evaluate(args.resamples)
                elif tool == "custom":
                    out["custom"] = syl.evaluate(args.resamples, {"cost": row_cost})
                else:
                    assert worker is not None
                    folder = root / f"mlflow-{rep}"
                    out["mlflow"] = worker.call(
                        "evaluate",
                        folder=str(folder),
                        data=str(prepared["data"]),
                        models=[str(p) for p in prepared["models"]],
                        target="label",
                    )
                    worker.call("cleanup", folder=str(folder))
            s = out["syllabus"]
            line = f"rep {rep + 1}: Syllabus {s['seconds']:.2f} s"
            line += f" (with a per-row custom metric {out['custom']['seconds']:.2f} s)"
            if "mlflow" in out:
                m = out["mlflow"]
                out["ratio"] = m["seconds"] / s["seconds"]
                line += f", MLflow {m['seconds']:.2f} s, ratio {out['ratio']:.2f}x"
            console.print(line)
            reps.append(out)
        plain = None
        if args.plain_custom:
            plain = syl.evaluate(args.resamples, {"cost": plain_cost})
            console.print(
                f"Syllabus with the custom metric as a plain function: {plain['seconds']:.2f} s"
            )
        syl.close()
        _report(reps, rows, args.resamples, plain)
        custom_cost(prepared, args.resamples, args.reps, plain=args.plain_custom)
        if args.json:
            args.json.write_text(json.dumps({"rows": rows, "reps": reps}, indent=2, default=str))
    finally:
        if worker is not None:
            worker.close()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return 0


def custom_cost(prepared: dict[str, Any], resamples: int, reps: int, *, plain: bool) -> None:
    """What a custom metric adds to the metrics and their bootstrap alone (both models'
    predictions made once, untimed): every metric of both models with ``resamples``
    resamples, without and with the custom metric, interleaved ``reps`` times; medians."""
    import pyarrow.parquet as pq

    from syllabus.evaluation.metrics import bootstrap, score_classification

    table = pq.read_table(prepared["data"])
    y = table.column("label").to_numpy()
    x = table.select([f"x{i}" for i in range(FEATURES)]).to_pandas()
    predicted = [(m.predict(x), m.predict_proba(x)) for m in prepared["objects"]]
    variants: dict[str, dict[str, Any] | None] = {"none": None, "per-row": {"cost": row_cost}}
    if plain:
        variants["plain"] = {"cost": plain_cost}
    times: dict[str, list[float]] = {k: [] for k in variants}
    for rep in range(reps):
        for name, custom in variants.items():
            if name == "plain" and rep > 0:  # 1,001 calls per model: once is enough
                continue
            t0 = time.perf_counter()
            scored = [
                score_classification(y, pred, proba, [0, 1], custom=custom, curves=False)
                for pred, proba in predicted
            ]
            bootstrap(scored, len(y), count=resamples, seed=1, confidence=0.95)
            times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    line = (
        f"metrics + {resamples:,}-resample bootstrap of 2 models on {len(y):,} rows "
        f"(medians of {reps}): {med['none']:.2f} s; with a per-row custom metric "
        f"{med['per-row']:.2f} s ({med['per-row'] - med['none']:+.2f} s)"
    )
    if plain:
        added = med["plain"] - med["none"]
        line += f"; with it as a plain function (once) {med['plain']:.2f} s ({added:+.2f} s)"
    console.print(line)


def _report(
    reps: list[dict[str, Any]], rows: int, resamples: int, plain: dict[str, Any] | None
) -> None:
    syl = [r["syllabus"] for r in reps]
    med = statistics.median
    table = Table(title=f"evaluation of 2 models on {rows:,} rows (medians of {len(reps)} reps)")
    for col in ("", "Syllabus", "MLflow", "MLflow / Syllabus", "target", "verdict"):
        table.add_column(col, justify="left" if not col else "right")
    total = med(r["seconds"] for r in syl)
    ml = [r["mlflow"] for r in reps if "mlflow" in r]
    ratio = med(r["ratio"] for r in reps) if ml else None
    table.add_row(
        "total",
        _fmt_s(total),
        _fmt_s(med(r["seconds"] for r in ml)) if ml else "-",
        "-" if ratio is None else f"{ratio:.2f}x",
        f">= {TARGET_SPEEDUP:g}x",
        "-" if ratio is None else ("PASS" if ratio >= TARGET_SPEEDUP else "MISS"),
    )
    table.add_row(
        "  of which the challenger predicting",
        _fmt_s(med(r["predict"] for r in syl)),
        "",
        "",
        "",
        "",
    )
    custom = med(r["custom"]["seconds"] for r in reps)
    added = med(r["custom"]["seconds"] - r["syllabus"]["seconds"] for r in reps)
    table.add_row(
        "with a per-row custom metric (cost)",
        f"{_fmt_s(custom)} ({added:+.2f} s)",
        "",
        ""
        if not ml
        else f"{med(r['mlflow']['seconds'] / r['custom']['seconds'] for r in reps):.2f}x",
    )
    if plain is not None:
        table.add_row(
            "with it as a plain function (1 run)",
            f"{_fmt_s(plain['seconds'])} ({plain['seconds'] - total:+.2f} s)",
        )
    if ml:
        per = [med(r["per_model"][i] for r in ml) for i in range(2)]
        table.add_row("  per model (champion, challenger)", "", f"{per[0]:.2f} / {per[1]:.2f} s")
    table.add_row(
        "produces",
        f"{syl[0]['metrics']} metrics + {resamples:,}-resample CIs, paired deltas + tests",
        f"{len(ml[0]['metrics'][1])} metrics + plots, no CIs, no test" if ml else "-",
    )
    console.print(table)
    s = syl[0]
    line = (
        f"roc_auc: Syllabus {s['roc_auc']:.5f}, delta vs champion {s['delta']:+.5f} "
        f"[{s['low']:+.5f}, {s['high']:+.5f}] p={s['p_value']:.3g} -> {s['verdict']}"
    )
    if ml:
        theirs = ml[0]["metrics"][1].get("roc_auc")
        line += f"; MLflow roc_auc {theirs:.5f}" if theirs is not None else ""
        if theirs is not None and abs(theirs - s["roc_auc"]) > 1e-9:
            line += " (odd: differs)"
    console.print(line)
    for text in reps[0]["custom"]["custom"].values():
        console.print(f"custom metric: {text}")


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
