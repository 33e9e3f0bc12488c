"""scikit-learn autologging: ``syllabus.sklearn.autolog()``.

After ``autolog()``, every ``fit()`` of a scikit-learn estimator logs, into the active run
(or a new run named after the estimator, ended when ``fit`` returns):

- params: ``estimator.get_params(deep=False)`` as text;
- training metrics on the data it was fitted on: ``training_score`` (the estimator's own
  ``score``), and for classifiers ``training_accuracy`` / ``training_f1`` (weighted), for
  regressors ``training_mse`` / ``training_mae`` / ``training_r2``;
- tags ``estimator_class`` and ``estimator_name``;
- the fitted model as the artifact ``model/model.pkl`` (pickle; the registry will load it
  only when its content id matches), unless ``log_models=False``.

Fits nested inside another fit (a Pipeline's steps, a grid search's candidates) are not
logged separately. ``autolog(disable=True)`` restores the original methods.
"""

from __future__ import annotations

import functools
import logging
import pickle
import threading
from collections.abc import Callable
from typing import Any

from syllabus import fluent

__all__ = ["autolog"]

log = logging.getLogger(__name__)

_patched: dict[type, Callable[..., Any]] = {}
_state = threading.local()
_options: dict[str, bool] = {"log_models": True}
_lock = threading.Lock()


def _depth() -> int:
    return int(getattr(_state, "depth", 0))


def _metrics(estimator: Any, x: Any, y: Any) -> dict[str, float]:
    from sklearn import metrics
    from sklearn.base import is_classifier, is_regressor

    out: dict[str, float] = {}
    try:
        out["training_score"] = float(estimator.score(x, y))
        predicted = estimator.predict(x)
        if is_classifier(estimator):
            out["training_accuracy"] = float(metrics.accuracy_score(y, predicted))
            out["training_f1"] = float(metrics.f1_score(y, predicted, average="weighted"))
        elif is_regressor(estimator):
            out["training_mse"] = float(metrics.mean_squared_error(y, predicted))
            out["training_mae"] = float(metrics.mean_absolute_error(y, predicted))
            out["training_r2"] = float(metrics.r2_score(y, predicted))
    except Exception:
        log.debug("syllabus.sklearn: no training metrics for %r", estimator, exc_info=True)
    return out


def _log(estimator: Any, x: Any, y: Any) -> None:
    name = type(estimator).__name__
    params = {k: str(v)[:8000] for k, v in estimator.get_params(deep=False).items()}
    fluent.log_params(params)
    fluent.set_tags(
        {"estimator_class": f"{type(estimator).__module__}.{name}", "estimator_name": name}
    )
    if y is not None:
        values = _metrics(estimator, x, y)
        if values:
            fluent.log_metrics(values)
    if _options["log_models"]:
        run = fluent.active_run()
        assert run is not None
        data = pickle.dumps(estimator, protocol=pickle.HIGHEST_PROTOCOL)
        run.client._tracking().log_bytes(run.id, data, "model/model.pkl")


def _wrap(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        if _depth() > 0:
            return original(self, *args, **kwargs)
        x = args[0] if args else kwargs.get("X")
        y = args[1] if len(args) > 1 else kwargs.get("y")
        _state.depth = 1
        try:
            if fluent.active_run() is not None:
                result = original(self, *args, **kwargs)
                _log(self, x, y)
                return result
            with fluent.start_run(name=type(self).__name__):
                result = original(self, *args, **kwargs)
                _log(self, x, y)
                return result
        finally:
            _state.depth = 0

    fit.__syllabus_original__ = original  # type: ignore[attr-defined]
    return fit


def autolog(*, disable: bool = False, log_models: bool = True) -> None:
    """Log every scikit-learn ``fit()`` (see the module docs); ``disable=True`` undoes it."""
    from sklearn.utils import all_estimators

    with _lock:
        _options["log_models"] = log_models
        if disable:
            for cls, original in _patched.items():
                cls.fit = original  # type: ignore[attr-defined]
            _patched.clear()
            return
        from sklearn.pipeline import Pipeline

        classes = [cls for _, cls in all_estimators()] + [Pipeline]
        for cls in classes:
            # Patch the class that defines fit (often a private base such as BaseForest).
            owner = next((k for k in cls.__mro__ if "fit" in k.__dict__), None)
            if owner is None or owner in _patched or owner is object:
                continue
            original = owner.__dict__["fit"]
            _patched[owner] = original
            owner.fit = _wrap(original)
