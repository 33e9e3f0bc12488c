"""A workspace for the UI tests: two versions of a generated churn table, a baseline and a
challenger trained on them in tracked runs with code capture, registered as ``churn``, a
promotion policy with one promotion and one refusal, and the store checks. (This was the
first `syllabus demo`; the demo now tells the whole loop, the UI tests keep this story.)"""

from __future__ import annotations

import runpy
import sys
import time
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from syllabus.client import Client, init_workspace
from syllabus.config import BLOBS_DIR
from syllabus.demo.story import DemoStep, _code_facts, _git_commit
from syllabus.errors import InvalidArgumentError, NotFoundError, PromotionRefusedError
from syllabus.registry.models import GateResult

__all__ = ["DemoStep", "run_churn_story"]

SEED = 20261127
V1_ROWS = 10_000
NEW_ROWS = 2_000
GATE = 0.80  # val_auc a model needs for staging and production
BASE_FEATURES = ("tenure_months", "monthly_charges", "contract_months")
ALL_FEATURES = (*BASE_FEATURES, "support_calls")
SEARCH = "metrics.val_auc > 0.7 and status = 'finished' and params.model = 'gbm'"

TRAIN_PY = '''\
"""Train the churn model on a version of the churn dataset, as a tracked run.

    python train.py churn@2 --name challenger --features tenure_months,support_calls
"""

import argparse

import numpy as np
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.metrics import roc_auc_score

import syllabus
import syllabus.data

FEATURES = "tenure_months,monthly_charges,contract_months"


def train(ref, *, name, features, n_estimators, max_depth, client=None):
    """Fit gradient boosting on 75% of the rows; log val_auc at every boosting stage."""
    data = syllabus.data.get(ref, client=client)
    table = data.to_arrow()
    x = np.column_stack([table.column(c).to_numpy() for c in features]).astype(float)
    y = table.column("churned").to_numpy()
    val = np.random.default_rng(0).random(len(y)) < 0.25
    params = {"model": "gbm", "data": data.ref, "features": ",".join(features),
              "n_estimators": n_estimators, "max_depth": max_depth, "learning_rate": 0.1}
    with syllabus.start_run(experiment="churn", name=name, params=params, client=client) as run:
        run.log_input(data, role="train")
        model = GradientBoostingClassifier(
            n_estimators=n_estimators, max_depth=max_depth, learning_rate=0.1, random_state=0
        ).fit(x[~val], y[~val])
        stages = zip(model.train_score_, model.staged_predict_proba(x[val]))
        for step, (loss, proba) in enumerate(stages):
            auc = roc_auc_score(y[val], proba[:, 1])
            syllabus.log_metrics({"train_loss": float(loss), "val_auc": float(auc)}, step=step)
        example = {c: table.column(c).to_numpy()[:5] for c in features}
        _, version = run.client.log_model(
            run.id, model, input_example=example, registered_name="churn"
        )
    return run.id, version


def main(argv=None, client=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", default="churn@latest", help="dataset version")
    parser.add_argument("--name", default="manual", help="run name")
    parser.add_argument("--features", default=FEATURES, help="comma-separated columns")
    parser.add_argument("--trees", type=int, default=60)
    parser.add_argument("--depth", type=int, default=3)
    args = parser.parse_args(argv)
    return train(args.data, name=args.name, features=tuple(args.features.split(",")),
                 n_estimators=args.trees, max_depth=args.depth, client=client)


if __name__ == "__main__":
    run_id, version = main()
    print(f"run {run_id} registered {version.ref}")
'''

POLICY_YAML = f"""\
policy: churn
stages:
  staging:
    gates:
      - metric: val_auc >= {GATE:.2f}
      - signature: required
      - smoke_test: true
  production:
    from: [staging]
    gates:
      - metric: val_auc >= {GATE:.2f}
      - smoke_test: true
retention:
  archived: 30d
"""

GITIGNORE = "/.syllabus/\n/data/\n"


# -- data ------------------------------------------------------------------------------


