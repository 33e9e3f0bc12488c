"""Flavors: how each kind of model is saved to files, loaded back and asked to predict.

Detection tries the flavors in :data:`FLAVORS` order and takes the first that matches;
a flavor whose library is not installed never matches (and naming it explicitly raises
a ConfigError saying what to install). Non-pickle formats are used where they exist
(XGBoost JSON, LightGBM text, ONNX, skops); the generic ``python`` flavor and the
scikit-learn flavor without skops use pickle, which is *unsafe*: its bytes pass through
the loader's guard (see :mod:`syllabus.registry.packaging.model`).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
import json
import pickle
import sys
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from syllabus.errors import ConfigError, InvalidArgumentError, UnsafeLoadError
from syllabus.registry.packaging.signature import Columns

__all__ = ["FLAVORS", "Flavor", "Guard", "Saved", "detect_flavor", "get_flavor", "model_features"]

Guard = Callable[[str], bytes]
"""``guard(relative_path)``: the bytes of an unsafe file, only if its content id is trusted
(raises UnsafeLoadError otherwise)."""

_SAFE_SKOPS_MODULES = ("sklearn.", "numpy.", "scipy.", "builtins.", "collections.")


@dataclass(frozen=True, slots=True)
class Saved:
    """What a flavor wrote: the main file, its serialization, whether loading it can run
    code, and flavor-specific facts for loading (JSON-able)."""

    path: str
    serialization: str
    unsafe: bool
    extra: dict[str, Any] = field(default_factory=dict)


class Flavor(Protocol):
    """A kind of model. ``packages`` are the distributions its requirements name."""

    name: str
    module: str  # the import that must succeed for the flavor to work
    packages: tuple[str, ...]

    def matches(self, model: Any) -> bool: ...

    def save(self, model: Any, folder: Path, options: Mapping[str, Any]) -> Saved: ...

    def load(self, folder: Path, saved: Saved, guard: Guard) -> Any: ...

    def predict(self, raw: Any, data: Any, saved: Saved) -> Any: ...


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _module_of(model: Any) -> str:
    return type(model).__module__ or ""


def model_features(raw: Any, data: Any) -> Any:
    """Checked columns as a DataFrame when the model was fit on named features (and pandas
    is there), else as a 2-D array; anything else as given."""
    if isinstance(data, Columns):
        names = getattr(raw, "feature_names_in_", None)
        if names is not None or data.kind == "dataframe":
            try:
                return data.to_frame()
            except ImportError:
                pass
        return data.to_matrix()
    return data


def _no_options(flavor: str, options: Mapping[str, Any]) -> None:
    if options:
        raise InvalidArgumentError(
            f"flavor {flavor!r} takes no flavor options (got {', '.join(sorted(options))})"
        )


def _pickle_loads(data: bytes) -> Any:
    with contextlib.suppress(ImportError):
        import cloudpickle  # type: ignore[import-untyped,unused-ignore]  # noqa: F401
    return pickle.loads(data)  # noqa: S301 - bytes passed the content-id guard first


class SklearnFlavor:
    """scikit-learn estimators and pipelines: skops when installed, else pickle."""

    name = "sklearn"
    module = "sklearn"
    packages: tuple[str, ...] = ("scikit-learn",)

    def matches(self, model: Any) -> bool:
        if not _installed("sklearn"):
            return False
        from sklearn.base import BaseEstimator

        return isinstance(model, BaseEstimator)

    def save(self, model: Any, folder: Path, options: Mapping[str, Any]) -> Saved:
        _no_options(self.name, options)
        cls = f"{type(model).__module__}.{type(model).__qualname__}"
        if _installed("skops"):
            import skops.io as sio  # type: ignore[import-untyped,unused-ignore]

            sio.dump(model, folder / "model.skops")
            return Saved("model.skops", "skops", False, {"class": cls})
        (folder / "model.pkl").write_bytes(pickle.dumps(model, protocol=5))
        return Saved("model.pkl", "pickle", True, {"class": cls})

    def load(self, folder: Path, saved: Saved, guard: Guard) -> Any:
        if saved.serialization == "pickle":
            return _pickle_loads(guard(saved.path))
        if not _installed("skops"):
            raise ConfigError("this model is saved with skops; run `pip install skops`")
        import skops.io as sio  # type: ignore[import-untyped,unused-ignore]

        data = (folder / saved.path).read_bytes()
        untrusted = sio.get_untrusted_types(data=data)
        if any(not t.startswith(_SAFE_SKOPS_MODULES) for t in untrusted):
            data = guard(saved.path)  # types from elsewhere: as unsafe as a pickle
        return sio.loads(data, trusted=untrusted)

    def predict(self, raw: Any, data: Any, saved: Saved) -> Any:
        return raw.predict(model_features(raw, data))


class XGBoostFlavor:
    """XGBoost boosters and their scikit-learn wrappers, saved as XGBoost JSON."""

    name = "xgboost"
    module = "xgboost"
    packages: tuple[str, ...] = ("xgboost",)

    def matches(self, model: Any) -> bool:
        return _module_of(model).startswith("xgboost.")

    def save(self, model: Any, folder: Path, options: Mapping[str, Any]) -> Saved:
        _no_options(self.name, options)
        model.save_model(str(folder / "model.json"))
        return Saved("model.json", "xgboost-json", False, {"class": type(model).__name__})

    def load(self, folder: Path, saved: Saved, guard: Guard) -> Any:
        import xgboost

        cls = str(saved.extra.get("class", "Booster"))
        if cls not in (
            "Booster",
            "XGBClassifier",
            "XGBRegressor",
            "XGBRanker",
            "XGBRFClassifier",
            "XGBRFRegressor",
        ):
            raise InvalidArgumentError(f"xgboost model class {cls!r} is not supported")
        model = getattr(xgboost, cls)()
        model.load_model(str(folder / saved.path))
        return model

    def predict(self, raw: Any, data: Any, saved: Saved) -> Any:
        features = model_features(raw, data)
        if type(raw).__name__ == "Booster":
            import xgboost

            return raw.predict(xgboost.DMatrix(features))
        return raw.predict(features)


class LightGBMFlavor:
    """LightGBM boosters and their scikit-learn wrappers, saved as LightGBM text."""

    name = "lightgbm"
    module = "lightgbm"
    packages: tuple[str, ...] = ("lightgbm",)

    def matches(self, model: Any) -> bool:
        return _module_of(model).startswith("lightgbm.")

    def save(self, model: Any, folder: Path, options: Mapping[str, Any]) -> Saved:
        _no_options(self.name, options)
        booster = getattr(model, "booster_", model)
        booster.save_model(str(folder / "model.txt"))
        extra: dict[str, Any] = {"class": type(model).__name__}
        classes = getattr(model, "classes_", None)
        if classes is not None:
            extra["classes"] = np.asarray(classes).tolist()
        return Saved("model.txt", "lightgbm-text", False, extra)

    def load(self, folder: Path, saved: Saved, guard: Guard) -> Any:
        import lightgbm

        return lightgbm.Booster(model_file=str(folder / saved.path))

    def predict(self, raw: Any, data: Any, saved: Saved) -> Any:
        features = model_features(raw, data)
        out = np.asarray(raw.predict(features))
        classes = saved.extra.get("classes")
        if classes is None:
            return out
        labels = np.asarray(classes)
        if out.ndim == 1:
            return labels[(out > 0.5).astype(int)]
        return labels[np.argmax(out, axis=1)]


class OnnxFlavor:
    """ONNX models (``onnx.ModelProto``), run with onnxruntime."""

    name = "onnx"
    module = "onnx"
    packages: tuple[str, ...] = ("onnx", "onnxruntime")

    def matches(self, model: Any) -> bool:
        return _module_of(model).startswith("onnx") and type(model).__name__ == "ModelProto"

    def save(self, model: Any, folder: Path, options: Mapping[str, Any]) -> Saved:
        _no_options(self.name, options)
        (folder / "model.onnx").write_bytes(model.SerializeToString())
        return Saved("model.onnx", "onnx", False)

    def load(self, folder: Path, saved: Saved, guard: Guard) -> Any:
        if not _installed("onnxruntime"):
            raise ConfigError("ONNX models run with onnxruntime; run `pip install onnxruntime`")
        import onnxruntime  # type: ignore[import-untyped,unused-ignore]

        return onnxruntime.InferenceSession(
            (folder / saved.path).read_bytes(), providers=["CPUExecutionProvider"]
        )

    def predict(self, raw: Any, data: Any, saved: Saved) -> Any:
        inputs = raw.get_inputs()
        if isinstance(data, Columns):
            names = [i.name for i in inputs]
            if len(inputs) > 1 and all(n in data.data for n in names):
                feed = {n: data.data[n].reshape(-1, 1) for n in names}
            else:
                feed = {inputs[0].name: data.to_matrix().astype(np.float32)}
        else:
            arr = np.asarray(data)
            if "float" in inputs[0].type and arr.dtype != np.float32:
                arr = arr.astype(np.float32)
            feed = {inputs[0].name: arr}
        return raw.run(None, feed)[0]


class PyTorchFlavor:
    """PyTorch modules; needs ``syllabus[torch]``.

    Two formats, chosen by the ``format`` flavor option (default ``auto``):

    ``torchscript``
        the scripted module (``torch.jit.script``); loads without the model's Python
        class, but like a pickle it can run code, so it passes the content-id guard.
    ``state_dict``
        the weights (``torch.save`` of the state dict, loaded back with
        ``weights_only=True``, so no code runs) plus a reference to the module's class,
        which must be importable where the model is loaded, and the keyword arguments
        that construct it (the ``init_kwargs`` option, JSON-able).

    ``auto`` takes the state dict when the class is importable and ``init_kwargs`` (default
    none) rebuild a module that takes the weights, else TorchScript (deprecated by PyTorch,
    but the one form that needs no class).
    """

    name = "pytorch"
    module = "torch"
    packages: tuple[str, ...] = ("torch",)
    _OPTIONS = frozenset({"format", "init_kwargs"})

    def matches(self, model: Any) -> bool:
        torch = sys.modules.get("torch")  # a torch model means torch is imported already
        return torch is not None and isinstance(model, torch.nn.Module)

    def save(self, model: Any, folder: Path, options: Mapping[str, Any]) -> Saved:
        import torch  # type: ignore[import-not-found,unused-ignore]

        unknown = set(options) - self._OPTIONS
        if unknown:
            raise InvalidArgumentError(
                f"unknown pytorch flavor option(s) {', '.join(sorted(unknown))}; "
                f"known: {', '.join(sorted(self._OPTIONS))}"
            )
        fmt = options.get("format", "auto")
        if fmt not in ("auto", "torchscript", "state_dict"):
            raise InvalidArgumentError(
                f"pytorch format must be auto, torchscript or state_dict, not {fmt!r}"
            )
        explicit = fmt == "state_dict" or "init_kwargs" in options
        if explicit or (fmt == "auto" and self._rebuilds(model, options)):
            return self._save_state_dict(model, folder, options.get("init_kwargs") or {})
        try:
            with warnings.catch_warnings():  # TorchScript is deprecated, still the portable form
                warnings.simplefilter("ignore", DeprecationWarning)
                scripted = (
                    model if isinstance(model, torch.jit.ScriptModule) else torch.jit.script(model)
                )
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InvalidArgumentError(
                f"cannot script this {type(model).__name__} with torch.jit.script ({first}); "
                "save it as a state dict: flavor_options={'format': 'state_dict', "
                "'init_kwargs': {...}} with its class importable from a module"
            ) from exc
        buf = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.jit.save(scripted, buf)
        (folder / "model.pt").write_bytes(buf.getvalue())
        return Saved("model.pt", "torchscript", True)

    def _rebuilds(self, model: Any, options: Mapping[str, Any]) -> bool:
        """Whether the state-dict form will load back: the class is importable and
        ``init_kwargs`` construct a module that takes the weights."""
        cls = type(model)
        if cls.__module__ == "__main__" or "<locals>" in cls.__qualname__:
            return False
        try:
            clone = cls(**dict(options.get("init_kwargs") or {}))
            clone.load_state_dict(model.state_dict())
        except Exception:  # noqa: BLE001 - any failure means "cannot rebuild": script instead
            return False
        return True

    def _save_state_dict(self, model: Any, folder: Path, init_kwargs: Any) -> Saved:
        import torch  # type: ignore[import-not-found,unused-ignore]

        cls = type(model)
        if cls.__module__ == "__main__" or "<locals>" in cls.__qualname__:
            raise InvalidArgumentError(
                f"cannot save {cls.__qualname__} as a state dict: its class must be importable "
                "from a module (it is defined in __main__ or inside a function)"
            )
        if not isinstance(init_kwargs, Mapping):
            raise InvalidArgumentError("pytorch init_kwargs must be a mapping of JSON values")
        try:
            kwargs = json.loads(json.dumps(dict(init_kwargs)))
        except (TypeError, ValueError) as exc:
            raise InvalidArgumentError(f"pytorch init_kwargs must be JSON values: {exc}") from exc
        if not self._rebuilds(model, {"init_kwargs": kwargs}):
            raise InvalidArgumentError(
                f"{cls.__qualname__}(**{kwargs!r}) does not rebuild this model (it fails or does "
                "not take its state dict); pass the constructor's arguments as init_kwargs"
            )
        buf = io.BytesIO()
        torch.save(model.state_dict(), buf)
        (folder / "state_dict.pt").write_bytes(buf.getvalue())
        return Saved(
            "state_dict.pt",
            "torch-state-dict",
            False,
            {"class": f"{cls.__module__}:{cls.__qualname__}", "init_kwargs": kwargs},
        )

    def load(self, folder: Path, saved: Saved, guard: Guard) -> Any:
        import torch  # type: ignore[import-not-found,unused-ignore]

        if saved.serialization == "torchscript":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                return torch.jit.load(io.BytesIO(guard(saved.path)))  # type: ignore[no-untyped-call,unused-ignore]
        module_name, _, qualname = str(saved.extra["class"]).partition(":")
        try:
            target: Any = importlib.import_module(module_name)
            for part in qualname.split("."):
                target = getattr(target, part)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(
                f"this PyTorch model needs its class {module_name}.{qualname}, which cannot be "
                f"imported here: {exc}"
            ) from exc
        module = target(**saved.extra.get("init_kwargs", {}))
        try:
            state = torch.load(io.BytesIO((folder / saved.path).read_bytes()), weights_only=True)
        except pickle.UnpicklingError as exc:
            raise UnsafeLoadError(
                f"{saved.path} holds more than tensors (weights-only loading refused it); "
                "it was not written by this flavor"
            ) from exc
        module.load_state_dict(state)
        module.eval()
        return module

    def predict(self, raw: Any, data: Any, saved: Saved) -> Any:
        import torch  # type: ignore[import-not-found,unused-ignore]

        arr = data.to_matrix() if isinstance(data, Columns) else np.asarray(data)
        with torch.no_grad():
            return raw(torch.as_tensor(arr)).numpy()


class PythonFlavor:
    """Any Python object with a ``predict`` method, pickled (cloudpickle when installed)."""

    name = "python"
    module = "pickle"
    packages: tuple[str, ...] = ("cloudpickle",)

    def matches(self, model: Any) -> bool:
        return callable(getattr(model, "predict", None))

    def save(self, model: Any, folder: Path, options: Mapping[str, Any]) -> Saved:
        _no_options(self.name, options)
        cls = f"{type(model).__module__}.{type(model).__qualname__}"
        if _installed("cloudpickle"):
            import cloudpickle  # type: ignore[import-untyped,unused-ignore]

            data = cloudpickle.dumps(model, protocol=5)
            serialization = "cloudpickle"
        else:
            data = pickle.dumps(model, protocol=5)
            serialization = "pickle"
        (folder / "model.pkl").write_bytes(data)
        return Saved("model.pkl", serialization, True, {"class": cls})

    def load(self, folder: Path, saved: Saved, guard: Guard) -> Any:
        return _pickle_loads(guard(saved.path))

    def predict(self, raw: Any, data: Any, saved: Saved) -> Any:
        if isinstance(data, Columns):
            data = data.to_original()
        return raw.predict(data)


FLAVORS: tuple[Flavor, ...] = (
    XGBoostFlavor(),
    LightGBMFlavor(),
    OnnxFlavor(),
    PyTorchFlavor(),
    SklearnFlavor(),
    PythonFlavor(),
)
_BY_NAME = {f.name: f for f in FLAVORS}


def get_flavor(name: str) -> Flavor:
    """The flavor called ``name``; ConfigError when its library is not installed."""
    flavor = _BY_NAME.get(name)
    if flavor is None:
        raise InvalidArgumentError(f"unknown flavor {name!r}; known: {', '.join(_BY_NAME)}")
    if not _installed(flavor.module):
        raise ConfigError(
            f"flavor {name!r} needs the {flavor.packages[0]} package; "
            f"run `pip install {flavor.packages[0]}`"
        )
    return flavor


def detect_flavor(model: Any) -> Flavor:
    """The first flavor that recognises ``model``; InvalidArgumentError when none does."""
    for flavor in FLAVORS:
        if flavor.matches(model):
            return flavor
    raise InvalidArgumentError(
        f"cannot package a {type(model).__name__}: it is no scikit-learn, XGBoost, LightGBM, "
        "ONNX or PyTorch model and has no predict method"
    )


def library_version(module: str) -> str | None:
    """The installed version of an imported library, when it says."""
    try:
        mod = importlib.import_module(module)
    except ImportError:
        return None
    version = getattr(mod, "__version__", None)
    return str(version) if version is not None else None
