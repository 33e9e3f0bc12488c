"""Settings: explicit arguments > ``SYLLABUS_*`` environment > workspace ``config.toml`` > defaults.

Nothing here touches the disk at import time. :func:`find_workspace` walks up from a folder
to the nearest ``.syllabus`` like git; :func:`load_settings` resolves every setting and
remembers where each value came from (``syllabus info`` shows it).

Every setting is declared once in :data:`SETTINGS`; the docs' settings page is checked
against it by a test.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from syllabus.errors import ConfigError

__all__ = [
    "CONFIG_FILE",
    "DB_FILE",
    "SETTINGS",
    "WORKSPACE_DIR",
    "Setting",
    "Settings",
    "find_workspace",
    "load_settings",
    "parse_duration",
    "parse_size",
]

WORKSPACE_DIR = ".syllabus"
CONFIG_FILE = "config.toml"
DB_FILE = "syllabus.db"
BLOBS_DIR = "blobs"

SettingType = Literal["str", "bool", "duration", "size", "int"]
Source = Literal["argument", "environment", "workspace", "default"]


@dataclass(frozen=True, slots=True)
class Setting:
    """One setting: its attribute name, environment variable, ``config.toml`` key and meaning."""

    name: str
    env: str
    key: str  # "section.key" in config.toml
    type: SettingType
    default: str | None
    help: str


_CODE_INCLUDE = (
    "*.py", "*.pyi", "*.pyx", "*.ipynb", "*.r", "*.R", "*.jl", "*.sql", "*.sh", "*.toml",
    "*.yaml", "*.yml", "*.json", "*.cfg", "*.ini", "*.txt", "*.md", "Makefile", "Dockerfile",
)  # fmt: skip
_CODE_EXCLUDE = (
    ".git", ".hg", ".svn", ".syllabus", ".venv", "venv", "__pycache__", "node_modules",
    ".mypy_cache", ".pytest_cache", ".ruff_cache", ".tox", ".nox", ".ipynb_checkpoints",
    "*.egg-info",
)  # fmt: skip
_CODE_ENV_VARS = (
    "CUDA_VISIBLE_DEVICES", "CUBLAS_WORKSPACE_CONFIG", "PYTHONHASHSEED", "OMP_NUM_THREADS",
    "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TF_DETERMINISTIC_OPS", "CONDA_DEFAULT_ENV",
)  # fmt: skip

SETTINGS: tuple[Setting, ...] = (
    Setting(
        "uri",
        "SYLLABUS_URI",
        "database.url",
        "str",
        None,
        "Where metadata lives: a workspace folder, a sqlite:/// or postgresql:// URL, "
        "or an http(s):// Syllabus server (optionally .../w/<workspace>). Default: the "
        "nearest workspace's SQLite database.",
    ),
    Setting(
        "blobs",
        "SYLLABUS_BLOBS",
        "blobs.url",
        "str",
        None,
        "Where blobs live: a folder or s3://bucket/prefix. Default: the workspace's blobs/ folder.",
    ),
    Setting(
        "s3_endpoint_url",
        "SYLLABUS_S3_ENDPOINT_URL",
        "blobs.s3_endpoint_url",
        "str",
        None,
        "Endpoint of an S3-compatible store (MinIO, Ceph, moto). The usual AWS_* variables "
        "give credentials and region.",
    ),
    Setting(
        "gc_grace",
        "SYLLABUS_GC_GRACE",
        "store.gc_grace",
        "duration",
        "24h",
        "store gc keeps unreferenced blobs younger than this (a write in progress may not "
        "be referenced yet).",
    ),
    Setting(
        "transfer_jobs",
        "SYLLABUS_TRANSFER_JOBS",
        "store.transfer_jobs",
        "int",
        "8",
        "Parallel workers for transfers between blob stores.",
    ),
    Setting(
        "capture_code",
        "SYLLABUS_CAPTURE_CODE",
        "code.capture",
        "bool",
        "true",
        "Record the code (git commit, branch, remote, uncommitted patch, untracked source "
        "files; source files outside git), entry point and Python environment of every run.",
    ),
    Setting(
        "code_include",
        "SYLLABUS_CODE_INCLUDE",
        "code.include",
        "str",
        ",".join(_CODE_INCLUDE),
        "Comma-separated globs of source files kept from untracked files, and from the "
        "project folder outside git.",
    ),
    Setting(
        "code_exclude",
        "SYLLABUS_CODE_EXCLUDE",
        "code.exclude",
        "str",
        ",".join(_CODE_EXCLUDE),
        "Comma-separated names or globs of files and folders never captured.",
    ),
    Setting(
        "code_max_file_size",
        "SYLLABUS_CODE_MAX_FILE_SIZE",
        "code.max_file_size",
        "size",
        "1MiB",
        "Untracked or snapshot files larger than this are left out (and listed as skipped).",
    ),
    Setting(
        "code_max_total_size",
        "SYLLABUS_CODE_MAX_TOTAL_SIZE",
        "code.max_total_size",
        "size",
        "20MiB",
        "At most this many bytes of untracked or snapshot files per capture.",
    ),
    Setting(
        "code_env_vars",
        "SYLLABUS_CODE_ENV_VARS",
        "code.env_vars",
        "str",
        ",".join(_CODE_ENV_VARS),
        "Comma-separated environment variables recorded with the environment (allow-list; "
        "names that look like secrets are never recorded).",
    ),
    Setting(
        "notebook_outputs",
        "SYLLABUS_NOTEBOOK_OUTPUTS",
        "notebook.outputs",
        "bool",
        "true",
        "Keep cell outputs in notebook checkpoints (false strips them).",
    ),
    Setting(
        "system_metrics",
        "SYLLABUS_SYSTEM_METRICS",
        "tracking.system_metrics",
        "bool",
        "false",
        "Sample CPU, memory, disk and network I/O (and GPUs through NVML) into system/* "
        "metrics of every run (start_run(system_metrics=...) decides per run).",
    ),
    Setting(
        "system_metrics_interval",
        "SYLLABUS_SYSTEM_METRICS_INTERVAL",
        "tracking.system_metrics_interval",
        "duration",
        "10s",
        "How often system metrics are sampled.",
    ),
    Setting(
        "predictions",
        "SYLLABUS_PREDICTIONS",
        "deploy.predictions",
        "str",
        None,
        "Folder or s3://bucket/prefix of the prediction logs served models write (Parquet "
        "segments per service, read by monitoring). Default: <blobs URL>/predictions when the "
        "blobs are on S3, else the workspace's predictions/ folder.",
    ),
    Setting(
        "pipeline_executor",
        "SYLLABUS_PIPELINE_EXECUTOR",
        "pipelines.executor",
        "str",
        "local",
        "Where pipeline steps run by default: local (a process pool), ray (Ray tasks; "
        "RAY_ADDRESS names a cluster) or inline (this process, one step at a time).",
    ),
    Setting(
        "token",
        "SYLLABUS_TOKEN",
        "server.token",
        "str",
        None,
        "API token sent to an http(s):// SYLLABUS_URI server (`syllabus admin tokens create` "
        "makes one). Prefer the environment to a config file for secrets.",
    ),
    Setting(
        "debug",
        "SYLLABUS_DEBUG",
        "core.debug",
        "bool",
        "false",
        "Show tracebacks for expected errors in the CLI.",
    ),
)

_BY_NAME = {s.name: s for s in SETTINGS}


@dataclass(frozen=True)
class Settings:
    """Resolved settings. ``workspace`` is the ``.syllabus`` folder, when there is one."""

    workspace: Path | None
    uri: str | None = None
    blobs: str | None = None
    s3_endpoint_url: str | None = None
    gc_grace: float = 86400.0
    transfer_jobs: int = 8
    debug: bool = False
    capture_code: bool = True
    code_include: str = ",".join(_CODE_INCLUDE)
    code_exclude: str = ",".join(_CODE_EXCLUDE)
    code_max_file_size: int = 1024 * 1024
    code_max_total_size: int = 20 * 1024 * 1024
    code_env_vars: str = ",".join(_CODE_ENV_VARS)
    notebook_outputs: bool = True
    system_metrics: bool = False
    system_metrics_interval: float = 10.0
    predictions: str | None = None
    pipeline_executor: str = "local"
    token: str | None = None
    sources: Mapping[str, Source] = field(default_factory=dict)


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B?|B)?\s*$", re.IGNORECASE)


def parse_duration(text: str) -> float:
    """Seconds in ``"90s"``, ``"15m"``, ``"24h"``, ``"7d"``, ``"2w"``, or bare seconds."""
    m = _DURATION.match(text)
    if not m:
        raise ConfigError(f"invalid duration {text!r} (expected e.g. 90s, 15m, 24h, 7d)")
    return float(m.group(1)) * _DURATION_UNITS[m.group(2) or "s"]


def parse_size(text: str) -> int:
    """Bytes in ``"512"``, ``"64KiB"``, ``"4MiB"``, ``"1GB"`` (binary or decimal units)."""
    m = _SIZE.match(text)
    if not m:
        raise ConfigError(f"invalid size {text!r} (expected e.g. 512, 64KiB, 4MiB)")
    unit = (m.group(2) or "B").upper()
    power = "BKMGT".index(unit[0])
    base = 1024 if "I" in unit or unit in ("K", "M", "G", "T") else 1000
    return int(float(m.group(1)) * base**power)


def find_workspace(start: Path | None = None) -> Path | None:
    """The nearest ``.syllabus`` folder at or above ``start`` (the current folder by default)."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / WORKSPACE_DIR
        if candidate.is_dir():
            return candidate
    return None