def _customers() -> dict[str, np.ndarray[Any, Any]]:
    """Every customer of both versions: the first V1_ROWS are version 1's; the newer ones
    pay more. ``support_calls`` drives churn in both, but only version 2 records it."""
    rng = np.random.default_rng(SEED)
    n = V1_ROWS + NEW_ROWS
    tenure = rng.integers(1, 73, n)
    contract = rng.choice(np.array([1, 12, 24]), n, p=[0.55, 0.25, 0.2])
    charges = np.clip(rng.normal(65, 20, n), 18, 120)
    charges[V1_ROWS:] = np.clip(rng.normal(78, 20, NEW_ROWS), 18, 130)  # a price rise
    calls = rng.poisson(1.5, n)
    region = rng.choice(np.array(["north", "south", "east", "west"]), n, p=[0.3, 0.3, 0.2, 0.2])
    logit = (
        -1.6 + 1.3 * (contract == 1) - 0.04 * tenure + 0.025 * (charges - 65) + 1.1 * (calls - 1.5)
    )
    churned = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    return {
        "customer_id": np.arange(1, n + 1),
        "region": region,
        "tenure_months": tenure,
        "contract_months": contract,
        "monthly_charges": np.round(charges, 2),
        "support_calls": calls,
        "churned": churned,
    }


def _write_csv(path: Path, columns: Mapping[str, np.ndarray[Any, Any]], rows: int) -> None:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.table({name: values[:rows] for name, values in columns.items()})
    pacsv.write_csv(table, path)


