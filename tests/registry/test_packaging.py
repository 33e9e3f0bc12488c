"""Model folders: every installed flavor round-trips with its signature enforced; pickle
files load only when their content id is trusted."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from syllabus.blobs.digest import hash_bytes
from syllabus.errors import ConfigError, InvalidArgumentError, UnsafeLoadError
from syllabus.registry.packaging import load_model_folder, read_info, save_model
from syllabus.registry.packaging.flavors import get_flavor

pd = pytest.importorskip("pandas")


def _data() -> tuple[Any, np.ndarray[Any, Any]]:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {"age": rng.uniform(18, 80, 60), "visits": rng.integers(0, 20, 60).astype(np.int64)}
    )
    y = (frame["age"] > 45).astype(int).to_numpy()
    return frame, y


class Doubler:
    """A plain Python model."""

    def predict(self, data: Any) -> list[float]:
        return [2 * float(v) for v in data["x"]]


def test_sklearn_pipeline_round_trip_with_dataframe_signature(tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    frame, y = _data()
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(frame, y)
    info = save_model(model, tmp_path / "m", input_example=frame.head(5))
    assert info.flavor == "sklearn"
    assert info.saved.serialization == "skops"
    assert not info.unsafe
    assert info.signature is not None
    assert info.signature.inputs.describe() == "age: float64, visits: int64"
    assert info.signature.outputs is not None
    assert any(r.startswith("scikit-learn==") for r in info.requirements)
    loaded = load_model_folder(tmp_path / "m")
    assert list(loaded.predict(frame.head(8))) == list(model.predict(frame.head(8)))
    # dict of columns and records are accepted and converted; ints widen to float
    assert list(loaded.predict({"age": [70, 20], "visits": [1, 2]})) == [1, 0]
    assert list(loaded.predict([{"age": 70.0, "visits": 1}])) == [1]
    with pytest.raises(InvalidArgumentError, match=r"missing column 'visits' \(expected int64\)"):
        loaded.predict({"age": [1.0]})
    with pytest.raises(InvalidArgumentError, match="column 'age' expects float64, got string"):
        loaded.predict({"age": ["old"], "visits": [1]})
    with pytest.raises(InvalidArgumentError, match="column 'visits' expects int64"):
        loaded.predict({"age": [30.0], "visits": [1.5]})
    assert read_info(tmp_path / "m").requirements == info.requirements


def test_numpy_tensor_signature(tmp_path: Path) -> None:
    from sklearn.linear_model import LinearRegression

    x = np.arange(20, dtype=np.float64).reshape(10, 2)
    model = LinearRegression().fit(x, x.sum(axis=1))
    info = save_model(model, tmp_path / "m", input_example=x[:3])
    assert info.signature is not None
    assert info.signature.inputs.describe() == "float64[-1, 2]"
    loaded = load_model_folder(tmp_path / "m")
    assert np.allclose(loaded.predict(x[:2]), [1.0, 5.0])
    with pytest.raises(InvalidArgumentError, match="dimension 1 expects size 2, got 3"):
        loaded.predict(np.zeros((1, 3)))
    assert np.allclose(loaded.predict(loaded.input_example), model.predict(x[:3]))


def test_python_model_is_pickled_and_guarded(tmp_path: Path) -> None:
    info = save_model(Doubler(), tmp_path / "m", input_example={"x": [1.0, 2.0]})
    assert info.flavor == "python"
    assert info.unsafe
    with pytest.raises(UnsafeLoadError, match="matches no registered model version"):
        load_model_folder(tmp_path / "m")
    assert load_model_folder(tmp_path / "m", trust=True).predict({"x": [3]}) == [6.0]
    digest = str(hash_bytes((tmp_path / "m" / "model.pkl").read_bytes()))
    loaded = load_model_folder(tmp_path / "m", trusted=lambda path, d: d == digest)
    assert loaded.predict({"x": [1.5]}) == [3.0]
    # tampered bytes: a different content id, refused even though the folder looks the same
    evil = pickle.dumps(Doubler()) + b"tampered"
    (tmp_path / "m" / "model.pkl").write_bytes(evil)
    with pytest.raises(UnsafeLoadError):
        load_model_folder(tmp_path / "m", trusted=lambda path, d: d == digest)


def test_sklearn_without_skops_uses_guarded_pickle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sklearn.tree import DecisionTreeClassifier

    from syllabus.registry.packaging import flavors

    real = flavors._installed
    monkeypatch.setattr(flavors, "_installed", lambda m: m != "skops" and real(m))
    x = np.array([[0.0], [1.0], [2.0], [3.0]])
    model = DecisionTreeClassifier().fit(x, [0, 0, 1, 1])
    info = save_model(model, tmp_path / "m", input_example=x)
    assert (info.saved.serialization, info.unsafe) == ("pickle", True)
    with pytest.raises(UnsafeLoadError):
        load_model_folder(tmp_path / "m")
    assert list(load_model_folder(tmp_path / "m", trust=True).predict(x)) == [0, 0, 1, 1]


def test_xgboost_round_trip(tmp_path: Path) -> None:
    xgb = pytest.importorskip("xgboost")
    frame, y = _data()
    model = xgb.XGBClassifier(n_estimators=5, max_depth=2).fit(frame, y)
    info = save_model(model, tmp_path / "m", input_example=frame.head(3))
    assert (info.flavor, info.saved.serialization, info.unsafe) == (
        "xgboost",
        "xgboost-json",
        False,
    )
    loaded = load_model_folder(tmp_path / "m")
    assert list(loaded.predict(frame.head(10))) == list(model.predict(frame.head(10)))
    with pytest.raises(InvalidArgumentError, match="column 'age'"):
        loaded.predict({"age": ["x"], "visits": [1]})


def test_lightgbm_round_trip(tmp_path: Path) -> None:
    lgb = pytest.importorskip("lightgbm")
    frame, y = _data()
    model = lgb.LGBMClassifier(n_estimators=5, verbose=-1, min_child_samples=2).fit(frame, y)
    info = save_model(model, tmp_path / "m", input_example=frame.head(3))
    assert (info.flavor, info.saved.serialization) == ("lightgbm", "lightgbm-text")
    loaded = load_model_folder(tmp_path / "m")
    assert list(loaded.predict(frame.head(10))) == list(model.predict(frame.head(10)))


def test_onnx_round_trip(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    skl2onnx = pytest.importorskip("skl2onnx")
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.linear_model import LinearRegression

    x = np.arange(12, dtype=np.float32).reshape(6, 2)
    sk = LinearRegression().fit(x, x.sum(axis=1))
    proto = skl2onnx.convert_sklearn(sk, initial_types=[("x", FloatTensorType([None, 2]))])
    info = save_model(proto, tmp_path / "m", input_example=x[:2])
    assert (info.flavor, info.unsafe) == ("onnx", False)
    loaded = load_model_folder(tmp_path / "m")
    assert np.allclose(np.ravel(loaded.predict(x[:2])), [1.0, 5.0], atol=1e-4)
    with pytest.raises(InvalidArgumentError, match="expects 2 dimensions"):
        loaded.predict(np.zeros(3, dtype=np.float32))


def test_absent_flavor_library_is_a_clean_error() -> None:
    try:
        import torch  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match="needs the torch package"):
            get_flavor("pytorch")
    with pytest.raises(InvalidArgumentError, match="unknown flavor"):
        get_flavor("keras2")


def test_unpackable_object_and_non_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="has no predict method"):
        save_model(object(), tmp_path / "a")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x").write_text("x")
    with pytest.raises(InvalidArgumentError, match="not empty"):
        save_model(Doubler(), tmp_path / "b")


def test_manifest_is_versioned(tmp_path: Path) -> None:
    save_model(Doubler(), tmp_path / "m")
    doc = json.loads((tmp_path / "m" / "syllabus-model.json").read_text())
    assert doc["format"] == "syllabus-model"
    assert doc["format_version"] == 1
    doc["format_version"] = 99
    (tmp_path / "m" / "syllabus-model.json").write_text(json.dumps(doc))
    with pytest.raises(InvalidArgumentError, match="newer than this Syllabus reads"):
        read_info(tmp_path / "m")


def test_pytorch_torchscript_round_trip(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from tests.registry._torch_nets import TinyNet

    torch.manual_seed(0)
    net = TinyNet(2, 1)
    x = np.array([[1.0, 2.0], [3.0, 4.0], [-1.0, 0.5]], dtype=np.float32)
    info = save_model(
        net, tmp_path / "m", input_example=x, flavor_options={"format": "torchscript"}
    )
    assert (info.flavor, info.saved.serialization, info.unsafe) == ("pytorch", "torchscript", True)
    with pytest.raises(UnsafeLoadError):
        load_model_folder(tmp_path / "m")  # TorchScript runs code: trusted content ids only
    loaded = load_model_folder(tmp_path / "m", trust=True)
    expected = net(torch.as_tensor(x)).detach().numpy()
    assert np.allclose(loaded.predict(x), expected)
    with pytest.raises(InvalidArgumentError, match="expects 2 dimensions"):
        loaded.predict(np.zeros(3, dtype=np.float32))


def test_pytorch_state_dict_round_trip_loads_weights_only(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from tests.registry._torch_nets import DynamicNet

    torch.manual_seed(1)
    net = DynamicNet(3, scale=2.5)
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    options = {"init_kwargs": {"n_in": 3, "scale": 2.5}}
    info = save_model(net, tmp_path / "m", input_example=x, flavor_options=options)
    assert (info.flavor, info.saved.serialization) == ("pytorch", "torch-state-dict")
    assert info.unsafe is False  # weights only: no code runs when it loads
    assert info.saved.extra["class"] == "tests.registry._torch_nets:DynamicNet"
    loaded = load_model_folder(tmp_path / "m")  # no trust needed
    assert np.allclose(loaded.predict(x), net(torch.as_tensor(x)).detach().numpy())


def test_pytorch_state_dict_refuses_code_hidden_in_the_weights(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from tests.registry._torch_nets import TinyNet

    save_model(TinyNet(2, 1), tmp_path / "m", flavor_options={"format": "state_dict"})
    evil = tmp_path / "m" / "state_dict.pt"

    class Payload:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (print, ("pwned",))

    buf = __import__("io").BytesIO()
    torch.save({"linear.weight": Payload()}, buf)
    evil.write_bytes(buf.getvalue())
    with pytest.raises(UnsafeLoadError, match="holds more than tensors"):
        load_model_folder(tmp_path / "m").predict(np.zeros((1, 2), dtype=np.float32))


def test_pytorch_options_are_checked(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from tests.registry._torch_nets import DynamicNet, TinyNet

    with pytest.raises(InvalidArgumentError, match="unknown pytorch flavor option"):
        save_model(TinyNet(), tmp_path / "a", flavor_options={"fromat": "state_dict"})
    with pytest.raises(InvalidArgumentError, match="cannot script"):
        save_model(DynamicNet(), tmp_path / "b", flavor_options={"format": "torchscript"})
    # auto: a class that cannot be rebuilt (missing init_kwargs) and cannot be scripted
    with pytest.raises(InvalidArgumentError, match="cannot script"):
        save_model(DynamicNet(3), tmp_path / "e")
    assert save_model(TinyNet(), tmp_path / "f").saved.serialization == "torch-state-dict"
    with pytest.raises(InvalidArgumentError, match="JSON values"):
        save_model(DynamicNet(), tmp_path / "c", flavor_options={"init_kwargs": {"n": object()}})
    with pytest.raises(InvalidArgumentError, match="does not rebuild"):
        save_model(DynamicNet(3), tmp_path / "g", flavor_options={"init_kwargs": {"n_in": 2}})
    from sklearn.linear_model import LinearRegression

    sk = LinearRegression().fit(np.eye(2), [0.0, 1.0])
    with pytest.raises(InvalidArgumentError, match="takes no flavor options"):
        save_model(sk, tmp_path / "d", flavor_options={"format": "x"})
