"""Models the serving tests register (importable, so the server process can unpickle them)."""

from __future__ import annotations

from typing import Any

import numpy as np


class EveryType:
    """Takes one column of every signature type; predicts a float from all of them."""

    def predict(self, data: dict[str, Any]) -> np.ndarray[Any, Any]:
        for name, dtype in (("i32", np.int32), ("i64", np.int64), ("f32", np.float32)):
            assert data[name].dtype == dtype, (name, data[name].dtype)
        return (
            data["i32"].astype(np.float64)
            + data["i64"]
            + data["f32"]
            + data["f64"]
            + data["flag"].astype(np.float64) * 1000
            + np.array([len(s) for s in data["text"]], dtype=np.float64) * 0.5
        )


def every_type_example() -> dict[str, Any]:
    return {
        "i32": np.array([1, 2], dtype=np.int32),
        "i64": np.array([10, 20], dtype=np.int64),
        "f32": np.array([0.5, 1.5], dtype=np.float32),
        "f64": np.array([0.25, 0.75]),
        "flag": np.array([True, False]),
        "text": np.array(["ab", "cde"], dtype=object),
    }
