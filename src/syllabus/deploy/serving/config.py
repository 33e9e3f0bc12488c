"""What one inference server serves and how: :class:`ServingConfig`.

``syllabus serve --config FILE.json`` takes this as JSON; ``syllabus serve REF`` builds the
same with ``models.primary = REF``; the deployment targets write it. ::

    {"service": "churn", "revision": 3, "env": "staging",
     "host": "127.0.0.1", "port": 8080, "workers": 1, "reuse_port": false,
     "models": {"primary": "churn@3",
                "canary": {"model": "churn@4", "percent": 10},
                "shadow": {"model": "churn@5"}},
     "log": {"enabled": true, "path": null, "flush_rows": 10000, "flush_seconds": 5.0},
     "uri": null, "blobs": null, "ready_file": null}

Unknown keys are refused (a typo must not silently change what is served).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from syllabus.errors import ConfigError

__all__ = [
    "DEFAULT_MAX_BODY",
    "CanarySpec",
    "LogSpec",
    "ModelsSpec",
    "ServingConfig",
    "ShadowSpec",
]

DEFAULT_MAX_BODY = 16 * 1024 * 1024
_SERVICE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


def _keys(where: str, data: Any, allowed: set[str]) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise ConfigError(f"serving config: {where} must be an object")
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ConfigError(
            f"serving config: unknown key {where}.{unknown[0]} "
            f"(known: {', '.join(sorted(allowed))})"
        )
    return data


def _str(where: str, value: Any, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"serving config: {where} must be a non-empty string")
    return value


def _int(where: str, value: Any, lo: int, hi: int, *, optional: bool = False) -> int | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ConfigError(f"serving config: {where} must be an integer from {lo} to {hi}")
    return value


def _number(where: str, value: Any, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
        raise ConfigError(f"serving config: {where} must be a number from {lo} to {hi}")
    return float(value)


def _bool(where: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"serving config: {where} must be true or false")
    return value


@dataclass(frozen=True, slots=True)
class CanarySpec:
    """A second model answering ``percent`` % of requests (chosen at random per request)."""

    model: str
    percent: float

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "percent": self.percent}


@dataclass(frozen=True, slots=True)
class ShadowSpec:
    """A model that scores a copy of every request; its answers are logged, never returned."""

    model: str

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model}


@dataclass(frozen=True, slots=True)
class ModelsSpec:
    primary: str
    canary: CanarySpec | None = None
    shadow: ShadowSpec | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "primary": self.primary,
            "canary": None if self.canary is None else self.canary.to_dict(),
            "shadow": None if self.shadow is None else self.shadow.to_dict(),
        }


@dataclass(frozen=True, slots=True)
class LogSpec:
    """The prediction log: on by default, under the ``predictions`` setting's folder."""

    enabled: bool = True
    path: str | None = None
    flush_rows: int = 10_000
    flush_seconds: float = 5.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "path": self.path,
            "flush_rows": self.flush_rows,
            "flush_seconds": self.flush_seconds,
        }


@dataclass(frozen=True, slots=True)
class ServingConfig:
    """Everything one inference server needs; JSON round-trips through to_dict/from_dict."""

    service: str
    models: ModelsSpec
    revision: int | None = None
    env: str | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    reuse_port: bool = False
    log: LogSpec = field(default_factory=LogSpec)
    uri: str | None = None
    blobs: str | None = None
    ready_file: str | None = None
    max_body: int = DEFAULT_MAX_BODY

    def __post_init__(self) -> None:
        if not _SERVICE.fullmatch(self.service):
            raise ConfigError(
                f"serving config: service {self.service!r} must be letters, digits, '_', '.' "
                "or '-' (at most 128, starting with a letter or digit)"
            )

    @classmethod
    def for_model(cls, ref: str, **options: Any) -> ServingConfig:
        """A config serving ``ref`` alone; the service is named after the model."""
        name = ref.partition("@")[0].strip() or "model"
        return cls(service=options.pop("service", None) or name, models=ModelsSpec(ref), **options)

    def with_options(self, **changes: Any) -> ServingConfig:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "revision": self.revision,
            "env": self.env,
            "host": self.host,
            "port": self.port,
            "workers": self.workers,
            "reuse_port": self.reuse_port,
            "models": self.models.to_dict(),
            "log": self.log.to_dict(),
            "uri": self.uri,
            "blobs": self.blobs,
            "ready_file": self.ready_file,
            "max_body": self.max_body,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_dict(cls, data: Any) -> ServingConfig:
        doc = _keys(
            "config",
            data,
            {
                "service", "revision", "env", "host", "port", "workers", "reuse_port", "models",
                "log", "uri", "blobs", "ready_file", "max_body",
            },
        )  # fmt: skip
        models = _keys("models", doc.get("models"), {"primary", "canary", "shadow"})
        canary = shadow = None
        if models.get("canary") is not None:
            c = _keys("models.canary", models["canary"], {"model", "percent"})
            canary = CanarySpec(
                str(_str("models.canary.model", c.get("model"))),
                _number("models.canary.percent", c.get("percent"), 0.0, 100.0),
            )
        if models.get("shadow") is not None:
            s = _keys("models.shadow", models["shadow"], {"model"})
            shadow = ShadowSpec(str(_str("models.shadow.model", s.get("model"))))
        log_doc = _keys(
            "log", doc.get("log") or {}, {"enabled", "path", "flush_rows", "flush_seconds"}
        )
        log = LogSpec(
            enabled=_bool("log.enabled", log_doc.get("enabled", True)),
            path=_str("log.path", log_doc.get("path"), optional=True),
            flush_rows=int(
                _int("log.flush_rows", log_doc.get("flush_rows", 10_000), 1, 10**9) or 1
            ),
            flush_seconds=_number(
                "log.flush_seconds", log_doc.get("flush_seconds", 5.0), 0.001, 86400.0
            ),
        )
        return cls(
            service=str(_str("service", doc.get("service"))),
            models=ModelsSpec(str(_str("models.primary", models.get("primary"))), canary, shadow),
            revision=_int("revision", doc.get("revision"), 0, 2**31 - 1, optional=True),
            env=_str("env", doc.get("env"), optional=True),
            host=str(_str("host", doc.get("host", "127.0.0.1"))),
            port=int(_int("port", doc.get("port", 8080), 0, 65535) or 0),
            workers=int(_int("workers", doc.get("workers", 1), 1, 256) or 1),
            reuse_port=_bool("reuse_port", doc.get("reuse_port", False)),
            log=log,
            uri=_str("uri", doc.get("uri"), optional=True),
            blobs=_str("blobs", doc.get("blobs"), optional=True),
            ready_file=_str("ready_file", doc.get("ready_file"), optional=True),
            max_body=int(_int("max_body", doc.get("max_body", DEFAULT_MAX_BODY), 1024, 2**40) or 0),
        )

    @classmethod
    def from_json(cls, text: str | bytes, *, source: str = "serving config") -> ServingConfig:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ConfigError(f"{source} is not valid JSON: {exc}") from None
        return cls.from_dict(data)

    @classmethod
    def read(cls, path: str | Path) -> ServingConfig:
        """The config in a JSON file."""
        try:
            text = Path(path).read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read serving config {path}: {exc.strerror}") from None
        return cls.from_json(text, source=str(path))
