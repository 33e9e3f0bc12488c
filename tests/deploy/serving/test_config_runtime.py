"""ServingConfig round-trips and refuses typos; ServedModel answers like the model."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from syllabus.deploy.serving import ResolvedModel, ServedModel, ServingConfig
from syllabus.deploy.serving.codec import Batch, RequestError, decode_csv, decode_json_payload
from syllabus.errors import ConfigError
from syllabus.registry.packaging import infer_signature
from syllabus.registry.packaging.flavors import Saved, get_flavor
from syllabus.registry.packaging.model import LoadedModel, ModelInfo

FULL = {
    "service": "churn", "revision": 3, "env": "staging", "host": "0.0.0.0", "port": 9000,
    "workers": 2, "reuse_port": True,
    "models": {"primary": "churn@3", "canary": {"model": "churn@4", "percent": 12.5},
               "shadow": {"model": "churn@5"}},
    "log": {"enabled": False, "path": "/var/log/p", "flush_rows": 50, "flush_seconds": 0.5},
    "uri": "postgresql://db/x", "blobs": "s3://b/p", "ready_file": "/run/ready.json",
    "max_body": 4096,
}  # fmt: skip


def test_config_round_trips_and_defaults() -> None:
    config = ServingConfig.from_dict(FULL)
    assert config.to_dict() == FULL
    assert ServingConfig.from_json(config.to_json()) == config
    minimal = ServingConfig.from_dict({"service": "s", "models": {"primary": "m@1"}})
    assert minimal.port == 8080
    assert minimal.log.enabled
    assert minimal.models.canary is None
    assert ServingConfig.for_model("churn@production").service == "churn"


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"prot": 1}, "unknown key config.prot"),
        ({"port": 70000}, "port must be"),
        ({"workers": 0}, "workers must be"),
        ({"service": "../x"}, "service"),
        ({"models": {"primary": ""}}, "models.primary"),
        ({"models": {"primary": "a@1", "canary": {"model": "a@2", "percent": 120}}}, "percent"),
        ({"models": {"primary": "a@1", "shadow": {"model": "a@2", "percent": 1}}}, "unknown key"),
        ({"log": {"flush_rows": 0}}, "flush_rows"),
        ({"reuse_port": "yes"}, "reuse_port"),
    ],
)
def test_config_refuses_bad_values(change: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        ServingConfig.from_dict({**FULL, **change})
    with pytest.raises(ConfigError, match="not valid JSON"):
        ServingConfig.from_json("{")


def _served(model: Any, example: dict[str, Any]) -> ServedModel:
    flavor = get_flavor("sklearn")
    info = ModelInfo("sklearn", Saved("model.skops", "skops", False), infer_signature(example),
                     None, (), "", "", 0)  # fmt: skip
    loaded = LoadedModel(None, info, flavor, model)  # type: ignore[arg-type]
    return ServedModel("m@1", "primary", ResolvedModel("m", 1, loaded))


@pytest.mark.parametrize("kind", ["logistic3", "forest", "nb", "threshold"])
def test_served_predictions_equal_the_models_own(kind: str) -> None:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import FixedThresholdClassifier
    from sklearn.naive_bayes import GaussianNB
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 3))
    y = np.digitize(x[:, 0] + rng.normal(scale=0.5, size=300), [-0.5, 0.5])  # three classes
    if kind == "threshold":
        y = (y > 0).astype(int)  # two classes: "lo" and "mid"
    model = {
        "logistic3": make_pipeline(StandardScaler(), LogisticRegression()),
        "forest": RandomForestClassifier(n_estimators=10, random_state=0),
        "nb": GaussianNB(),
        # predict is not argmax(predict_proba): the model's own rule must be kept
        "threshold": FixedThresholdClassifier(LogisticRegression(), threshold=0.8),
    }[kind].fit(x, np.array(["lo", "mid", "hi"])[y])
    columns = {f"c{i}": x[:, i] for i in range(3)}
    served = _served(model, columns)
    got = served.predict(Batch(300, columns=columns))
    assert got.prediction.tolist() == model.predict(x).tolist()
    assert got.score is not None
    proba = model.predict_proba(x)
    if kind == "threshold":
        assert (got.prediction != model.classes_[np.argmax(proba, axis=1)]).any()
        assert np.allclose(got.score, proba[:, 1])  # two classes: the positive class's
        return
    index = np.searchsorted(model.classes_, got.prediction)
    assert np.allclose(got.score, proba[np.arange(300), index])


def test_codec_forms_agree() -> None:
    from syllabus.registry.packaging import Schema
    from syllabus.registry.packaging.signature import ColSpec

    schema = Schema("columns", columns=(ColSpec("a", "int64"), ColSpec("b", "string"),
                                        ColSpec("t", "datetime64")))  # fmt: skip
    records = decode_json_payload(schema, [{"a": 1, "b": "x", "t": "2026-01-02"}])
    columns = decode_json_payload(schema, {"a": [1], "b": ["x"], "t": ["2026-01-02"]})
    rows = decode_json_payload(schema, [[1, "x", "2026-01-02"]])
    csv = decode_csv(schema, b"t,b,a\n2026-01-02,x,1\n")
    for batch in (records, columns, rows, csv):
        assert batch.columns is not None
        assert batch.columns["a"].dtype == np.int64
        assert batch.columns["b"].tolist() == ["x"]
        assert batch.columns["t"].dtype.kind == "M"
    with pytest.raises(RequestError, match="a expects int64, got numbers with fractions"):
        decode_json_payload(schema, [{"a": 1.5, "b": "x", "t": "2026-01-02"}])
    with pytest.raises(RequestError, match="not dates"):
        decode_json_payload(schema, [{"a": 1, "b": "x", "t": "soon"}])
