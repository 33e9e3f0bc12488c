"""Module-level model functions over the default client (re-exported from :mod:`syllabus`).

::

    import syllabus

    with syllabus.start_run(experiment="churn"):
        syllabus.log_metric("val_auc", 0.91)
        syllabus.log_model(model, input_example=X.head(5), registered_name="churn")

    model = syllabus.load_model("churn@production")
    model.predict(X)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from syllabus.errors import InvalidArgumentError

if TYPE_CHECKING:
    from syllabus.evaluation.models import Evaluation
    from syllabus.registry.models import ModelVersion
    from syllabus.registry.packaging import LoadedModel, ModelInfo, Signature

__all__ = ["evaluate", "load_model", "log_model", "register_model"]


def log_model(
    model: Any,
    artifact_path: str = "model",
    *,
    signature: Signature | str | None = "infer",
    input_example: Any = None,
    requirements: Sequence[str] = (),
    flavor: str | None = None,
    registered_name: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    flavor_options: Mapping[str, Any] | None = None,
) -> ModelInfo:
    """Save ``model`` (flavor detected) into the active run's artifacts under
    ``artifact_path``, with its signature inferred from ``input_example`` and its
    requirements; with ``registered_name`` also register it as a new version.
    ``flavor_options`` are the flavor's own choices (PyTorch: ``format``, ``init_kwargs``)."""
    from syllabus.fluent import active_run

    run = active_run()
    if run is None:
        raise InvalidArgumentError(
            "no active run; call syllabus.start_run() first (or use Client().log_model)"
        )
    info, _ = run.client.log_model(
        run.id,
        model,
        artifact_path,
        signature=signature,
        input_example=input_example,
        requirements=requirements,
        flavor=flavor,
        registered_name=registered_name,
        metadata=metadata,
        flavor_options=flavor_options,
    )
    return info


def register_model(source: str | Path, name: str, **kwargs: Any) -> ModelVersion:
    """Register ``run:<run id>[/<path>]`` or a model folder as a new version of ``name``."""
    from syllabus.fluent import get_client

    return get_client().register_model(source, name, **kwargs)


def load_model(ref: str | Path, *, trust: bool = False) -> LoadedModel:
    """A registered version (``churn@production``) or a model folder, ready to predict."""
    from syllabus.fluent import get_client

    return get_client().load_model(ref, trust=trust)


def evaluate(model: str, data: str, target: str, **kwargs: Any) -> Evaluation:
    """Evaluate a model version on a labelled dataset version, optionally ``against`` a
    champion (``churn@production``); stored and returned. See ``Client.evaluate``."""
    from syllabus.fluent import get_client

    return get_client().evaluate(model, data, target, **kwargs)