def _num(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"


def _pct(a: object, b: object) -> str:
    if isinstance(a, int | float) and isinstance(b, int | float) and a:
        return f" ({(b - a) / abs(a):+.1%})"
    return ""


# -- code ------------------------------------------------------------------------------


# -- the demo --------------------------------------------------------------------------


def run_churn_story(
    folder: Path, *, progress: Callable[[int, int | None], None] | None = None
) -> Iterator[DemoStep]:
    """Run the demo in ``folder`` (created; must be empty), yielding each step as it ends.

    Raises InvalidArgumentError, before anything is written, when ``folder`` is not empty.
    """
    folder = folder.expanduser().resolve()
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise InvalidArgumentError(f"the demo needs an empty folder; {folder} is not empty")
    return _steps(folder, progress or (lambda _done, _total: None))


def _steps(folder: Path, progress: Callable[[int, int | None], None]) -> Iterator[DemoStep]:
    folder.mkdir(parents=True, exist_ok=True)
    tick = time.perf_counter()

    def step(title: str, **facts: object) -> DemoStep:
        nonlocal tick
        now = time.perf_counter()
        out = DemoStep(title, facts, now - tick)
        tick = now
        return out

    ws = init_workspace(folder)
    # Everything in this folder: explicit database and blobs beat SYLLABUS_URI/_BLOBS.
    client = Client(ws, blobs=ws / BLOBS_DIR, cwd=folder)
    try:
        revision = client.open()
        (folder / "train.py").write_text(TRAIN_PY)
        (folder / "policy.yaml").write_text(POLICY_YAML)
        (folder / ".gitignore").write_text(GITIGNORE)
        commit = _git_commit(folder, ["train.py", "policy.yaml", ".gitignore"])
        yield step(
            "Created a workspace and a project",
            workspace=str(ws),
            schema=revision,
            files="train.py, policy.yaml, .gitignore",
            git=f"commit {commit[:10]}" if commit else "not installed: code is snapshotted",
        )

        yield from _data(client, folder, step, progress)
        runs = yield from _training(client, folder, step)
        yield from _promotion(client, folder, step, runs)
        yield from _search(client, step, runs)
        yield from _maintenance(client, step)
    finally:
        client.close()


Step = Callable[..., DemoStep]


def _data(
    client: Client, folder: Path, step: Step, progress: Callable[[int, int | None], None]
) -> Iterator[DemoStep]:
    customers = _customers()
    csv = folder / "data" / "churn.csv"
    v1_columns = {k: v for k, v in customers.items() if k != "support_calls"}
    _write_csv(csv, v1_columns, V1_ROWS)
    before = client.blobs.du().total.stored_bytes
    first = client.add_dataset(
        "churn", folder / "data", message="CRM export, January", progress=progress
    )
    stored_v1 = client.blobs.du().total.stored_bytes
    profile = client.dataset_profiles(first.version.ref)["churn.csv"]
    churned = profile.column("churned")
    yield step(
        f"Versioned the customer table as {first.version.ref}",
        file="data/churn.csv",
        rows=profile.rows,
        columns=", ".join(f"{c.name} ({c.type})" for c in profile.columns),
        churn_rate=f"{churned.mean:.1%}" if churned and churned.mean is not None else "?",
        stored_bytes=stored_v1 - before,
    )

    _write_csv(csv, customers, V1_ROWS + NEW_ROWS)
    second = client.add_dataset(
        "churn",
        folder / "data",
        message="February: new customers, support calls",
        progress=progress,
    )
    stored_v2 = client.blobs.du().total.stored_bytes
    yield step(
        f"New customers arrive with higher prices and a new column: {second.version.ref}",
        rows=f"+{NEW_ROWS:,} customers",
        new_column="support_calls",
        stored_bytes=stored_v2 - stored_v1,
    )

    diff = client.diff_datasets(first.version.ref, second.version.ref, key=["customer_id"])
    table = next(t for t in diff.tables if t.path == "churn.csv")
    shown = [c for c in table.stats if c.stat in ("mean", "max") and c.column != "customer_id"]
    moved = [f"{c.column} {c.stat} {_num(c.a)} -> {_num(c.b)}{_pct(c.a, c.b)}" for c in shown]
    facts: dict[str, object] = {
        "rows": f"{table.rows_a:,} -> {table.rows_b:,} ({table.rows_delta:+,})",
        "columns_added": ", ".join(f"{c} ({t})" for c, t in table.columns_added) or "none",
        f"statistics_moved ({len(table.stats)} in all; means and maxima here)": moved,
    }
    if table.rows is not None:
        facts["by customer_id"] = (
            f"{table.rows.added:,} added, {table.rows.removed:,} removed, "
            f"{table.rows.changed:,} changed, {table.rows.unchanged:,} unchanged"
        )
    yield step(f"Diff {first.version.ref} -> {second.version.ref}", **facts)


@dataclass(frozen=True)
class _Trained:
    name: str
    run_id: str
    model_ref: str
    val_auc: float


def _training(
    client: Client, folder: Path, step: Step
) -> Generator[DemoStep, None, list[_Trained]]:
    from syllabus.registry.models import ModelVersion

    script = folder / "train.py"
    main: Callable[..., tuple[str, ModelVersion]] = runpy.run_path(
        str(script), run_name="syllabus_demo_train"
    )["main"]
    out: list[_Trained] = []
    plans = (
        ("baseline", "churn@1", BASE_FEATURES, 40, 2),
        ("challenger", "churn@2", ALL_FEATURES, 80, 3),
    )
    for name, data_ref, features, trees, depth in plans:
        args = [data_ref, "--name", name, "--features", ",".join(features)]
        args += ["--trees", str(trees), "--depth", str(depth)]
        # `python train.py ARGS`, in this process and on the demo's client: the run's
        # code capture records this command line as its entry point, so `syllabus
        # reproduce` can run it again.
        saved_argv = sys.argv
        sys.argv = [str(script), *args]
        try:
            run_id, version = main(args, client=client)
        finally:
            sys.argv = saved_argv
        run = client.get_run(run_id)
        auc = run.metrics["val_auc"].value
        history = client.get_metric_history(run_id, "val_auc")
        inputs = client.list_inputs(run_id)
        signature = version.signature or {}
        columns = [c.get("name") for c in signature.get("inputs", {}).get("columns", [])]
        out.append(_Trained(name, run_id, version.ref, auc))
        yield step(
            f"Trained the {name} on {data_ref} in a tracked run and registered {version.ref}",
            run=f"{run.name} {run_id} ({run.status})",
            params=", ".join(f"{k}={v}" for k, v in sorted(run.params.items()) if k != "data"),
            metrics=f"val_auc {history[0].value:.3f} -> {auc:.3f} over {len(history)} steps, "
            f"train_loss {run.metrics['train_loss'].value:.3f}",
            inputs=", ".join(f"{i.name} as {i.role}" for i in inputs),
            **_code_facts(client, run_id),
            model=f"{version.ref}: {version.flavor} ({version.serialization}), signature "
            + (", ".join(str(c) for c in columns) if columns else "none"),
        )
    return out


def _promotion(
    client: Client, folder: Path, step: Step, runs: Sequence[_Trained]
) -> Iterator[DemoStep]:
    policy = client.apply_policy(folder / "policy.yaml")
    yield step(
        f"Applied promotion policy {policy.name} v{policy.version} from policy.yaml",
        staging=f"val_auc >= {GATE:.2f}, signature required, smoke test",
        production=f"from staging only; val_auc >= {GATE:.2f}, smoke test",
    )

    best, weaker = sorted(runs, key=lambda t: t.val_auc, reverse=True)[:2]
    for stage in ("staging", "production"):
        result = client.transition_stage(best.model_ref, stage, comment=f"{best.name} passes")
        facts: dict[str, object] = {"gates": [g.describe() for g in result.gates]}
        if result.archived:
            facts["archived"] = ", ".join(v.ref for v in result.archived)
        yield step(f"Promoted {best.model_ref} ({best.name}) to {stage}", **facts)
    name = best.model_ref.split("@")[0]
    client.set_model_alias(name, "champion", int(best.model_ref.split("@")[1]))

    try:
        client.transition_stage(
            weaker.model_ref, "staging", comment=f"{weaker.name} asks for staging"
        )
    except PromotionRefusedError as exc:
        failed = [r.describe() for r in exc.results if isinstance(r, GateResult) and not r.passed]
        last = client.model_history(name)[-1]
        yield step(
            f"Refused {weaker.model_ref} ({weaker.name}) for staging, as the policy says",
            failed=failed,
            audit=f"{last.event} recorded for {name}@{last.version} "
            f"under policy {last.policy_name} v{last.policy_version}",
            stage_now=client.get_model_version(weaker.model_ref).stage.value,
        )
    else:  # the data are made so that this cannot happen; say so if it ever does
        yield step(f"{weaker.model_ref} was NOT refused (val_auc {weaker.val_auc:.3f})")

    model = client.load_model(f"{name}@production")
    table = client.dataset("churn@2").to_arrow().slice(V1_ROWS)
    features = [c.name for c in model.signature.inputs.columns] if model.signature else []
    predicted = np.asarray(model.predict({c: table.column(c).to_numpy() for c in features}))
    actual = table.column("churned").to_numpy()
    yield step(
        f"Loaded {name}@production (content verified) and scored the {NEW_ROWS:,} newest customers",
        version=client.get_model_version(f"{name}@champion").ref + " (alias champion)",
        input=f"checked against the signature: {', '.join(features)}",
        predicted_to_churn=int(predicted.sum()),
        churned=int(actual.sum()),
        accuracy=f"{float((predicted == actual).mean()):.1%}",
    )


def _search(client: Client, step: Step, runs: Sequence[_Trained]) -> Iterator[DemoStep]:
    page = client.search_runs("churn", filter=SEARCH, order_by=["metrics.val_auc desc"])
    yield step(
        "Searched runs",
        filter=SEARCH,
        order_by="metrics.val_auc desc",
        found=[
            f"{r.name}: val_auc {r.metrics['val_auc'].value:.3f}, {r.params['data']}" for r in page
        ],
    )

    compared = client.compare_runs([t.run_id for t in runs[:2]])
    a, b = compared.runs
    rows = [f"params.{k}: {va} | {vb}" for k, (va, vb) in compared.params]
    rows += [
        f"metrics.{k}: {va:.3f} | {vb:.3f}"
        for k, (va, vb) in compared.metrics
        if va is not None and vb is not None
    ]
    try:
        code = client.diff_code(a.id, b.id)
        env = client.diff_environments(a.id, b.id)
    except (NotFoundError, InvalidArgumentError):  # capture_code is off
        pass
    else:
        rows.append(f"code: {'differs' if code else 'identical'}")
        rows.append(f"environment: {'differs' if env else 'identical'}")
    yield step(f"Compared {a.name} | {b.name}", differences=rows)


def _maintenance(client: Client, step: Step) -> Iterator[DemoStep]:
    report = client.fsck()
    yield step("fsck", records=report.records_checked, ok=report.ok)

    usage = client.blobs.du()
    yield step(
        "du",
        records=usage.total.count,
        stored_bytes=usage.total.stored_bytes,
        content_bytes=usage.total.logical_bytes,
    )

    dry = client.gc(dry_run=True, grace_seconds=0)
    yield step(
        "gc (dry run)",
        unreferenced=dry.blobs.count,
        note="every blob belongs to a dataset version, a run, a model or a code snapshot"
        if dry.blobs.count == 0
        else "these blobs belong to nothing and `syllabus store gc --yes` would free them",
    )
