"""Capturing the Python environment: interpreter, platform, distributions, GPUs and
allow-listed environment variables, as one canonical JSON record.

The expensive parts (listing distributions, asking ``nvidia-smi``) run once per process
and are cached; ``nvidia-smi`` only runs when it is on ``PATH``. Environment variables are
read by allow-list only, and a name that looks like a secret (``*TOKEN*``, ``*SECRET*``,
``*PASSWORD*``, ``*KEY*``, ``*CREDENTIAL*``) is never read even when allow-listed.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from importlib import metadata as importlib_metadata
from typing import Any

__all__ = [
    "capture_environment",
    "environment_record",
    "installed_packages",
    "is_secret_name",
    "normalize_name",
]

_NORMALIZE = re.compile(r"[-_.]+")
_SECRET = re.compile(r"TOKEN|SECRET|PASSW|PWD|KEY|CREDENTIAL|AUTH|COOKIE|SESSION", re.I)
_lock = threading.Lock()
_static: dict[str, Any] | None = None


def normalize_name(name: str) -> str:
    """A distribution name normalized as in PEP 503 (``Scikit_Learn`` -> ``scikit-learn``)."""
    return _NORMALIZE.sub("-", name).lower()


def is_secret_name(name: str) -> bool:
    """True for environment variable names that may hold secrets."""
    return _SECRET.search(name) is not None


def installed_packages() -> dict[str, str]:
    """``{normalized name: version}`` of every installed distribution, sorted by name.

    The version is read from a ``name-version.dist-info`` folder name when it has one
    (fast), else from the distribution's metadata.
    """
    out: dict[str, str] = {}
    for dist in importlib_metadata.distributions():
        path = getattr(dist, "_path", None)
        stem = getattr(path, "name", "")
        base = stem[: -len(".dist-info")] if stem.endswith(".dist-info") else ""
        if base.count("-") == 1:
            name, version = base.split("-")
        else:
            name = dist.metadata["Name"] or stem
            version = dist.version
        if name:
            out.setdefault(normalize_name(name), version)
    return dict(sorted(out.items()))


def _gpus() -> tuple[list[str], str | None]:
    """GPU descriptions and the driver's CUDA version, from ``nvidia-smi`` when present."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return [], None
    try:
        proc = subprocess.run(  # noqa: S603 - fixed executable found on PATH
            [exe, "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        header = subprocess.run(  # noqa: S603
            [exe], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return [], None
    gpus = [line.strip() for line in proc.stdout.splitlines() if line.strip()]
    match = re.search(r"CUDA Version:\s*([0-9.]+)", header.stdout)
    return gpus, match.group(1) if match else None


def _static_part() -> dict[str, Any]:
    global _static  # noqa: PLW0603 - the per-process cache of what cannot change
    with _lock:
        if _static is None:
            gpus, cuda = _gpus()
            _static = {
                "python": platform.python_version(),
                "implementation": platform.python_implementation(),
                "platform": platform.platform(),
                "machine": platform.machine(),
                "virtualenv": sys.prefix != sys.base_prefix,
                "packages": installed_packages(),
                "gpus": gpus,
                "cuda": cuda,
            }
        return _static


def clear_cache() -> None:
    """Forget the cached environment (after installing packages in this process)."""
    global _static  # noqa: PLW0603
    with _lock:
        _static = None


def environment_record(
    allow: Sequence[str], environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The environment as a JSON-able dict (format 1)."""
    env = os.environ if environ is None else environ
    variables = {
        name: env[name] for name in sorted(set(allow)) if name in env and not is_secret_name(name)
    }
    return {"format": 1, **_static_part(), "variables": variables}


def capture_environment(
    allow: Sequence[str], environ: Mapping[str, str] | None = None
) -> tuple[dict[str, Any], bytes]:
    """The environment record and its canonical bytes (sorted keys, compact, UTF-8)."""
    record = environment_record(allow, environ)
    return record, canonical_json(record)


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8: equal values give equal bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )
