"""Built-in steps for the continuous-improvement loop: train, evaluate against the champion,
register, promote through the gates, deploy (canary, then full).

They are ordinary steps (usable from Python and, as ``builtin:<name>``, from YAML) that
work through ``ctx.client``, the worker's client on the pipeline's store::

    from syllabus import pipeline
    from syllabus.pipelines import builtin, dataset, on_dataset

    @pipeline(name="churn-loop", triggers=[on_dataset("churn")])
    def loop():
        data = dataset("churn@latest")
        model = builtin.train(data, fit="training:fit", target="label", c=1.0)
        version = builtin.register(model, name="churn")
        verdict = builtin.evaluate(version, data=dataset("holdout@latest"), target="label")
        promoted = builtin.promote(version, evaluation=verdict, stages=["staging", "production"])
        builtin.deploy(promoted, spec="deploy.yaml", env="production", canary_percent=10)

``promote`` goes through the registry's gates: a refused promotion fails the step (so the
pipeline run fails and ``deploy`` is skipped) with every failed criterion in the error.
``deploy`` serves the new version as a canary next to the live one, checks the canary's
health (the deployment's readiness and, when ``monitor`` is given, that the monitor has
no firing alert after ``observe`` seconds), then serves it alone; an unhealthy canary is
rolled back and fails the step.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from syllabus.errors import InvalidArgumentError
from syllabus.pipelines.definition import import_object, step

__all__ = ["deploy", "evaluate", "promote", "register", "train"]


def _ref(model: Any) -> str:
    """A model version argument as text: a ModelVersion, ``{"model": ref}`` or text."""
    if isinstance(model, dict):
        model = model.get("model")
    ref = getattr(model, "ref", model)
    if not isinstance(ref, str) or not ref:
        raise InvalidArgumentError(f"expected a model version, got {model!r:.80}")
    return ref


@step
def train(
    data: Any,
    fit: str,
    target: str | None = None,
    ctx: Any = None,
    **params: Any,
) -> str:
    """Call the user's ``fit`` (``module:function``) with the data as a pandas DataFrame
    (``fit(frame, target=..., **params)``; no ``target`` when None; the other keyword
    arguments are ``params``) and log the model it returns into this step's run. Returns
    ``run:<run id>/model`` (for ``register``)."""
    fn = import_object(fit, root=Path(ctx.client.project_root) if ctx is not None else None)
    fn = getattr(fn, "fn", fn)
    frame = data.to_pandas() if hasattr(data, "to_pandas") else data
    kwargs = dict(params or {})
    if target is not None:
        kwargs["target"] = target
    model = fn(frame, **kwargs)
    if ctx is None:
        raise InvalidArgumentError("builtin train runs inside a pipeline")
    ctx.log_params(dict(params or {}))
    example = None
    if target is not None and hasattr(frame, "drop"):
        example = frame.drop(columns=[target]).head(5)
    ctx.log_model(model, "model", input_example=example)
    return f"run:{ctx.run_id}/model"


@step
def register(model: str, name: str, ctx: Any = None) -> Any:
    """Register the model a ``train`` step logged as a new version of ``name`` (its lineage
    reaches the training run and the dataset version it read)."""
    if ctx is None:
        raise InvalidArgumentError("builtin register runs inside a pipeline")
    version = ctx.client.register_model(model, name)
    ctx.set_tag("syllabus.model_version", version.ref)
    return version


def _champion(client: Any, ref: str, against: str) -> str | None:
    name = ref.split("@", 1)[0]
    target = f"{name}{against}" if against.startswith("@") else against
    try:
        champion = client.get_model_version(target)
    except Exception:  # noqa: BLE001 - no champion yet: evaluate alone
        return None
    return None if champion.ref == ref else str(champion.ref)


@step
def evaluate(
    model: Any,
    data: Any,
    target: str,
    *,
    against: str = "@production",
    resamples: int = 1000,
    ctx: Any = None,
) -> dict[str, Any]:
    """Evaluate the model version on labelled data against the champion (``@production``
    of the same model, or any reference); alone when there is no champion yet."""
    if ctx is None:
        raise InvalidArgumentError("builtin evaluate runs inside a pipeline")
    ref = _ref(model)
    data_ref = getattr(data, "ref", data)
    champion = _champion(ctx.client, ref, against)
    result = ctx.client.evaluate(ref, data_ref, target, against=champion, resamples=resamples)
    verdicts = {c.metric: c.verdict for c in result.comparisons}
    ctx.set_tag("syllabus.evaluation", result.id)
    for m in result.metrics:
        if m.value is not None:
            ctx.log_metric(m.name, m.value)
    return {"model": ref, "evaluation": result.id, "champion": champion, "verdicts": verdicts}


@step
def promote(
    model: Any,
    stages: list[str] | str = "production",
    evaluation: Any = None,
    comment: str | None = None,
    ctx: Any = None,
) -> dict[str, Any]:
    """Move the version through ``stages`` in order, each through its policy's gates (which
    read the stored evaluations); a refused stage fails the step naming every criterion."""
    if ctx is None:
        raise InvalidArgumentError("builtin promote runs inside a pipeline")
    ref = _ref(model)
    path = [stages] if isinstance(stages, str) else list(stages)
    note = comment or f"pipeline run {ctx.pipeline_run_id}"
    if isinstance(evaluation, dict) and evaluation.get("evaluation"):
        note += f" (evaluation {evaluation['evaluation']})"
    reached = None
    for stage in path:
        ctx.client.transition_stage(ref, stage, comment=note)
        reached = stage
    ctx.set_tag("syllabus.promoted", f"{ref} -> {reached}")
    return {"model": ref, "stage": reached}


def _with_traffic(text: str, env: str, primary: str | None, canary: str, percent: float) -> str:
    import yaml

    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise InvalidArgumentError("the deployment spec is not a mapping")
    block = data.setdefault("environments", {}).setdefault(env, {}) or {}
    data["environments"][env] = block
    if primary is None:
        block["model"] = canary
        block["traffic"] = {}
    else:
        block["model"] = primary
        block["traffic"] = {"canary": {"model": canary, "percent": percent}}
    return str(yaml.safe_dump(data, sort_keys=False))


@step
def deploy(
    model: Any,
    spec: str,
    env: str,
    *,
    canary_percent: float = 10.0,
    monitor: str | None = None,
    observe: float = 0.0,
    ctx: Any = None,
) -> dict[str, Any]:
    """Serve the version as a canary beside the live revision, check its health, then
    serve it alone (the first deployment of a service goes straight to full)."""
    if ctx is None:
        raise InvalidArgumentError("builtin deploy runs inside a pipeline")
    client = ctx.client
    ref = _ref(model)
    pinned = str(client.get_model_version(ref).ref)
    path = Path(spec)
    if not path.is_absolute():
        path = Path(client.project_root) / path
    text = path.read_text(encoding="utf-8")
    import yaml

    service = (yaml.safe_load(text) or {}).get("service")
    if not isinstance(service, str):
        raise InvalidArgumentError(f"{spec}: the deployment spec names no service")
    live = None
    try:
        live = client.get_deployment(service, env).live
    except Exception:  # noqa: BLE001 - a first deployment
        live = None
    if live is None:
        revision = client.apply_deployment(_with_traffic(text, env, None, pinned, 0), env)
        ctx.set_tag("syllabus.deployment", f"{service}/{env}#{revision.revision}")
        return {"deployment": service, "env": env, "revision": revision.revision, "model": pinned,
                "canary": False}  # fmt: skip
    canary = client.apply_deployment(
        _with_traffic(text, env, live.model_ref, pinned, canary_percent), env
    )
    ctx.log_param("canary_revision", canary.revision)
    if observe > 0:
        time.sleep(observe)
    problems = _canary_problems(client, service, env, monitor)
    if problems:
        client.rollback_deployment(service, env)
        raise RuntimeError(f"canary of {pinned} unhealthy: {problems}; rolled back")
    full = client.promote_canary(service, env)
    ctx.set_tag("syllabus.deployment", f"{service}/{env}#{full.revision}")
    return {"deployment": service, "env": env, "revision": full.revision, "model": pinned,
            "canary": True, "canary_revision": canary.revision}  # fmt: skip


def _canary_problems(client: Any, service: str, env: str, monitor: str | None) -> str:
    for status in client.deployment_status(service):
        if status.deployment.env == env:
            state = status.health.state
            if state not in ("ready", "running", "rendered"):
                detail = f" ({status.health.detail})" if status.health.detail else ""
                return f"deployment {state}{detail}"
    if monitor is not None:
        client.run_monitor(monitor)
        firing = client.list_alerts(monitor, state="firing")
        if firing:
            return "firing alerts: " + ", ".join(a.rule for a in firing)
    return ""
