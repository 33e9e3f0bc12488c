"""The model folder format (version 1): a manifest, the model's files, an input example
and requirements.

::

    model/
      syllabus-model.json    the manifest (below)
      model.skops            the model, in its flavor's format (model.pkl, model.json ...)
      input_example.json     the example the signature was inferred from (optional)
      requirements.txt       pip requirements to load it

``syllabus-model.json``::

    {"format": "syllabus-model", "format_version": 1,
     "flavor": "sklearn",
     "model": {"path": "model.skops", "serialization": "skops", "unsafe": false,
               "extra": {"class": "sklearn.pipeline.Pipeline"}},
     "signature": {"inputs": {...}, "outputs": {...}} | null,
     "input_example": "input_example.json" | null,
     "requirements": "requirements.txt",
     "python": "3.11.7", "syllabus_version": "0.1.0", "created_at": 1767000000000,
     "metadata": {...}}

A model file is *unsafe* when loading it can run arbitrary code (pickle, cloudpickle,
TorchScript, skops files holding types from outside scikit-learn/numpy/scipy). Such a
file is read once, its BLAKE3 content id checked by the caller's ``trusted`` function
(the registry's record), and only then deserialized from those same bytes; otherwise
:class:`~syllabus.errors.UnsafeLoadError`, unless ``trust=True``.
"""

from __future__ import annotations

import json
import logging
import platform
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any, Final

import numpy as np

from syllabus.errors import InvalidArgumentError, NotFoundError, UnsafeLoadError
from syllabus.registry.packaging.flavors import (
    Flavor,
    Saved,
    detect_flavor,
    get_flavor,
    model_features,
)
from syllabus.registry.packaging.signature import (
    Columns,
    Signature,
    enforce,
    infer_schema,
    infer_signature,
    to_columns,
)

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST_FILE",
    "LoadedModel",
    "ModelInfo",
    "load_model_folder",
    "read_info",
    "save_model",
]

MANIFEST_FILE: Final = "syllabus-model.json"
FORMAT_VERSION: Final = 1
EXAMPLE_FILE: Final = "input_example.json"
REQUIREMENTS_FILE: Final = "requirements.txt"
_MAX_EXAMPLE_ROWS: Final = 100

log = logging.getLogger(__name__)

Trusted = Callable[[str, str], bool]
"""``trusted(relative_path, content_id)``: True when the registry recorded these bytes."""


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """The manifest of a model folder."""

    flavor: str
    saved: Saved
    signature: Signature | None
    input_example: str | None
    requirements: tuple[str, ...]
    python: str
    syllabus_version: str
    created_at: int
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def unsafe(self) -> bool:
        return self.saved.unsafe

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "syllabus-model",
            "format_version": FORMAT_VERSION,
            "flavor": self.flavor,
            "model": {
                "path": self.saved.path,
                "serialization": self.saved.serialization,
                "unsafe": self.saved.unsafe,
                "extra": self.saved.extra,
            },
            "signature": None if self.signature is None else self.signature.to_dict(),
            "input_example": self.input_example,
            "requirements": REQUIREMENTS_FILE,
            "python": self.python,
            "syllabus_version": self.syllabus_version,
            "created_at": self.created_at,
            "metadata": dict(self.metadata),
        }


def _dist_version(name: str) -> str | None:
    try:
        return importlib_metadata.version(name)
    except importlib_metadata.PackageNotFoundError:
        return None


def _requirements(flavor: Flavor, saved: Saved, example: Any, extra: Sequence[str]) -> list[str]:
    names = list(flavor.packages)
    if saved.serialization == "skops":
        names.append("skops")
    if saved.serialization == "pickle" and "cloudpickle" in names:
        names.remove("cloudpickle")
    names.append("numpy")
    if type(example).__name__ == "DataFrame":
        names.append("pandas")
    out: list[str] = []
    for name in dict.fromkeys(names):
        version = _dist_version(name)
        if version is not None:
            out.append(f"{name}=={version}")
    out.extend(r for r in extra if r not in out)
    return out


def _example_to_json(example: Any) -> dict[str, Any]:
    cols = to_columns(example)
    if cols is not None:
        data = {
            name: [_jsonable(v) for v in arr[:_MAX_EXAMPLE_ROWS].tolist()]
            for name, arr in cols.data.items()
        }
        return {"kind": cols.kind, "columns": data}
    arr = np.asarray(example)[:_MAX_EXAMPLE_ROWS]
    return {"kind": "ndarray", "dtype": str(arr.dtype), "data": arr.tolist()}


