"""A loaded model as the server calls it: checked batch in, predictions (and scores) out.

The server does not import the client (a higher layer): whoever starts it passes a
:data:`ModelLoader` that resolves a reference (``churn@production``) to a fixed version and
loads it through the registry, so the pickle guard by content id applies as everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from syllabus.deploy.serving.codec import Batch, RequestError
from syllabus.registry.packaging import LoadedModel, Schema
from syllabus.registry.packaging.flavors import get_flavor, model_features
from syllabus.registry.packaging.signature import Columns

__all__ = ["ModelLoader", "Prediction", "ResolvedModel", "ServedModel"]

# Classifiers whose ``predict`` is ``classes_[argmax(predict_proba)]``: for them one call
# gives both the labels and the scores (half the per-request cost). Models with their own
# decision rule (SVC's Platt scaling, tuned thresholds) are not listed and get both calls.
_PROBA_DECIDES = frozenset(
    {
        "LogisticRegression", "LogisticRegressionCV", "RandomForestClassifier",
        "ExtraTreesClassifier", "DecisionTreeClassifier", "ExtraTreeClassifier",
        "GradientBoostingClassifier", "HistGradientBoostingClassifier",
        "KNeighborsClassifier", "GaussianNB", "MultinomialNB", "BernoulliNB", "ComplementNB",
        "CategoricalNB", "LinearDiscriminantAnalysis", "QuadraticDiscriminantAnalysis",
        "MLPClassifier", "CalibratedClassifierCV",
    }
)  # fmt: skip


def _final_estimator(raw: Any) -> Any:
    steps = getattr(raw, "steps", None)
    if isinstance(steps, list) and steps:
        return _final_estimator(steps[-1][1])
    return raw


@dataclass(frozen=True, slots=True)
class ResolvedModel:
    """A reference resolved to one registered version, and that version loaded."""

    name: str
    version: int
    model: LoadedModel


ModelLoader = Callable[[str], ResolvedModel]
"""``loader("churn@production")`` -> the version the reference names now, loaded."""


@dataclass(frozen=True, slots=True)
class Prediction:
    """Outputs of one batch: ``prediction`` per row and, for classifiers, ``score`` (the
    probability of the predicted class; of the positive class for two classes)."""

    prediction: np.ndarray[Any, Any]
    score: np.ndarray[Any, Any] | None


class ServedModel:
    """One variant (primary, canary, shadow) of a service."""

    def __init__(self, ref: str, variant: str, resolved: ResolvedModel) -> None:
        self.ref = ref
        self.variant = variant
        self.name = resolved.name
        self.version = resolved.version
        self.loaded = resolved.model
        signature = resolved.model.signature
        self.inputs: Schema | None = None if signature is None else signature.inputs
        self.outputs: Schema | None = None if signature is None else signature.outputs
        raw = resolved.model.raw
        self._raw = raw
        self._flavor = get_flavor(resolved.model.flavor)
        self._saved = resolved.model.info.saved
        classes = getattr(raw, "classes_", None)
        self._proba = getattr(raw, "predict_proba", None) if classes is not None else None
        self._classes = None if classes is None else np.asarray(classes)
        self._sklearn = resolved.model.flavor == "sklearn"
        self._proba_decides = (
            self._sklearn
            and self._proba is not None
            and type(_final_estimator(raw)).__name__ in _PROBA_DECIDES
            and self._classes is not None
            and self._classes.ndim == 1
        )

    @property
    def flavor(self) -> str:
        return self.loaded.flavor

    def _features(self, batch: Batch) -> Any:
        if batch.tensor is not None:
            return batch.tensor
        assert batch.columns is not None
        kind = self.inputs.kind if self.inputs is not None else "columns"
        return Columns(kind, batch.columns)

    def predict(self, batch: Batch) -> Prediction:
        """Predictions for a batch decoded against this model's signature."""
        data = self._features(batch)
        if self._proba_decides:
            assert self._proba is not None
            assert self._classes is not None
            proba = np.asarray(self._proba(model_features(self._raw, data)), dtype=np.float64)
            if proba.ndim == 2 and proba.shape == (batch.rows, len(self._classes)):
                best = np.argmax(proba, axis=1)
                prediction = self._classes[best]
                if proba.shape[1] == 2:
                    return Prediction(prediction, proba[:, 1])
                return Prediction(prediction, proba[np.arange(batch.rows), best])
        if self._sklearn:
            features = model_features(self._raw, data)
            prediction = np.asarray(self._raw.predict(features))
        else:
            features = None
            prediction = np.asarray(self._flavor.predict(self._raw, data, self._saved))
        if prediction.ndim == 0 or len(prediction) != batch.rows:
            raise RequestError(
                f"the model returned {prediction.size} predictions for {batch.rows} rows",
                status=500,
            )
        score = None
        if self._proba is not None and self._classes is not None:
            if features is None:
                features = model_features(self._raw, data)
            proba = np.asarray(self._proba(features), dtype=np.float64)
            if proba.ndim == 2 and proba.shape == (batch.rows, len(self._classes)):
                if proba.shape[1] == 2:
                    score = proba[:, 1]
                else:
                    index = np.searchsorted(self._classes, prediction)
                    index = np.clip(index, 0, len(self._classes) - 1)
                    score = proba[np.arange(batch.rows), index]
        return Prediction(prediction, score)
