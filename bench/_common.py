"""Helpers every benchmark script shares: timing hygiene, summaries, JSON, test data."""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
from dataclasses import asdict
from pathlib import Path
from typing import Any

REPO_DIR = Path(__file__).resolve().parent.parent
MiB = 1 << 20

__all__ = ["MiB", "git_describe", "jsonable", "span", "sync", "write_json", "write_random"]


def sync() -> None:
    """Flush dirty pages (untimed, before every timed step) so no tool pays for another."""
    os.sync()


def git_describe() -> str:
    """The commit the benchmark ran on (``--dirty`` when the tree has changes)."""
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO_DIR), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except OSError:
        out = ""
    return out or "unknown"


def span(values: list[float]) -> dict[str, float] | None:
    """Median, min and max of the values that were measured (None entries skipped)."""
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def jsonable(value: Any) -> Any:
    """Dataclasses, named tuples, mappings and sequences as plain JSON values."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if hasattr(value, "__dataclass_fields__"):
        return jsonable(asdict(value))
    if hasattr(value, "_asdict"):
        return jsonable(value._asdict())
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [jsonable(v) for v in value]
    return repr(value)


def write_json(path: str | Path, doc: dict[str, Any]) -> None:
    """Write a benchmark's full record (config, environment, method, every repetition)."""
    Path(path).write_text(json.dumps(jsonable(doc), indent=2) + "\n")


def write_random(path: Path, nbytes: int, rng: random.Random) -> None:
    """``nbytes`` of seeded random (incompressible) data, written in 16 MiB pieces."""
    with path.open("wb") as f:
        left = nbytes
        while left:
            n = min(16 * MiB, left)
            f.write(rng.randbytes(n))
            left -= n