def _jsonable(value: Any) -> Any:
    if isinstance(value, float | int | str | bool) or value is None:
        return value
    return str(value)


def example_from_json(doc: Mapping[str, Any]) -> Any:
    """The stored input example in its original form (pandas needed for frames)."""
    kind = doc.get("kind")
    if kind == "ndarray":
        return np.asarray(doc["data"], dtype=doc.get("dtype"))
    columns: dict[str, list[Any]] = doc["columns"]
    if kind == "dataframe":
        try:
            import pandas as pd

            return pd.DataFrame(columns)
        except ImportError:
            return columns
    if kind == "records":
        names = list(columns)
        rows = len(next(iter(columns.values()))) if columns else 0
        return [{n: columns[n][i] for n in names} for i in range(rows)]
    return columns


def _syllabus_version() -> str:
    from syllabus import __version__

    return __version__


def save_model(
    model: Any,
    path: str | Path,
    *,
    flavor: str | None = None,
    signature: Signature | str | None = "infer",
    input_example: Any = None,
    requirements: Sequence[str] = (),
    metadata: Mapping[str, Any] | None = None,
    flavor_options: Mapping[str, Any] | None = None,
) -> ModelInfo:
    """Write ``model`` as a model folder at ``path`` (which must not exist or be empty).

    ``flavor_options`` are the flavor's own choices (the PyTorch flavor's ``format`` and
    ``init_kwargs``); a flavor refuses options it does not know.

    ``signature="infer"`` infers it from ``input_example`` (and the model's prediction on
    it, for the outputs); pass a :class:`Signature` or None to set or skip it.
    """
    folder = Path(path)
    if folder.exists() and any(folder.iterdir()):
        raise InvalidArgumentError(f"cannot save a model into {folder}: the folder is not empty")
    chosen = get_flavor(flavor) if flavor else detect_flavor(model)
    folder.mkdir(parents=True, exist_ok=True)
    saved = chosen.save(model, folder, flavor_options or {})
    sig: Signature | None
    if isinstance(signature, Signature) or signature is None:
        sig = signature
    elif signature == "infer":
        sig = None
        if input_example is not None:
            sig = infer_signature(input_example)
            try:
                checked = enforce(sig.inputs, input_example)
                output = chosen.predict(model, checked, saved)
                sig = Signature(sig.inputs, infer_schema(output))
            except Exception as exc:  # noqa: BLE001 - outputs are optional
                log.info("no output signature: predicting the input example failed: %s", exc)
    else:
        raise InvalidArgumentError(
            f"signature must be 'infer', a Signature or None, not {signature!r}"
        )
    example_file = None
    if input_example is not None:
        (folder / EXAMPLE_FILE).write_text(json.dumps(_example_to_json(input_example)))
        example_file = EXAMPLE_FILE
    reqs = _requirements(chosen, saved, input_example, requirements)
    (folder / REQUIREMENTS_FILE).write_text("".join(f"{r}\n" for r in reqs))
    info = ModelInfo(
        flavor=chosen.name,
        saved=saved,
        signature=sig,
        input_example=example_file,
        requirements=tuple(reqs),
        python=platform.python_version(),
        syllabus_version=_syllabus_version(),
        created_at=time.time_ns() // 1_000_000,
        metadata=dict(metadata or {}),
    )
    (folder / MANIFEST_FILE).write_text(json.dumps(info.to_dict(), indent=2) + "\n")
    return info