def _read_toml(path: Path) -> dict[str, object]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def _lookup(doc: Mapping[str, object], dotted: str) -> object | None:
    node: object = doc
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _coerce(setting: Setting, raw: object, where: str) -> object:
    if setting.type == "bool":
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off", ""):
            return False
        raise ConfigError(f"{where}: {setting.name} must be true or false, not {raw!r}")
    if setting.type == "duration":
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            return float(raw)
        return parse_duration(str(raw))
    if setting.type == "size":
        if isinstance(raw, int) and not isinstance(raw, bool):
            return raw
        return parse_size(str(raw))
    if setting.type == "int":
        try:
            value = int(str(raw))
        except ValueError:
            raise ConfigError(f"{where}: {setting.name} must be an integer, not {raw!r}") from None
        if value < 1:
            raise ConfigError(f"{where}: {setting.name} must be at least 1, not {value}")
        return value
    return str(raw)


def load_settings(
    start: Path | None = None,
    *,
    workspace: Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, object] | None = None,
) -> Settings:
    """Resolve every setting for a process working in ``start``.

    ``overrides`` (``{"uri": ..., "blobs": ...}``, as passed to a Client) win over the environment,
    which wins over the workspace's ``config.toml``, which wins over defaults. Unknown
    keywords are a :class:`ConfigError`.
    """
    explicit = {k: v for k, v in (overrides or {}).items() if v is not None}
    unknown = sorted(set(explicit) - set(_BY_NAME))
    if unknown:
        raise ConfigError(f"unknown setting {unknown[0]!r}; known: {', '.join(_BY_NAME)}")
    environ = os.environ if env is None else env
    ws = workspace
    if ws is None:
        uri_env = explicit.get("uri") or environ.get("SYLLABUS_URI")
        if isinstance(uri_env, str) and uri_env and "://" not in uri_env:
            ws = _workspace_from_folder(Path(uri_env))
        else:
            ws = find_workspace(start)
    doc = _read_toml(ws / CONFIG_FILE) if ws is not None else {}
    values: dict[str, object] = {}
    sources: dict[str, Source] = {}
    for setting in SETTINGS:
        raw: object | None
        if explicit.get(setting.name) is not None:
            raw, src, where = explicit[setting.name], "argument", "argument"
        elif environ.get(setting.env):
            raw, src, where = environ[setting.env], "environment", setting.env
        elif (found := _lookup(doc, setting.key)) is not None:
            raw, src, where = found, "workspace", f"{ws}/{CONFIG_FILE} [{setting.key}]"
        else:
            raw, src, where = setting.default, "default", "default"
        if raw is None:
            continue
        values[setting.name] = _coerce(setting, raw, where)
        sources[setting.name] = src  # type: ignore[assignment]
    if isinstance(values.get("uri"), str) and "://" not in str(values["uri"]):
        # A folder given as the URI names a workspace, not a database.
        values.pop("uri")
    return Settings(workspace=ws, sources=sources, **values)  # type: ignore[arg-type]


def _workspace_from_folder(folder: Path) -> Path:
    folder = folder.expanduser().resolve()
    return folder if folder.name == WORKSPACE_DIR else folder / WORKSPACE_DIR