def parse_info(text: str | bytes, *, source: str = MANIFEST_FILE) -> ModelInfo:
    """A manifest from its JSON text; InvalidArgumentError naming ``source`` when bad."""
    try:
        doc = json.loads(text)
        _check_format(doc)
        model = doc["model"]
        saved = Saved(
            str(model["path"]),
            str(model["serialization"]),
            bool(model["unsafe"]),
            dict(model.get("extra") or {}),
        )
        reqs: tuple[str, ...] = ()
        sig = doc.get("signature")
        return ModelInfo(
            flavor=str(doc["flavor"]),
            saved=saved,
            signature=Signature.from_dict(sig) if sig else None,
            input_example=doc.get("input_example"),
            requirements=reqs,
            python=str(doc.get("python", "")),
            syllabus_version=str(doc.get("syllabus_version", "")),
            created_at=int(doc.get("created_at", 0)),
            metadata=dict(doc.get("metadata") or {}),
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InvalidArgumentError(f"{source} is not a valid model manifest: {exc}") from None


def _check_format(doc: Any) -> None:
    if not isinstance(doc, dict) or doc.get("format") != "syllabus-model":
        raise ValueError("not a syllabus-model manifest")
    if int(doc.get("format_version", 0)) > FORMAT_VERSION:
        raise ValueError(
            f"format version {doc['format_version']} is newer than this Syllabus reads "
            f"({FORMAT_VERSION}); upgrade Syllabus"
        )


def read_info(path: str | Path) -> ModelInfo:
    """The manifest of the model folder at ``path``."""
    manifest = Path(path) / MANIFEST_FILE
    if not manifest.is_file():
        raise NotFoundError(f"{path} is not a model folder (no {MANIFEST_FILE})")
    info = parse_info(manifest.read_bytes(), source=str(manifest))
    req = Path(path) / REQUIREMENTS_FILE
    if req.is_file():
        lines = tuple(x.strip() for x in req.read_text().splitlines() if x.strip())
        info = ModelInfo(**{**_fields(info), "requirements": lines})
    return info


def _fields(info: ModelInfo) -> dict[str, Any]:
    return {name: getattr(info, name) for name in ModelInfo.__slots__}


class LoadedModel:
    """A loaded model with one ``predict`` for every flavor, checking input against the
    signature (errors name the column and the expected type)."""

    def __init__(self, folder: Path, info: ModelInfo, flavor: Flavor, raw: Any) -> None:
        self.folder = folder
        self.info = info
        self.flavor = info.flavor
        self.signature = info.signature
        self.raw = raw
        self._impl = flavor

    def __repr__(self) -> str:
        return f"LoadedModel(flavor={self.flavor!r}, folder={str(self.folder)!r})"

    def predict(self, data: Any) -> Any:
        """Predictions for ``data`` (DataFrame, dict of columns, records or array)."""
        checked = data if self.signature is None else enforce(self.signature.inputs, data)
        return self._impl.predict(self.raw, checked, self.info.saved)

    @property
    def classes(self) -> list[Any] | None:
        """The class labels of a classifier (scikit-learn's ``classes_``), else None."""
        classes = getattr(self.raw, "classes_", None)
        return None if classes is None else list(np.asarray(classes).tolist())

    def predict_proba(self, data: Any) -> Any:
        """Class probabilities (one column per label in :attr:`classes`) when the model
        has a scikit-learn style ``predict_proba``, else None."""
        method = getattr(self.raw, "predict_proba", None)
        if method is None or self.classes is None:
            return None
        checked = data if self.signature is None else enforce(self.signature.inputs, data)
        if isinstance(checked, Columns) and self.flavor == "python":
            return method(checked.to_original())
        return method(model_features(self.raw, checked))

    @property
    def input_example(self) -> Any:
        """The example stored with the model, or None."""
        if self.info.input_example is None:
            return None
        doc = json.loads((self.folder / self.info.input_example).read_text())
        return example_from_json(doc)


def load_model_folder(
    path: str | Path, *, trust: bool = False, trusted: Trusted | None = None
) -> LoadedModel:
    """Load the model folder at ``path``.

    Unsafe files load only when ``trusted(path, content_id)`` says the bytes are the ones
    the registry recorded, or with ``trust=True``; else UnsafeLoadError.
    """
    from syllabus.blobs.digest import hash_bytes

    folder = Path(path)
    info = read_info(folder)
    flavor = get_flavor(info.flavor)

    def guard(rel: str) -> bytes:
        data = (folder / rel).read_bytes()
        if trust:
            return data
        digest = str(hash_bytes(data))
        if trusted is not None and trusted(rel, digest):
            return data
        raise UnsafeLoadError(
            f"refusing to load {folder / rel}: it can run code when loaded and its content id "
            f"{digest[:12]} matches no registered model version; load it through the registry "
            "or pass trust=True if you trust where it came from"
        )

    return LoadedModel(folder, info, flavor, flavor.load(folder, info.saved, guard))
